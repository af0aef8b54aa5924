//! Protected mode, as Redis's: while the server listens on a non-loopback address
//! with no password set, only loopback clients are served (RESP and HTTP alike).

use std::net::IpAddr;

/// The reply a protected-mode refusal gets before the connection closes.
pub const DENIED: &str = "-DENIED ScalableAnalytics is running in protected mode because it listens on a non-loopback address and no password is set, so only loopback clients are accepted. To accept this client, either set a password (--requirepass, or CONFIG SET requirepass from a loopback client), or listen on loopback only (--bind 127.0.0.1), or, if you are sure the network is private, disable protected mode (--protected-mode no).\r\n";

/// Whether protected mode turns `peer` away: the server listens on a non-loopback
/// address, no password is set, and the peer is not on the loopback interface.
pub fn protected_mode_denies(
    enabled: bool,
    bind: IpAddr,
    has_password: bool,
    peer: IpAddr,
) -> bool {
    enabled
        && !has_password
        && !bind.to_canonical().is_loopback()
        && !peer.to_canonical().is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_decision() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lan: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped_lo: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        // Loopback bind: never denied.
        assert!(!protected_mode_denies(true, lo, false, lan));
        // Non-loopback bind, no password: loopback peers in, others out.
        assert!(!protected_mode_denies(true, any, false, lo));
        assert!(!protected_mode_denies(true, any, false, mapped_lo));
        assert!(protected_mode_denies(true, any, false, lan));
        assert!(protected_mode_denies(true, lan, false, lan));
        // A password, or protected mode off, lets everyone reach AUTH.
        assert!(!protected_mode_denies(true, any, true, lan));
        assert!(!protected_mode_denies(false, any, false, lan));
    }
}
