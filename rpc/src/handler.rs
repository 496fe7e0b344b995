//! Type erasure for handlers: typed `Fn(P, Ctx) -> Future<Result<R>>` closures become one
//! shape the dispatcher can store by method name.

use crate::error::RpcError;
use crate::server::{PeerId, Pusher};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// What a handler knows about the request besides its params.
#[derive(Clone)]
pub struct Ctx {
    /// The routing identity of the peer that sent the request; pass it to [`Pusher::push`].
    pub peer: PeerId,
    /// Sends pushes to any connected DEALER peer.
    pub pusher: Pusher,
}

pub(crate) type ReplyFuture = Pin<Box<dyn Future<Output = Result<Vec<u8>, RpcError>> + Send>>;
/// Called with the whole request payload; decodes its own `params`.
pub(crate) type Handler = Arc<dyn Fn(Bytes, Ctx) -> ReplyFuture + Send + Sync>;

pub(crate) fn erase<P, R, F, Fut>(handler: F) -> Handler
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(P, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, RpcError>> + Send + 'static,
{
    Arc::new(move |payload: Bytes, ctx: Ctx| -> ReplyFuture {
        match crate::typed::params::<P>(&payload) {
            Err(e) => Box::pin(std::future::ready(Err(e))),
            Ok(params) => {
                let reply = handler(params, ctx);
                Box::pin(async move {
                    let result = reply.await?;
                    rmp_serde::to_vec_named(&result)
                        .map_err(|e| RpcError::internal(format!("cannot encode result: {e}")))
                })
            }
        }
    })
}
