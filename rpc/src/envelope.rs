//! The msgpack envelope: request `{v, id, method, params}`, notification `{v, method, params}`,
//! reply `{v, id, result}` or `{v, id, error: {code, message}}`, push `{v, method, params}`.
//!
//! The server reads requests with the bounded walker in `scan.rs`; this file encodes every
//! message and reads what a client gets from its (trusted) server.

use crate::error::{ErrorCode, RpcError};
use crate::scan::RawId;
use rmpv::Value;
use serde::{Deserialize, Serialize};

/// Envelope version spoken when the caller does not choose one.
pub const ENVELOPE_VERSION: u32 = 1;

/// Params for methods that take none: accepts nil, an empty map, or anything else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NoParams {}

impl<'de> Deserialize<'de> for NoParams {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        Ok(Self {})
    }
}

/// A push from the server, once its envelope has been read.
#[derive(Debug)]
pub(crate) struct Message {
    pub method: String,
    pub params: Value,
}

/// What a client found in one payload from the server.
#[derive(Debug)]
pub(crate) enum FromServer {
    Reply {
        id: u64,
        outcome: Result<Value, RpcError>,
    },
    Push(Message),
}

fn field<'a>(entries: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(key, _)| key.as_str() == Some(name))
        .map(|(_, value)| value)
}

fn read_map(payload: &[u8]) -> Option<Vec<(Value, Value)>> {
    match rmpv::decode::read_value(&mut &payload[..]) {
        Ok(Value::Map(entries)) => Some(entries),
        _ => None,
    }
}

/// `None` when absent or nil, `Err` when present but not an unsigned integer.
fn read_id(entries: &[(Value, Value)]) -> Result<Option<u64>, ()> {
    match field(entries, "id") {
        None | Some(Value::Nil) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or(()),
    }
}

fn read_message(entries: &mut Vec<(Value, Value)>) -> Result<Message, String> {
    let method = field(entries, "method")
        .and_then(Value::as_str)
        .ok_or("missing or non-string `method`")?
        .to_owned();
    let params_at = entries
        .iter()
        .position(|(key, _)| key.as_str() == Some("params"));
    let params = params_at.map_or(Value::Nil, |at| entries.swap_remove(at).1);
    Ok(Message { method, params })
}

pub(crate) fn decode_from_server(payload: &[u8]) -> Option<FromServer> {
    let mut entries = read_map(payload)?;
    match read_id(&entries).ok()? {
        Some(id) => {
            if let Some(error) = field(&entries, "error") {
                let error = read_error(error);
                return Some(FromServer::Reply {
                    id,
                    outcome: Err(error),
                });
            }
            let at = entries
                .iter()
                .position(|(key, _)| key.as_str() == Some("result"))?;
            let result = entries.swap_remove(at).1;
            Some(FromServer::Reply {
                id,
                outcome: Ok(result),
            })
        }
        None => read_message(&mut entries).ok().map(FromServer::Push),
    }
}

fn read_error(error: &Value) -> RpcError {
    let entries = error.as_map().map_or(&[][..], Vec::as_slice);
    let text = |name| {
        field(entries, name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    RpcError::new(ErrorCode::from_wire(text("code")), text("message"))
}

#[derive(Serialize)]
struct Outgoing<'a, P: ?Sized> {
    v: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    method: &'a str,
    params: &'a P,
}

/// Encodes a request (with `id`), or a notification / push (without).
pub(crate) fn encode_message<P: Serialize + ?Sized>(
    v: u32,
    id: Option<u64>,
    method: &str,
    params: &P,
) -> Result<Vec<u8>, rmp_serde::encode::Error> {
    rmp_serde::to_vec_named(&Outgoing {
        v,
        id,
        method,
        params,
    })
}

/// Encodes a success reply around an already-encoded `result`, so the result is encoded once.
pub(crate) fn encode_ok_reply(v: u32, id: &RawId, raw_result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + raw_result.len());
    write_reply_head(&mut out, v, id, "result");
    out.extend_from_slice(raw_result);
    out
}

pub(crate) fn encode_error_reply(v: u32, id: &RawId, error: &RpcError) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + error.message.len());
    write_reply_head(&mut out, v, id, "error");
    match rmp_serde::to_vec_named(error) {
        Ok(raw) => out.extend_from_slice(&raw),
        Err(_) => write_infallible(rmp::encode::write_nil(&mut out)),
    }
    out
}

/// The id goes back exactly as the client wrote it, whatever scalar it was.
fn write_reply_head(out: &mut Vec<u8>, v: u32, id: &RawId, outcome_key: &str) {
    // Writes into a Vec cannot fail; the Results only exist for generic writers.
    write_infallible(rmp::encode::write_map_len(out, 3).map(drop));
    write_infallible(rmp::encode::write_str(out, "v"));
    write_infallible(rmp::encode::write_uint(out, u64::from(v)).map(drop));
    write_infallible(rmp::encode::write_str(out, "id"));
    out.extend_from_slice(&id.0);
    write_infallible(rmp::encode::write_str(out, outcome_key));
}

fn write_infallible<E: std::fmt::Debug>(result: Result<(), E>) {
    debug_assert!(result.is_ok(), "write to Vec failed: {result:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_decode() {
        let raw = encode_ok_reply(
            1,
            &RawId::from_u64(3),
            &rmp_serde::to_vec_named(&"pong").unwrap(),
        );
        match decode_from_server(&raw) {
            Some(FromServer::Reply { id: 3, outcome }) => {
                assert_eq!(outcome.unwrap(), Value::from("pong"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let raw = encode_error_reply(1, &RawId::from_u64(4), &RpcError::not_found("no app 12"));
        match decode_from_server(&raw) {
            Some(FromServer::Reply { id: 4, outcome }) => {
                assert_eq!(outcome.unwrap_err().code, ErrorCode::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unit_result_is_a_reply_not_missing() {
        let raw = encode_ok_reply(
            1,
            &RawId::from_u64(5),
            &rmp_serde::to_vec_named(&()).unwrap(),
        );
        assert!(matches!(
            decode_from_server(&raw),
            Some(FromServer::Reply {
                id: 5,
                outcome: Ok(Value::Nil)
            })
        ));
    }
}
