//! Reading a request envelope without trusting it. The payload is walked in place: no
//! value is built, so a hostile payload costs at most one pass over bytes the guard
//! already capped in size. The envelope's `v`, `id` (any msgpack scalar, echoed back
//! byte for byte) and `method` are picked out; `params` is checked against depth and
//! element limits before any handler decodes it (with rmp-serde, from the same bytes).

use crate::error::{ErrorCode, RpcError};
use bytes::Bytes;
use rmp::Marker;

/// Bounds on what a request's `params` may hold.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    /// Nesting of arrays and maps.
    pub max_depth: usize,
    /// Values in all (every array item, map key and map value counts one).
    pub max_elements: u64,
}

impl Default for ScanLimits {
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_elements: 262_144,
        }
    }
}

const MAX_ID_BYTES: usize = 256;
const MAX_METHOD_BYTES: usize = 128;

/// A request id as the client wrote it: the msgpack bytes of one scalar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawId(pub Bytes);

impl RawId {
    #[cfg(test)]
    pub fn from_u64(id: u64) -> Self {
        let mut out = Vec::with_capacity(9);
        // Writes into a Vec cannot fail.
        let _ = rmp::encode::write_uint(&mut out, id);
        Self(Bytes::from(out))
    }
}

/// What the server found in one incoming payload.
#[derive(Debug)]
pub(crate) enum Incoming {
    Request {
        id: RawId,
        envelope: Envelope,
    },
    Notification(Envelope),
    /// The id is readable but the rest is not an acceptable request.
    Invalid {
        id: RawId,
        error: RpcError,
    },
    /// Not even an id can be read: nothing to answer to.
    Unreadable,
}

#[derive(Debug)]
pub(crate) struct Envelope {
    pub v: u64,
    pub method: String,
}

/// One msgpack value's head: a scalar (its bytes skipped) or a container of `n` values.
enum Head {
    Scalar,
    Container(u64),
}

fn be(bytes: &[u8], at: usize, len: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(len)?)?;
    Some(slice.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// Reads the value head at `at`; returns it and where the next value starts.
fn head(bytes: &[u8], at: usize) -> Option<(Head, usize)> {
    let marker = Marker::from_u8(*bytes.get(at)?);
    let at = at + 1;
    let skip = |n: u64| -> Option<(Head, usize)> {
        let end = at.checked_add(usize::try_from(n).ok()?)?;
        (end <= bytes.len()).then_some((Head::Scalar, end))
    };
    let sized = |len_bytes: usize, extra: u64| -> Option<(Head, usize)> {
        let n = be(bytes, at, len_bytes)?;
        let end = (at + len_bytes).checked_add(usize::try_from(n.checked_add(extra)?).ok()?)?;
        (end <= bytes.len()).then_some((Head::Scalar, end))
    };
    let container = |len_bytes: usize, per: u64| -> Option<(Head, usize)> {
        let n = be(bytes, at, len_bytes)?;
        Some((Head::Container(n * per), at + len_bytes))
    };
    match marker {
        Marker::FixPos(_) | Marker::FixNeg(_) | Marker::Null | Marker::True | Marker::False => {
            skip(0)
        }
        Marker::U8 | Marker::I8 => skip(1),
        // A fixext is its type byte plus 1, 2, 4, 8 or 16 bytes of data.
        Marker::U16 | Marker::I16 | Marker::FixExt1 => skip(2),
        Marker::U32 | Marker::I32 | Marker::F32 => skip(4),
        Marker::U64 | Marker::I64 | Marker::F64 => skip(8),
        Marker::FixStr(n) => skip(u64::from(n)),
        Marker::Str8 | Marker::Bin8 => sized(1, 0),
        Marker::Str16 | Marker::Bin16 => sized(2, 0),
        Marker::Str32 | Marker::Bin32 => sized(4, 0),
        Marker::FixExt2 => skip(3),
        Marker::FixExt4 => skip(5),
        Marker::FixExt8 => skip(9),
        Marker::FixExt16 => skip(17),
        Marker::Ext8 => sized(1, 1),
        Marker::Ext16 => sized(2, 1),
        Marker::Ext32 => sized(4, 1),
        Marker::FixArray(n) => Some((Head::Container(u64::from(n)), at)),
        Marker::FixMap(n) => Some((Head::Container(2 * u64::from(n)), at)),
        Marker::Array16 => container(2, 1),
        Marker::Array32 => container(4, 1),
        Marker::Map16 => container(2, 2),
        Marker::Map32 => container(4, 2),
        Marker::Reserved => None,
    }
}

/// Skips one whole value without limits on depth (no recursion, no allocation).
fn skip_value(bytes: &[u8], mut at: usize) -> Option<usize> {
    let mut remaining: u64 = 1;
    while remaining > 0 {
        let (h, next) = head(bytes, at)?;
        remaining -= 1;
        if let Head::Container(n) = h {
            remaining = remaining.checked_add(n)?;
        }
        at = next;
        // Every value takes at least one byte: more values than bytes left is a lie.
        if remaining > (bytes.len() - at) as u64 {
            return None;
        }
    }
    Some(at)
}

/// Why `params` were refused.
fn check_params(bytes: &[u8], at: usize, limits: ScanLimits) -> Result<(), String> {
    let mut open: Vec<u64> = Vec::new();
    let mut elements: u64 = 0;
    let mut at = at;
    let mut remaining_here: u64 = 1;
    loop {
        while remaining_here == 0 {
            match open.pop() {
                Some(outer) => remaining_here = outer,
                None => return Ok(()),
            }
        }
        let (h, next) = head(bytes, at).ok_or("params are not valid msgpack")?;
        remaining_here -= 1;
        elements += 1;
        if elements > limits.max_elements {
            return Err(format!(
                "params hold more than {} values",
                limits.max_elements
            ));
        }
        at = next;
        if let Head::Container(n) = h {
            if n > (bytes.len() - at) as u64 {
                return Err("params are not valid msgpack".into());
            }
            if open.len() >= limits.max_depth {
                return Err(format!("params nest deeper than {}", limits.max_depth));
            }
            open.push(remaining_here);
            remaining_here = n;
        }
    }
}

/// The top-level fields of a request envelope, located.
#[derive(Default)]
struct Fields {
    v: Option<u64>,
    id: Option<std::ops::Range<usize>>,
    id_bad: bool,
    method: Option<Result<String, &'static str>>,
    params_at: Option<usize>,
}

fn read_str(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let (len_bytes, len) = match Marker::from_u8(*bytes.get(at)?) {
        Marker::FixStr(n) => (0, u64::from(n)),
        Marker::Str8 => (1, be(bytes, at + 1, 1)?),
        Marker::Str16 => (2, be(bytes, at + 1, 2)?),
        Marker::Str32 => (4, be(bytes, at + 1, 4)?),
        _ => return None,
    };
    let start = at + 1 + len_bytes;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    Some((bytes.get(start..end)?, end))
}

fn read_uint(bytes: &[u8], at: usize) -> Option<u64> {
    let mut slice = bytes.get(at..)?;
    rmp::decode::read_int(&mut slice).ok()
}

fn is_scalar(bytes: &[u8], at: usize, end: usize) -> bool {
    !matches!(
        Marker::from_u8(bytes[at]),
        Marker::FixArray(_)
            | Marker::FixMap(_)
            | Marker::Array16
            | Marker::Array32
            | Marker::Map16
            | Marker::Map32
            | Marker::Null
    ) && end - at <= MAX_ID_BYTES
}

/// Walks the top-level map; `None` if it is not a well-formed map.
fn fields(bytes: &[u8]) -> Option<Fields> {
    let (Head::Container(n), mut at) = head(bytes, 0)? else {
        return None;
    };
    if !matches!(
        Marker::from_u8(bytes[0]),
        Marker::FixMap(_) | Marker::Map16 | Marker::Map32
    ) {
        return None;
    }
    let mut found = Fields::default();
    for _ in 0..n / 2 {
        let key_end = skip_value(bytes, at)?;
        let key = read_str(bytes, at).map(|(k, _)| k);
        let value_at = key_end;
        let value_end = skip_value(bytes, value_at)?;
        match key {
            Some(b"v") => found.v = read_uint(bytes, value_at),
            Some(b"id") if bytes[value_at] != 0xc0 => {
                if is_scalar(bytes, value_at, value_end) {
                    found.id = Some(value_at..value_end);
                } else {
                    found.id_bad = true;
                }
            }
            Some(b"method") => {
                found.method = Some(match read_str(bytes, value_at) {
                    Some((m, _)) if m.len() > MAX_METHOD_BYTES => Err("`method` is too long"),
                    Some((m, _)) => std::str::from_utf8(m)
                        .map(str::to_owned)
                        .map_err(|_| "`method` is not UTF-8"),
                    None => Err("missing or non-string `method`"),
                });
            }
            Some(b"params") => found.params_at = Some(value_at),
            _ => {}
        }
        at = value_end;
    }
    Some(found)
}

/// Reads one incoming payload as the server must: bounded, and never trusting it.
pub(crate) fn decode_incoming(payload: &Bytes, limits: ScanLimits) -> Incoming {
    let Some(found) = fields(payload) else {
        return Incoming::Unreadable;
    };
    if found.id_bad {
        return Incoming::Unreadable;
    }
    let id = found.id.clone().map(|range| RawId(payload.slice(range)));
    let checked = envelope(payload, &found, limits);
    match (checked, id) {
        (Ok(envelope), Some(id)) => Incoming::Request { id, envelope },
        (Ok(envelope), None) => Incoming::Notification(envelope),
        (Err(error), Some(id)) => Incoming::Invalid { id, error },
        (Err(_), None) => Incoming::Unreadable,
    }
}

fn envelope(payload: &[u8], found: &Fields, limits: ScanLimits) -> Result<Envelope, RpcError> {
    let bad = |reason: &str| RpcError::new(ErrorCode::BadRequest, reason);
    let v = found.v.ok_or_else(|| bad("missing or non-integer `v`"))?;
    let method = match &found.method {
        Some(Ok(method)) => method.clone(),
        Some(Err(reason)) => return Err(bad(reason)),
        None => return Err(bad("missing or non-string `method`")),
    };
    if let Some(at) = found.params_at {
        check_params(payload, at, limits).map_err(RpcError::bad_params)?;
    }
    Ok(Envelope { v, method })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{NoParams, encode_message};
    use std::collections::BTreeMap;

    fn decode(raw: Vec<u8>) -> Incoming {
        decode_incoming(&Bytes::from(raw), ScanLimits::default())
    }

    #[test]
    fn request_and_notification() {
        let raw = encode_message(1, Some(7), "ping", &NoParams {}).unwrap();
        let Incoming::Request { id, envelope } = decode(raw) else {
            panic!("not a request")
        };
        assert_eq!(id, RawId::from_u64(7));
        assert_eq!((envelope.v, envelope.method.as_str()), (1, "ping"));
        let raw = encode_message(1, None, "event", &42u32).unwrap();
        assert!(matches!(decode(raw), Incoming::Notification(e) if e.method == "event"));
    }

    #[derive(serde::Serialize)]
    struct AnyId<I, P> {
        v: u32,
        id: I,
        method: &'static str,
        params: P,
    }

    fn with_id<I: serde::Serialize, P: serde::Serialize>(id: I, params: P) -> Vec<u8> {
        rmp_serde::to_vec_named(&AnyId {
            v: 1,
            id,
            method: "m",
            params,
        })
        .unwrap()
    }

    #[test]
    fn any_scalar_id_is_kept_byte_for_byte() {
        for raw_id in [
            rmp_serde::to_vec(&"req-1").unwrap(),
            rmp_serde::to_vec(&-3i32).unwrap(),
            rmp_serde::to_vec(&2.5f64).unwrap(),
            rmp_serde::to_vec(&true).unwrap(),
        ] {
            let value: rmpv::Value = rmpv::decode::read_value(&mut &raw_id[..]).unwrap();
            let Incoming::Request { id, .. } = decode(with_id(&value, ())) else {
                panic!("not a request")
            };
            assert_eq!(id.0.as_ref(), raw_id.as_slice());
        }
        assert!(matches!(decode(with_id([1, 2], ())), Incoming::Unreadable));
    }

    #[test]
    fn deep_or_huge_params_get_an_error_with_the_id() {
        let mut deep = rmpv::Value::Nil;
        for _ in 0..40 {
            deep = rmpv::Value::Array(vec![deep]);
        }
        match decode(with_id("deep", &deep)) {
            Incoming::Invalid { id, error } => {
                assert_eq!(
                    id.0.as_ref(),
                    rmp_serde::to_vec(&"deep").unwrap().as_slice()
                );
                assert_eq!(error.code, ErrorCode::BadParams);
                assert!(error.message.contains("deeper"), "{}", error.message);
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        let many = vec![0u8; 300_000];
        match decode(with_id(9, many)) {
            Incoming::Invalid { error, .. } => assert!(error.message.contains("more than")),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn lies_about_lengths_are_unreadable_or_invalid() {
        // A map announcing 2^32-1 entries in 5 bytes.
        assert!(matches!(
            decode(vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
            Incoming::Unreadable
        ));
        assert!(matches!(decode(b"\xc1\xff".to_vec()), Incoming::Unreadable));
        let mut raw = with_id(5, ());
        raw.truncate(raw.len() - 1);
        assert!(matches!(decode(raw), Incoming::Unreadable));
        let no_method = rmp_serde::to_vec_named(&BTreeMap::from([("id", 9), ("v", 1)])).unwrap();
        assert!(
            matches!(decode(no_method), Incoming::Invalid { error, .. } if error.code == ErrorCode::BadRequest)
        );
    }
}
