//! The msgpack envelope: request `{v, id, method, params}`, notification `{v, method, params}`,
//! reply `{v, id, result}` or `{v, id, error: {code, message}}`, push `{v, method, params}`.
//!
//! Incoming payloads are parsed into a [`rmpv::Value`] first (depth-limited and with capped
//! preallocation, so hostile input cannot exhaust the stack or memory) and only then into
//! typed params, so one bad field yields an error reply that still carries the right `id`.

use crate::error::{ErrorCode, RpcError};
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

/// What the server found in one incoming payload.
#[derive(Debug)]
pub(crate) enum Incoming {
    Request(Message),
    Notification(Message),
    /// The id is readable but the rest is not a valid envelope.
    Invalid {
        id: u64,
        error: RpcError,
    },
    /// Not even an id can be read: nothing to answer to.
    Unreadable,
}

/// A request, notification or push once its envelope has been read.
#[derive(Debug)]
pub(crate) struct Message {
    pub v: u64,
    pub id: Option<u64>,
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

fn read_message(entries: &mut Vec<(Value, Value)>, id: Option<u64>) -> Result<Message, String> {
    let v = field(entries, "v")
        .and_then(Value::as_u64)
        .ok_or("missing or non-integer `v`")?;
    let method = field(entries, "method")
        .and_then(Value::as_str)
        .ok_or("missing or non-string `method`")?
        .to_owned();
    let params_at = entries
        .iter()
        .position(|(key, _)| key.as_str() == Some("params"));
    let params = params_at.map_or(Value::Nil, |at| entries.swap_remove(at).1);
    Ok(Message {
        v,
        id,
        method,
        params,
    })
}

pub(crate) fn decode_incoming(payload: &[u8]) -> Incoming {
    let Some(mut entries) = read_map(payload) else {
        return Incoming::Unreadable;
    };
    let Ok(id) = read_id(&entries) else {
        return Incoming::Unreadable;
    };
    match (read_message(&mut entries, id), id) {
        (Ok(message), Some(_)) => Incoming::Request(message),
        (Ok(message), None) => Incoming::Notification(message),
        (Err(reason), Some(id)) => Incoming::Invalid {
            id,
            error: RpcError::new(ErrorCode::BadRequest, reason),
        },
        (Err(_), None) => Incoming::Unreadable,
    }
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
        None => read_message(&mut entries, None).ok().map(FromServer::Push),
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
pub(crate) fn encode_ok_reply(v: u32, id: u64, raw_result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + raw_result.len());
    write_reply_head(&mut out, v, id, "result");
    out.extend_from_slice(raw_result);
    out
}

pub(crate) fn encode_error_reply(v: u32, id: u64, error: &RpcError) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + error.message.len());
    write_reply_head(&mut out, v, id, "error");
    match rmp_serde::to_vec_named(error) {
        Ok(raw) => out.extend_from_slice(&raw),
        Err(_) => write_infallible(rmp::encode::write_nil(&mut out)),
    }
    out
}

fn write_reply_head(out: &mut Vec<u8>, v: u32, id: u64, outcome_key: &str) {
    // Writes into a Vec cannot fail; the Results only exist for generic writers.
    write_infallible(rmp::encode::write_map_len(out, 3).map(drop));
    write_infallible(rmp::encode::write_str(out, "v"));
    write_infallible(rmp::encode::write_uint(out, u64::from(v)).map(drop));
    write_infallible(rmp::encode::write_str(out, "id"));
    write_infallible(rmp::encode::write_uint(out, id).map(drop));
    write_infallible(rmp::encode::write_str(out, outcome_key));
}

fn write_infallible<E: std::fmt::Debug>(result: Result<(), E>) {
    debug_assert!(result.is_ok(), "write to Vec failed: {result:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let raw = encode_message(1, Some(7), "ping", &NoParams {}).unwrap();
        let Incoming::Request(message) = decode_incoming(&raw) else {
            panic!("not a request")
        };
        assert_eq!(
            (message.v, message.id, message.method.as_str()),
            (1, Some(7), "ping")
        );
    }

    #[test]
    fn notification_has_no_id() {
        let raw = encode_message(1, None, "event", &42u32).unwrap();
        let Incoming::Notification(message) = decode_incoming(&raw) else {
            panic!("not a notification")
        };
        assert_eq!(message.params, Value::from(42));
    }

    #[test]
    fn garbage_is_unreadable_and_bad_envelope_keeps_id() {
        assert!(matches!(decode_incoming(b"\xc1\xff"), Incoming::Unreadable));
        let raw = rmp_serde::to_vec_named(&serde_json_like(9)).unwrap();
        match decode_incoming(&raw) {
            Incoming::Invalid { id, error } => {
                assert_eq!(id, 9);
                assert_eq!(error.code, ErrorCode::BadRequest);
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn serde_json_like(id: u64) -> std::collections::BTreeMap<&'static str, u64> {
        std::collections::BTreeMap::from([("id", id)])
    }

    #[test]
    fn replies_decode() {
        let raw = encode_ok_reply(1, 3, &rmp_serde::to_vec_named(&"pong").unwrap());
        match decode_from_server(&raw) {
            Some(FromServer::Reply { id: 3, outcome }) => {
                assert_eq!(outcome.unwrap(), Value::from("pong"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let raw = encode_error_reply(1, 4, &RpcError::not_found("no app 12"));
        match decode_from_server(&raw) {
            Some(FromServer::Reply { id: 4, outcome }) => {
                assert_eq!(outcome.unwrap_err().code, ErrorCode::NotFound);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn unit_result_is_a_reply_not_missing() {
        let raw = encode_ok_reply(1, 5, &rmp_serde::to_vec_named(&()).unwrap());
        assert!(matches!(
            decode_from_server(&raw),
            Some(FromServer::Reply {
                id: 5,
                outcome: Ok(Value::Nil)
            })
        ));
    }
}
