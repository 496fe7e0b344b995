//! Requests God sent to an agent on some host and whose answer comes back as a separate
//! notification (`logs.query` → `logs.answer`, `proc.reload` → `proc.reloaded`): each gets
//! a token; the answer is taken only from the host asked; at most `max` wait at once.

use std::collections::HashMap;
use tokio::sync::oneshot;
use zpm_rpc::{ErrorCode, RpcError};

pub struct Pending<T> {
    next: u64,
    waiting: HashMap<u64, (String, oneshot::Sender<T>)>,
    max: usize,
    /// What they are, for the refusal: `log requests for other hosts`.
    what: &'static str,
}

impl<T> Pending<T> {
    pub fn new(max: usize, what: &'static str) -> Self {
        Self {
            next: 0,
            waiting: HashMap::new(),
            max,
            what,
        }
    }

    /// A new request to `host`: its token and where its answer will come.
    pub fn open(&mut self, host: &str) -> Result<(u64, oneshot::Receiver<T>), RpcError> {
        if self.waiting.len() >= self.max {
            return Err(RpcError::new(
                ErrorCode::Unavailable,
                format!("too many {} waiting; try again", self.what),
            ));
        }
        self.next += 1;
        let (reply, answer) = oneshot::channel();
        self.waiting.insert(self.next, (host.to_owned(), reply));
        Ok((self.next, answer))
    }

    /// Forgets a request nobody waits for any more.
    pub fn close(&mut self, token: u64) {
        self.waiting.remove(&token);
    }

    /// Hands `answer` to whoever waits for `token`, if it came from the host asked.
    pub fn settle(&mut self, token: u64, from_host: &str, answer: T) {
        match self.waiting.get(&token) {
            None => {} // late: the asker gave up
            Some((host, _)) if host != from_host => {
                tracing::warn!(
                    token,
                    from_host,
                    what = self.what,
                    "answer from a host not asked; ignored"
                );
            }
            Some(_) => {
                if let Some((_, reply)) = self.waiting.remove(&token) {
                    let _ = reply.send(answer);
                }
            }
        }
    }
}
