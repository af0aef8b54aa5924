//! Who may read the HTTP view: protected mode as on the RESP port, then the password
//! as HTTP basic auth (any user name) or a bearer token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::config::password_matches;
use crate::protected::protected_mode_denies;
use crate::shared::Shared;

/// How long a request with a wrong password waits for its 401: guessing over HTTP
/// is held to a few tries a second per connection, like `AUTH` on the RESP port.
pub const AUTH_FAILURE_DELAY: Duration = Duration::from_millis(250);

/// What the browser is told to ask for.
const CHALLENGE: &str = "Basic realm=\"scalable-analytics\", charset=\"UTF-8\"";

/// Why a request is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Protected mode: non-loopback peer, non-loopback bind, no password.
    Protected,
    /// A password is set and the request carries none we can read.
    NoCredentials,
    /// A password is set and the request carries another one.
    WrongPassword,
}

/// Whether the request may be served: protected mode first, then the password as it
/// is set now (`CONFIG SET requirepass` applies to the next request).
pub fn check(
    shared: &Shared,
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    let password = shared.settings.password();
    // Without a known peer, assume the worst: not loopback.
    let peer_ip = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |p| p.ip());
    if protected_mode_denies(
        shared.config.protected_mode,
        shared.config.bind,
        password.is_some(),
        peer_ip,
    ) {
        return Err(Refusal::Protected);
    }
    let Some(password) = password else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| given_password(v.as_bytes()))
        .ok_or(Refusal::NoCredentials)?;
    if password_matches(&given, password.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::WrongPassword)
    }
}

/// The password in an `Authorization` value: `Basic base64(user:password)` or
/// `Bearer password` (schemes in any case).
pub fn given_password(value: &[u8]) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    let rest = rest.trim_ascii();
    if scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        // The user name cannot hold a colon; the password may.
        let colon = decoded.iter().position(|&b| b == b':')?;
        decoded.get(colon + 1..).map(<[u8]>::to_vec)
    } else if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(rest.to_vec())
    } else {
        None
    }
}

impl Refusal {
    /// The response: 403 for protected mode, 401 with a basic-auth challenge
    /// otherwise. A wrong password is counted (INFO `acl_access_denied_auth`),
    /// logged at a bounded rate, and answered after [`AUTH_FAILURE_DELAY`].
    pub async fn respond(self, shared: &Shared, peer: Option<SocketAddr>) -> Response {
        match self {
            Refusal::Protected => {
                if let Some(suppressed) = shared.may_log() {
                    tracing::warn!(
                        ?peer,
                        suppressed,
                        "protected mode: non-loopback HTTP client refused"
                    );
                }
                let text = crate::protected::DENIED
                    .trim_start_matches("-DENIED ")
                    .trim_end();
                (StatusCode::FORBIDDEN, format!("{text}\n")).into_response()
            }
            Refusal::NoCredentials | Refusal::WrongPassword => {
                if self == Refusal::WrongPassword {
                    shared.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                    // The password itself is never logged.
                    if let Some(suppressed) = shared.may_log() {
                        tracing::warn!(?peer, suppressed, "HTTP authentication failed");
                    }
                    tokio::time::sleep(AUTH_FAILURE_DELAY).await;
                }
                let mut resp =
                    (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
                resp.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(CHALLENGE),
                );
                resp
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Refusal, check, given_password};
    use axum::http::{HeaderMap, HeaderValue, header};
    use clap::Parser;

    #[tokio::test]
    async fn protected_mode_then_the_password_as_set_now() {
        // Listening on every address: protected mode applies to non-loopback peers.
        // No packet is sent; `check` only compares addresses.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let config = crate::Config::try_parse_from(["x", "--bind", "0.0.0.0"]).expect("flags");
        let handle =
            crate::server::build(&listener, config, crate::Options::default()).expect("build");
        let shared = &handle.0;
        let lan = Some("198.18.0.2:40000".parse().expect("address"));
        let lo = Some("127.0.0.1:40000".parse().expect("address"));
        let none = HeaderMap::new();
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            h
        };
        assert_eq!(check(shared, lan, &none), Err(Refusal::Protected));
        assert_eq!(check(shared, None, &none), Err(Refusal::Protected));
        assert_eq!(check(shared, lo, &none), Ok(()));
        shared.settings.set_password("pw".to_string());
        assert_eq!(check(shared, lan, &none), Err(Refusal::NoCredentials));
        assert_eq!(check(shared, lan, &with("Bearer pw")), Ok(()));
        assert_eq!(
            check(shared, lo, &with("Bearer pw!")),
            Err(Refusal::WrongPassword)
        );
        assert_eq!(check(shared, lo, &with("Basic dTpwdw==")), Ok(()));
        shared.settings.set_password(String::new());
        assert_eq!(check(shared, lan, &none), Err(Refusal::Protected));
        assert_eq!(check(shared, lo, &with("Bearer anything")), Ok(()));
    }

    #[test]
    fn reads_basic_and_bearer_credentials() {
        // "user:pa:ss" and ":secret"
        assert_eq!(
            given_password(b"Basic dXNlcjpwYTpzcw=="),
            Some(b"pa:ss".to_vec())
        );
        assert_eq!(
            given_password(b"basic   OnNlY3JldA== "),
            Some(b"secret".to_vec())
        );
        assert_eq!(given_password(b"Bearer s3cret"), Some(b"s3cret".to_vec()));
        assert_eq!(given_password(b"BEARER  x "), Some(b"x".to_vec()));
        // No colon, bad base64, unknown scheme, no scheme.
        assert_eq!(given_password(b"Basic dXNlcg=="), None);
        assert_eq!(given_password(b"Basic !!!"), None);
        assert_eq!(given_password(b"Digest abc"), None);
        assert_eq!(given_password(b"secret"), None);
        assert_eq!(given_password(b""), None);
    }
}
