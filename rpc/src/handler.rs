//! Type erasure for handlers: typed `Fn(P, Ctx) -> Future<Result<R>>` closures become one
//! shape the dispatcher can store by method name.

use crate::error::RpcError;
use crate::server::{PeerId, Pusher};
use rmpv::Value;
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
pub(crate) type Handler = Arc<dyn Fn(Value, Ctx) -> ReplyFuture + Send + Sync>;

pub(crate) fn erase<P, R, F, Fut>(handler: F) -> Handler
where
    P: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    F: Fn(P, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<R, RpcError>> + Send + 'static,
{
    Arc::new(move |params: Value, ctx: Ctx| -> ReplyFuture {
        match rmpv::ext::from_value::<P>(params) {
            Err(e) => Box::pin(std::future::ready(Err(RpcError::bad_params(e.to_string())))),
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
