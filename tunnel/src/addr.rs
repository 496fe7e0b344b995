//! Tunnel addresses as users write them: `tcp://HOST:PORT`, as in ZeroMQ (`*` = every
//! local address, for listening).

/// Why an address was refused; the message shows what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{given:?} is not a tcp://HOST:PORT address ({why})")]
pub struct AddrError {
    pub given: String,
    pub why: &'static str,
}

/// `tcp://HOST:PORT` → `HOST:PORT`, what tokio binds or dials. `HOST` may be a name, an
/// IPv4 address, `[IPv6]`, or `*` (listening on every address).
pub fn tcp_address(endpoint: &str) -> Result<String, AddrError> {
    let refuse = |why| AddrError {
        given: endpoint.to_owned(),
        why,
    };
    let rest = endpoint
        .strip_prefix("tcp://")
        .ok_or_else(|| refuse("it must start with tcp://"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| refuse("the port is missing"))?;
    if port.parse::<u16>().is_err() {
        return Err(refuse("the port must be a number from 0 to 65535"));
    }
    let host = match host {
        "" => return Err(refuse("the host is missing")),
        "*" => "0.0.0.0",
        h if h.contains(['/', ' ', '@']) => {
            return Err(refuse("the host is not a name or address"));
        }
        h => h,
    };
    Ok(format!("{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::tcp_address;

    #[test]
    fn zeromq_style_addresses_become_socket_addresses() {
        assert_eq!(
            tcp_address("tcp://127.0.0.1:7100").as_deref(),
            Ok("127.0.0.1:7100")
        );
        assert_eq!(tcp_address("tcp://*:7100").as_deref(), Ok("0.0.0.0:7100"));
        assert_eq!(tcp_address("tcp://[::1]:7100").as_deref(), Ok("[::1]:7100"));
        assert_eq!(
            tcp_address("tcp://god.lan:7100").as_deref(),
            Ok("god.lan:7100")
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        for (bad, why) in [
            ("127.0.0.1:7100", "tcp://"),
            ("ipc:///tmp/x", "tcp://"),
            ("tcp://127.0.0.1", "port"),
            ("tcp://127.0.0.1:http", "port"),
            ("tcp://:7100", "host"),
            ("tcp://a/b:7100", "host"),
        ] {
            let err = tcp_address(bad).expect_err(bad).to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
