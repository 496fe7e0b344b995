//! A listening socket the spawner holds for an app (`--listen`, ecosystem `listen`): parsed
//! once here, so the CLI, God's validation and the spawner agree on what an address means.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

/// Longest unix socket path: `sun_path` holds 108 bytes with the terminating NUL.
pub const MAX_UNIX_PATH_BYTES: usize = 107;

/// Where an app's shared socket listens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ListenAddr {
    /// `8000` or `*:8000`: every interface, IPv6 and IPv4 where the host has both.
    AnyTcp { port: u16 },
    /// `127.0.0.1:8000`, `[::1]:8443`, `localhost:8000`.
    Tcp(SocketAddr),
    /// `unix:/run/app.sock`: an absolute path.
    Unix(String),
}

impl ListenAddr {
    /// The TCP port, if it is one.
    pub fn port(&self) -> Option<u16> {
        match self {
            Self::AnyTcp { port } => Some(*port),
            Self::Tcp(addr) => Some(addr.port()),
            Self::Unix(_) => None,
        }
    }
}

/// Why an address does not parse; the message shows the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid listen address {given:?}: {problem} (expected PORT, HOST:PORT, [IPV6]:PORT or unix:/ABSOLUTE/PATH)"
)]
pub struct BadListenAddr {
    given: String,
    problem: &'static str,
}

fn port(text: &str, given: &str) -> Result<u16, BadListenAddr> {
    let bad = |problem| BadListenAddr {
        given: given.to_owned(),
        problem,
    };
    match text.parse::<u16>() {
        Ok(0) => Err(bad("port 0 would be a different port every time")),
        Ok(port) => Ok(port),
        Err(_) => Err(bad("the port must be a number from 1 to 65535")),
    }
}

impl FromStr for ListenAddr {
    type Err = BadListenAddr;

    fn from_str(given: &str) -> Result<Self, Self::Err> {
        let bad = |problem| BadListenAddr {
            given: given.to_owned(),
            problem,
        };
        if let Some(path) = given.strip_prefix("unix:") {
            if !path.starts_with('/') {
                return Err(bad("a unix socket path must be absolute"));
            }
            if path.len() > MAX_UNIX_PATH_BYTES {
                return Err(bad("a unix socket path is at most 107 bytes"));
            }
            if path.contains('\0') {
                return Err(bad("it contains a NUL byte"));
            }
            return Ok(Self::Unix(path.to_owned()));
        }
        if given.bytes().all(|b| b.is_ascii_digit()) && !given.is_empty() {
            return Ok(Self::AnyTcp {
                port: port(given, given)?,
            });
        }
        let Some((host, port_text)) = given.rsplit_once(':') else {
            return Err(bad("no port"));
        };
        let port = port(port_text, given)?;
        let ip = match host {
            "*" | "" => return Ok(Self::AnyTcp { port }),
            "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(host)
                .parse::<IpAddr>()
                .map_err(|_| bad("the host must be an IP address, `localhost` or `*`"))?,
        };
        Ok(Self::Tcp(SocketAddr::new(ip, port)))
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AnyTcp { port } => write!(f, "*:{port}"),
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{path}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<ListenAddr, BadListenAddr> {
        text.parse()
    }

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(parse("8000").unwrap(), ListenAddr::AnyTcp { port: 8000 });
        assert_eq!(parse("*:8000").unwrap(), ListenAddr::AnyTcp { port: 8000 });
        assert_eq!(
            parse("127.0.0.1:8000").unwrap().to_string(),
            "127.0.0.1:8000"
        );
        assert_eq!(parse("[::]:8443").unwrap().to_string(), "[::]:8443");
        assert_eq!(parse("localhost:80").unwrap().to_string(), "127.0.0.1:80");
        assert_eq!(
            parse("unix:/run/a.sock").unwrap(),
            ListenAddr::Unix("/run/a.sock".into())
        );
    }

    #[test]
    fn bad_forms_say_why() {
        for (text, why) in [
            ("0", "port 0"),
            ("70000", "1 to 65535"),
            ("example.com:80", "IP address"),
            ("unix:run/a.sock", "absolute"),
            ("abc", "no port"),
            ("", "no port"),
        ] {
            let e = parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
            assert!(e.contains("expected PORT"), "{e}");
        }
        let long = format!("unix:/{}", "a".repeat(200));
        assert!(parse(&long).unwrap_err().to_string().contains("107 bytes"));
    }
}
