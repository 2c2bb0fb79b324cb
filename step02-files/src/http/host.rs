//! The syntax of a `Host` header's value: `uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2).

use std::net::Ipv6Addr;

// ANCHOR: is_valid_host
/// Whether `value` is `uri-host [ ":" port ]`, where `uri-host` is an IP literal in brackets
/// (IPv6 or IPvFuture) or a reg-name (which covers IPv4 addresses and names), and `port` is
/// digits. An empty value is valid: RFC 9112 §3.2 has a client send an empty `Host` when the
/// target has no authority.
pub fn is_valid_host(value: &str) -> bool {
    let port = match value.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((inside, after)) if is_ip_literal(inside) => after,
            _ => return false,
        },
        None => {
            let name_end = value.find(':').unwrap_or(value.len());
            if !is_reg_name(&value[..name_end]) {
                return false;
            }
            &value[name_end..]
        }
    };
    match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|byte| byte.is_ascii_digit()),
        None => port.is_empty(),
    }
}
// ANCHOR_END: is_valid_host

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'%' {
            match bytes.get(at + 1..at + 3) {
                Some([high, low]) if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
                    at += 3;
                    continue;
                }
                _ => return false,
            }
        }
        if !(is_unreserved(byte) || is_sub_delim(byte)) {
            return false;
        }
        at += 1;
    }
    true
}

/// `IPv6address / IPvFuture`, the inside of `[…]`.
fn is_ip_literal(inside: &str) -> bool {
    if let Some(future) = inside
        .strip_prefix('v')
        .or_else(|| inside.strip_prefix('V'))
    {
        // IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
        return match future.split_once('.') {
            Some((version, rest)) => {
                !version.is_empty()
                    && version.bytes().all(|byte| byte.is_ascii_hexdigit())
                    && !rest.is_empty()
                    && rest
                        .bytes()
                        .all(|byte| is_unreserved(byte) || is_sub_delim(byte) || byte == b':')
            }
            None => false,
        };
    }
    inside.parse::<Ipv6Addr>().is_ok()
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~".contains(&byte)
}

fn is_sub_delim(byte: u8) -> bool {
    b"!$&'()*+,;=".contains(&byte)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_hosts() {
        for value in [
            "localhost",
            "localhost:7080",
            "example.com",
            "127.0.0.1",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:7080",
            "[2001:db8::7]:443",
            "[v1.fe80::a+en1]",
            "xn--caf-dma.example",
            "a%20b",
            "host:",
            "",
        ] {
            assert!(is_valid_host(value), "{value:?} should be valid");
        }
    }

    #[test]
    fn invalid_hosts() {
        for value in [
            "exa mple.com",
            "example.com/path",
            "user@example.com",
            "example.com:port",
            "example.com:80:80",
            "[::1",
            "::1",
            "[::1]x",
            "[::1]:a",
            "[not-ipv6]",
            "[v.x]",
            "a%2",
            "a%zz",
            "host?q",
            "host#f",
            "caf\u{e9}.example",
        ] {
            assert!(!is_valid_host(value), "{value:?} should be invalid");
        }
    }
}
