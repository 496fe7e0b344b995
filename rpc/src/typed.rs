//! Typed decoding of `params` and `result` straight from the payload bytes with rmp-serde.
//! (rmpv's `Value` deserializer rejects enum variants encoded as strings — how rmp-serde
//! and other msgpack peers write them — so typed data never goes through a `Value`.)

use crate::error::RpcError;
use rmpv::Value;
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Deserialize)]
struct ParamsOf<P> {
    #[serde(default = "none")]
    params: Option<P>,
}

#[derive(Deserialize)]
struct ResultOf<R> {
    result: R,
}

fn none<T>() -> Option<T> {
    None
}

const MSGPACK_NIL: &[u8] = &[0xc0];

/// Decodes the `params` of an envelope; absent or nil params decode as msgpack nil.
pub(crate) fn params<P: DeserializeOwned>(payload: &[u8]) -> Result<P, RpcError> {
    let bad = |e: rmp_serde::decode::Error| RpcError::bad_params(e.to_string());
    match rmp_serde::from_slice::<ParamsOf<P>>(payload)
        .map_err(bad)?
        .params
    {
        Some(params) => Ok(params),
        None => {
            rmp_serde::from_slice(MSGPACK_NIL).map_err(|_| RpcError::bad_params("missing params"))
        }
    }
}

/// Decodes the `result` of a success reply.
pub(crate) fn result<R: DeserializeOwned>(payload: &[u8]) -> Result<R, String> {
    rmp_serde::from_slice::<ResultOf<R>>(payload)
        .map(|r| r.result)
        .map_err(|e| e.to_string())
}

/// Decodes a msgpack value (e.g. push params) into `T`, via its bytes.
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T, RpcError> {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value)
        .map_err(|e| RpcError::bad_params(e.to_string()))?;
    rmp_serde::from_slice(&bytes).map_err(|e| RpcError::bad_params(e.to_string()))
}

/// Encodes `params` as a msgpack value, e.g. to carry a request inside another one.
pub fn to_value<T: serde::Serialize + ?Sized>(params: &T) -> Result<Value, RpcError> {
    let bytes = rmp_serde::to_vec_named(params).map_err(|e| RpcError::bad_params(e.to_string()))?;
    rmpv::decode::read_value(&mut bytes.as_slice()).map_err(|e| RpcError::bad_params(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Stream {
        Out,
        Err,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Cursor {
        stream: Stream,
        offset: u64,
    }

    #[test]
    fn string_enums_decode_from_params_results_and_values() {
        let payload = crate::envelope::encode_message(
            1,
            Some(1),
            "m",
            &Cursor {
                stream: Stream::Err,
                offset: 9,
            },
        )
        .unwrap();
        assert_eq!(
            params::<Cursor>(&payload).unwrap(),
            Cursor {
                stream: Stream::Err,
                offset: 9
            }
        );
        let reply = crate::envelope::encode_ok_reply(
            1,
            &crate::scan::RawId::from_u64(1),
            &rmp_serde::to_vec_named(&Stream::Out).unwrap(),
        );
        assert_eq!(result::<Stream>(&reply).unwrap(), Stream::Out);
        assert_eq!(
            from_value::<Stream>(&Value::from("err")).unwrap(),
            Stream::Err
        );
    }

    #[test]
    fn missing_params_decode_as_nil() {
        let payload =
            rmp_serde::to_vec_named(&std::collections::BTreeMap::from([("v", 1), ("id", 2)]))
                .unwrap();
        assert!(params::<crate::NoParams>(&payload).is_ok());
        assert!(params::<Option<u32>>(&payload).unwrap().is_none());
        assert_eq!(
            params::<u32>(&payload).unwrap_err().code,
            crate::ErrorCode::BadParams
        );
    }
}
