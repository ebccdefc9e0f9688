//! The canonical request of SigV4 and its parts, as S3 computes them.
//!
//! ```text
//! <METHOD>\n<canonical URI>\n<canonical query>\n<canonical headers>\n<signed headers>\n<payload hash>
//! ```
//! where the canonical headers are `name:value\n` for each signed header (so the block ends
//! with an empty line).
//!
//! **URI encoding** ([`uri_encode`]): every byte except the RFC 3986 unreserved set
//! `A-Z a-z 0-9 - . _ ~` becomes `%XX` with upper-case hex; `/` is kept in paths and encoded in
//! query strings.
//!
//! **Canonical URI** ([`canonical_uri`]): S3 does not normalise paths (no removal of `.`, `..`
//! or duplicate slashes) and encodes each path segment *once*. AWS documents the canonical URI
//! for S3 as "the URI-encoded version of the absolute path", encoded once (other services encode
//! twice). Real clients (aws CLI and boto3 via botocore's `quote(path, safe='/~')`, the AWS SDKs
//! for Rust, Go and Java with single encoding for S3) URI-encode the object key once, send that
//! path and sign that same string. The server only sees the path *as sent*, which is already
//! encoded, so we **decode it, then encode it once** with the rule above: for every standard
//! client this gives back exactly the sent path, and it also matches clients that send some
//! reserved characters raw (`$`, `!`, `@`, a raw space...) but sign them encoded, as AWS's own
//! `test$file.text` example does. As a fallback for signers that sign the path exactly as they
//! send it with a non-standard encoding (for example lower-case `%2f`), the verifier also tries
//! the raw path when it differs ([`canonical_uri_candidates`]). Both forms decode to the same
//! object key, so accepting either never lets a signature cover a different key.
//!
//! **Canonical query** ([`canonical_query`]): parameters are percent-decoded (`+` as a space, as
//! in HTML forms and as S3 reads query strings), then name and value are URI-encoded (with `/`
//! encoded), sorted by name then value, and joined as `name=value` with `&`; a parameter without
//! `=` or with an empty value is `name=`. Presigned URLs exclude `X-Amz-Signature`.
//!
//! **Canonical headers** ([`canonical_headers`]): for each name of `SignedHeaders` (lower case),
//! every value of that header in the order received, each trimmed and with runs of spaces and
//! tabs collapsed to one space, joined with `,`. A signed header absent from the request has an
//! empty value. Values are bytes: non-UTF-8 header values are signed as sent.

use http::HeaderMap;

/// Hex SHA-256 of the empty string, used for empty payloads and in chunk strings to sign.
pub const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

/// URI-encodes bytes as SigV4 does (RFC 3986 unreserved set kept, upper-case hex); `/` is kept
/// unless `encode_slash`.
pub fn uri_encode(input: &[u8], encode_slash: bool) -> String {
    let mut out = String::with_capacity(input.len() + input.len() / 2);
    for &c in input {
        if is_unreserved(c) || (c == b'/' && !encode_slash) {
            out.push(char::from(c));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(c >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(c & 15)]));
        }
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes bytes leniently: a `%` not followed by two hex digits is kept as is;
/// `+` becomes a space if `plus_as_space` (query strings), and stays `+` otherwise (paths).
pub fn percent_decode(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex_value(input[i + 1]), hex_value(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(if c == b'+' && plus_as_space { b' ' } else { c });
        i += 1;
    }
    out
}

/// The canonical URI of a raw request path (as sent, without the query): decoded, then
/// URI-encoded once with `/` kept. An empty path is `/`.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    uri_encode(&percent_decode(raw_path.as_bytes(), false), false)
}

/// The canonical URIs the verifier accepts for a raw path, preferred first: the normalised
/// encoding of [`canonical_uri`], then the raw path itself if it differs (see the module docs).
pub fn canonical_uri_candidates(raw_path: &str) -> Vec<String> {
    let normalised = canonical_uri(raw_path);
    if raw_path.is_empty() || raw_path == normalised {
        vec![normalised]
    } else {
        vec![normalised, raw_path.to_string()]
    }
}

/// The parameters of a raw query string (without `?`), percent-decoded (`+` as a space), in
/// order. Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an empty value.
pub fn parse_query(raw_query: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    raw_query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (
                percent_decode(name.as_bytes(), true),
                percent_decode(value.as_bytes(), true),
            )
        })
        .collect()
}

/// The canonical query string of a raw query string; `X-Amz-Signature` is left out when
/// `exclude_signature` (presigned URLs).
pub fn canonical_query(raw_query: &str, exclude_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = parse_query(raw_query)
        .into_iter()
        .filter(|(name, _)| !(exclude_signature && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| (uri_encode(&name, true), uri_encode(&value, true)))
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Trims a header value and collapses runs of spaces and tabs to one space.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let mut in_space = false;
    let start = out.len();
    for &c in value {
        if c == b' ' || c == b'\t' {
            in_space = true;
        } else {
            if in_space && out.len() > start {
                out.push(b' ');
            }
            in_space = false;
            out.push(c);
        }
    }
}

/// The canonical value of one header: all its values in order, trimmed, joined with `,`.
pub fn canonical_header_value(headers: &HeaderMap, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_trimmed(&mut out, value.as_bytes());
    }
    out
}

/// The canonical headers block: `name:value\n` for each signed header, in the given order.
pub fn canonical_headers(headers: &HeaderMap, signed_headers: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    for name in signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&canonical_header_value(headers, name));
        out.push(b'\n');
    }
    out
}

/// The parts of a canonical request, already canonicalised except for the headers.
pub struct CanonicalParts<'a> {
    pub method: &'a str,
    pub canonical_uri: &'a str,
    pub canonical_query: &'a str,
    pub headers: &'a HeaderMap,
    /// Lower-case names, in the order of the `SignedHeaders` list (normally sorted).
    pub signed_headers: &'a [String],
    /// Hex SHA-256 of the payload, or one of the `UNSIGNED-PAYLOAD`/`STREAMING-…` literals.
    pub payload_hash: &'a str,
}

/// Builds the canonical request (bytes, as header values need not be UTF-8).
pub fn canonical_request(parts: &CanonicalParts<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(parts.canonical_uri.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(parts.canonical_query.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&canonical_headers(parts.headers, parts.signed_headers));
    out.push(b'\n');
    out.extend_from_slice(parts.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(parts.payload_hash.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderName, HeaderValue};

    #[test]
    fn encoding() {
        assert_eq!(uri_encode(b"test$file.text", false), "test%24file.text");
        assert_eq!(uri_encode(b"/a b/c~d", false), "/a%20b/c~d");
        assert_eq!(uri_encode(b"a/b", true), "a%2Fb");
        assert_eq!(uri_encode("ሴ".as_bytes(), false), "%E1%88%B4");
        assert_eq!(uri_encode(b"+*=&", true), "%2B%2A%3D%26");
    }

    #[test]
    fn decoding_is_lenient() {
        assert_eq!(percent_decode(b"a%2Fb+c", false), b"a/b+c");
        assert_eq!(percent_decode(b"a%2fb+c", true), b"a/b c");
        assert_eq!(percent_decode(b"%zz%4", false), b"%zz%4");
        assert_eq!(percent_decode(b"%", false), b"%");
        assert_eq!(percent_decode(b"%4", false), b"%4");
        assert_eq!(percent_decode(b"%41", false), b"A");
        assert_eq!(percent_decode(b"%ff", false), [0xff]);
    }

    #[test]
    fn canonical_uris() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/test$file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("/test%24file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("/a%7Eb/%7e"), "/a~b/~");
        // No normalisation: dots and duplicate slashes are kept.
        assert_eq!(canonical_uri("//a/./../b//"), "//a/./../b//");
        assert_eq!(canonical_uri("/example space/"), "/example%20space/");
        // `+` in a path is a plus sign.
        assert_eq!(canonical_uri("/a+b"), "/a%2Bb");
        // An encoded slash inside a key stays a slash once decoded (same object key).
        assert_eq!(canonical_uri("/a%2Fb"), "/a/b");
        assert_eq!(
            canonical_uri_candidates("/a%2fb"),
            vec!["/a/b".to_string(), "/a%2fb".to_string()]
        );
        assert_eq!(
            canonical_uri_candidates("/a%20b"),
            vec!["/a%20b".to_string()]
        );
    }

    #[test]
    fn canonical_queries() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(canonical_query("lifecycle", false), "lifecycle=");
        assert_eq!(canonical_query("uploads=", false), "uploads=");
        assert_eq!(
            canonical_query("prefix=J&max-keys=2", false),
            "max-keys=2&prefix=J"
        );
        assert_eq!(canonical_query("b=2&a=2&a=1", false), "a=1&a=2&b=2");
        assert_eq!(canonical_query("a=x+y&c=%2f", false), "a=x%20y&c=%2F");
        assert_eq!(canonical_query("a=1&&b", false), "a=1&b=");
        assert_eq!(
            canonical_query("X-Amz-Signature=abc&X-Amz-Date=1", true),
            "X-Amz-Date=1"
        );
        assert_eq!(
            canonical_query("X-Amz-Signature=abc", false),
            "X-Amz-Signature=abc"
        );
        // Upper case sorts before lower case (byte order of the encoded names).
        assert_eq!(canonical_query("a=1&B=2", false), "B=2&a=1");
    }

    #[test]
    fn header_values() {
        let mut h = HeaderMap::new();
        let name = HeaderName::from_static("my-header");
        h.append(&name, HeaderValue::from_static("  a   b \t c  "));
        h.append(&name, HeaderValue::from_static("d"));
        h.append(&name, HeaderValue::from_static(""));
        assert_eq!(canonical_header_value(&h, "my-header"), b"a b c,d,");
        assert_eq!(canonical_header_value(&h, "absent"), b"");
        let raw = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        h.insert("x-raw", raw);
        assert_eq!(canonical_header_value(&h, "x-raw"), b"caf\xe9");
    }
}
