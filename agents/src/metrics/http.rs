//! A tiny HTTP/1 server for Prometheus scrapes: `GET /metrics` and nothing else.
//!
//! Loopback only. zpm binds no public TCP address without a key (DESIGN.md), and this
//! endpoint has no authentication at all: to scrape from another host, put an
//! authenticating reverse proxy (or the zpm tunnel, when it carries it) in front.
//!
//! Every peer may be hostile, so everything is bounded: request headers in size, count and
//! time to arrive (a slow client cannot hold a connection), a whole connection in time, one
//! request per connection (no idle keep-alive to hold a slot), and connections in number
//! (past the cap, new ones wait in the kernel's accept backlog, costing us nothing).

use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// The server's bounds. The defaults suit a Prometheus scraper on the same host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Time for a client to send its whole request head.
    pub read_timeout: Duration,
    /// Time for a whole connection, request to last byte of the response.
    pub connection_timeout: Duration,
    /// Size of the request line plus headers.
    pub max_header_bytes: usize,
    /// Number of request headers.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 64,
            read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(10),
            max_header_bytes: 8 << 10,
            max_headers: 32,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to serve metrics on {0}: only a loopback address is allowed (zpm binds no \
         public TCP address without a key; put an authenticating proxy in front to scrape \
         from elsewhere)"
    )]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// [`serve_with`] the default [`Limits`].
pub async fn serve(
    addr: SocketAddr,
    render: impl Fn() -> String + Send + Sync + 'static,
) -> Result<(JoinHandle<()>, SocketAddr), ServeError> {
    serve_with(addr, Limits::default(), render).await
}

/// Listens on `addr` (loopback; port 0 picks one) and answers `GET /metrics` with what
/// `render` returns at that moment. Returns the server task (abort it to stop the server
/// and every connection) and the address actually bound.
pub async fn serve_with(
    addr: SocketAddr,
    limits: Limits,
    render: impl Fn() -> String + Send + Sync + 'static,
) -> Result<(JoinHandle<()>, SocketAddr), ServeError> {
    if !addr.ip().to_canonical().is_loopback() {
        return Err(ServeError::NotLoopback(addr));
    }
    let bind_error = |source| ServeError::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let task = tokio::spawn(accept_loop(listener, limits, Arc::new(render)));
    Ok((task, local))
}

async fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    render: Arc<dyn Fn() -> String + Send + Sync>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers)
        .keep_alive(false);
    // Owned here so that aborting this task drops, and so aborts, every connection.
    let mut connections = JoinSet::new();
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        while connections.try_join_next().is_some() {}
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors or memory: back off rather than spin.
                tracing::warn!(error = %e, "metrics server cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let render = Arc::clone(&render);
        let connection = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |request| {
                let response = respond(&request, render.as_ref());
                async move { Ok::<_, Infallible>(response) }
            }),
        );
        let deadline = limits.connection_timeout;
        connections.spawn(async move {
            // Errors are the client's (malformed, too large, too slow): nothing to do but
            // close, which dropping does.
            let _ = tokio::time::timeout(deadline, connection).await;
            drop(slot);
        });
    }
}

fn respond<B>(request: &Request<B>, render: &(dyn Fn() -> String + Send + Sync)) -> Response<Text> {
    if request.method() == Method::GET && request.uri().path() == "/metrics" {
        let mut response = Response::new(Text::from(render()));
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(super::prom::CONTENT_TYPE),
        );
        response
    } else {
        let mut response = Response::new(Text::from("not found\n".to_owned()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        response
    }
}

/// A response body sent in one piece, with its length known up front.
#[derive(Debug)]
struct Text(Option<Bytes>);

impl From<String> for Text {
    fn from(text: String) -> Self {
        Self(Some(Bytes::from(text)))
    }
}

impl Body for Text {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|bytes| Ok(Frame::data(bytes))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}
