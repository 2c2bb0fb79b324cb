//! Reads a `multipart/byteranges` body (RFC 9110 §14.6, RFC 2046 §5.1) back into its parts,
//! strictly: every delimiter where it must be, each part as long as its `Content-Range` says,
//! nothing after the closing delimiter. Written from the RFCs, sharing no code with the servers.

/// One part of a `multipart/byteranges` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BytePart {
    /// The part's `Content-Type`.
    pub content_type: String,
    /// The first byte's position in the file, from the part's `Content-Range`.
    pub first: u64,
    /// The last byte's position.
    pub last: u64,
    /// The file's whole length, from the part's `Content-Range`.
    pub complete_len: u64,
    /// The part's bytes.
    pub bytes: Vec<u8>,
}

/// The boundary a `Content-Type: multipart/byteranges; boundary=…` names.
pub fn boundary_of(content_type: &str) -> Option<&str> {
    let (media_type, params) = content_type.split_once(';')?;
    if !media_type
        .trim()
        .eq_ignore_ascii_case("multipart/byteranges")
    {
        return None;
    }
    params.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"'))
    })
}

/// The parts of `body`, delimited by `boundary`; what is wrong with it otherwise.
///
/// # Errors
///
/// Says where the body departs from the multipart syntax or from its parts' `Content-Range`.
pub fn parse_byteranges(body: &[u8], boundary: &str) -> Result<Vec<BytePart>, String> {
    let delimiter = format!("\r\n--{boundary}");
    let mut rest = body;
    let mut parts = Vec::new();
    loop {
        rest = rest
            .strip_prefix(delimiter.as_bytes())
            .ok_or_else(|| format!("no delimiter at byte {}", body.len() - rest.len()))?;
        if let Some(after) = rest.strip_prefix(b"--\r\n") {
            return match (after.is_empty(), parts.is_empty()) {
                (true, false) => Ok(parts),
                (true, true) => Err("no part before the closing delimiter".into()),
                (false, _) => Err(format!("{} bytes after the closing delimiter", after.len())),
            };
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a delimiter not followed by CRLF")?;
        let head_end = rest
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .ok_or("a part head without its blank line")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let mut part = part_from_head(&head)?;
        let len = usize::try_from(part.last - part.first + 1).map_err(|_| "a huge part")?;
        if rest.len() < len {
            return Err(format!("a part of {len} bytes with {} left", rest.len()));
        }
        part.bytes = rest[..len].to_vec();
        rest = &rest[len..];
        parts.push(part);
    }
}

fn part_from_head(head: &str) -> Result<BytePart, String> {
    let field = |name: &str| {
        head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let content_type = field("content-type").ok_or("a part without Content-Type")?;
    let range = field("content-range").ok_or("a part without Content-Range")?;
    let bad = || format!("a bad Content-Range {range:?}");
    let spec = range.strip_prefix("bytes ").ok_or_else(bad)?;
    let (positions, complete_len) = spec.split_once('/').ok_or_else(bad)?;
    let (first, last) = positions.split_once('-').ok_or_else(bad)?;
    let number = |text: &str| text.parse::<u64>().map_err(|_| bad());
    let (first, last, complete_len) = (number(first)?, number(last)?, number(complete_len)?);
    if first > last || last >= complete_len {
        return Err(bad());
    }
    Ok(BytePart {
        content_type,
        first,
        last,
        complete_len,
        bytes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_parts_and_refuses_bad_framing() {
        let body = b"\r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/10\r\n\r\nab\
                     \r\n--B\r\nContent-Type: text/plain\r\nContent-Range: bytes 5-5/10\r\n\r\nf\
                     \r\n--B--\r\n";
        let parts = parse_byteranges(body, "B").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].first, parts[0].bytes.as_slice()), (0, &b"ab"[..]));
        assert_eq!((parts[1].last, parts[1].complete_len), (5, 10));
        assert!(parse_byteranges(&body[..body.len() - 2], "B").is_err());
        assert!(parse_byteranges(&[body.as_slice(), b"x"].concat(), "B").is_err());
        assert!(parse_byteranges(body, "C").is_err());
        assert_eq!(
            boundary_of("multipart/byteranges; boundary=abc"),
            Some("abc")
        );
        assert_eq!(boundary_of("text/html; boundary=abc"), None);
    }
}
