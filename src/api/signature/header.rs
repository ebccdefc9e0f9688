//! Parsing of the SigV4 `Authorization` header and of its parts shared with presigned URLs:
//! the credential and the signed-headers list.
//!
//! ```text
//! Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<YYYYMMDD>/<region>/<service>/aws4_request,
//!                SignedHeaders=<name>;<name>…, Signature=<64 hex>
//! ```
//! Components may come in any order, separated by commas with optional spaces; each must appear
//! exactly once. Signed header names must be lower case. Parsing never panics: any malformed
//! input is an [`Error`] with the S3 code a client expects (`AuthorizationHeaderMalformed` for a
//! bad SigV4 header, `InvalidRequest` for another AWS mechanism such as SigV2 or SigV4a,
//! `InvalidArgument` for an unknown authorization type).

use super::error::Error;
use super::keys::{ALGORITHM, SCOPE_TERMINAL};

/// The credential of a request: who signs, and the scope of the signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Credential {
    /// Parses `<key id>/<YYYYMMDD>/<region>/<service>/aws4_request`; the error is a message for
    /// the caller to wrap in its error variant.
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let [key, date, region, service, terminal] = parts.as_slice() else {
            return Err(format!(
                "the Credential {:?} must have the form \
                 <access key id>/<YYYYMMDD>/<region>/<service>/aws4_request",
                shorten(s)
            ));
        };
        if key.is_empty() {
            return Err("the access key id of the Credential is empty".into());
        }
        if date.len() != 8 || !date.bytes().all(|c| c.is_ascii_digit()) {
            return Err(format!("invalid credential date {:?}", shorten(date)));
        }
        if *terminal != SCOPE_TERMINAL {
            return Err(format!(
                "incorrect terminal '{}'; this endpoint uses '{SCOPE_TERMINAL}'",
                shorten(terminal)
            ));
        }
        Ok(Credential {
            access_key_id: key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        })
    }

    /// Checks the region and service of the scope against this endpoint's.
    pub fn check_scope(&self, region: &str, service: &str) -> Result<(), String> {
        if self.region != region {
            return Err(format!(
                "the region '{}' is wrong; expecting '{region}'",
                shorten(&self.region)
            ));
        }
        if self.service != service {
            return Err(format!(
                "incorrect service '{}'; this endpoint belongs to '{service}'",
                shorten(&self.service)
            ));
        }
        Ok(())
    }

    /// The scope string `YYYYMMDD/<region>/<service>/aws4_request`.
    pub fn scope(&self) -> String {
        super::keys::scope(&self.date, &self.region, &self.service)
    }
}

/// Parses a `SignedHeaders` list: non-empty, `;`-separated, lower-case header names, no
/// duplicates. The order is kept (it is the order of the canonical headers).
pub fn parse_signed_headers(s: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for name in s.split(';') {
        let valid = !name.is_empty()
            && name.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&c)
            });
        if !valid {
            return Err(format!(
                "invalid header name {:?} in SignedHeaders (names must be lower case)",
                shorten(name)
            ));
        }
        if names.iter().any(|n| n == name) {
            return Err(format!("header {name:?} appears twice in SignedHeaders"));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationHeader {
    pub credential: Credential,
    pub signed_headers: Vec<String>,
    /// The signature as sent (checked to be 64 hex digits only when verified).
    pub signature: String,
}

/// Parses the value of an `Authorization` header.
pub fn parse_authorization(value: &[u8]) -> Result<AuthorizationHeader, Error> {
    let value = std::str::from_utf8(value)
        .map_err(|_| Error::header_malformed("the header is not valid UTF-8"))?
        .trim();
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(unsupported_algorithm(algorithm));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for component in rest.split(',') {
        let component = component.trim();
        if component.is_empty() {
            continue;
        }
        let (key, val) = component.split_once('=').ok_or_else(|| {
            Error::header_malformed(format!(
                "component {:?} is not of the form Key=Value",
                shorten(component)
            ))
        })?;
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(Error::header_malformed(format!(
                    "unknown component {:?}",
                    shorten(other)
                )))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(Error::header_malformed(format!(
                "component {} appears twice",
                key.trim()
            )));
        }
    }
    let missing = |name: &str| Error::header_malformed(format!("missing {name}"));
    let credential = Credential::parse(credential.ok_or_else(|| missing("Credential"))?)
        .map_err(Error::header_malformed)?;
    let signed_headers =
        parse_signed_headers(signed_headers.ok_or_else(|| missing("SignedHeaders"))?)
            .map_err(Error::header_malformed)?;
    let signature = signature.ok_or_else(|| missing("Signature"))?.to_string();
    Ok(AuthorizationHeader {
        credential,
        signed_headers,
        signature,
    })
}

fn unsupported_algorithm(algorithm: &str) -> Error {
    match algorithm {
        "AWS" | "AWS4-ECDSA-P256-SHA256" => Error::invalid_request(
            "The authorization mechanism you have provided is not supported. \
             Please use AWS4-HMAC-SHA256.",
        ),
        _ => Error::invalid_argument(format!(
            "Unsupported Authorization Type {:?}",
            shorten(algorithm)
        )),
    }
}

/// At most 64 characters of a client-supplied string, for error messages.
pub(crate) fn shorten(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    #[test]
    fn parses_good_header() {
        let a = parse_authorization(GOOD.as_bytes()).unwrap();
        assert_eq!(a.credential.access_key_id, "AKIDEXAMPLE");
        assert_eq!(a.credential.date, "20150830");
        assert_eq!(a.credential.region, "us-east-1");
        assert_eq!(a.credential.service, "service");
        assert_eq!(
            a.credential.scope(),
            "20150830/us-east-1/service/aws4_request"
        );
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        assert!(a.signature.starts_with("5fa00f"));
        // No spaces, other order.
        let compact = "AWS4-HMAC-SHA256 Signature=abc,SignedHeaders=host,Credential=K/20150830/r/s3/aws4_request";
        let a = parse_authorization(compact.as_bytes()).unwrap();
        assert_eq!(a.signature, "abc");
        assert_eq!(a.credential.region, "r");
    }

    fn code(v: &[u8]) -> &'static str {
        parse_authorization(v).unwrap_err().s3_code()
    }

    #[test]
    fn rejects_malformed() {
        let malformed = "AuthorizationHeaderMalformed";
        assert_eq!(code(b"AWS4-HMAC-SHA256"), malformed);
        assert_eq!(code(b"AWS4-HMAC-SHA256 "), malformed);
        assert_eq!(code(b"AWS4-HMAC-SHA256 garbage"), malformed);
        assert_eq!(code(b"AWS4-HMAC-SHA256 Foo=bar"), malformed);
        assert_eq!(
            code(&GOOD.replace("Credential", "Credentia").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace(", Signature=", ", X=").into_bytes()),
            malformed
        );
        assert_eq!(code(format!("{GOOD}, Signature=00").as_bytes()), malformed);
        assert_eq!(
            code(&GOOD.replace("host;", "Host;").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace("host;", "host;;").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace("host;x-amz-date", "host;host").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace("/aws4_request", "/aws5_request").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace("/20150830/", "/2015083/").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace("AKIDEXAMPLE/", "/").into_bytes()),
            malformed
        );
        assert_eq!(
            code(&GOOD.replace("/service/", "/service/x/").into_bytes()),
            malformed
        );
        assert_eq!(code(b"AWS4-HMAC-SHA256 Credential=\xff\xfe"), malformed);
        assert_eq!(code(b"AWS AKID:c2lnbmF0dXJl"), "InvalidRequest");
        assert_eq!(
            code(b"AWS4-ECDSA-P256-SHA256 Credential=x"),
            "InvalidRequest"
        );
        assert_eq!(code(b"Bearer token"), "InvalidArgument");
        assert_eq!(code(b""), "InvalidArgument");
        assert_eq!(code("é".repeat(10_000).as_bytes()), "InvalidArgument");
        let huge = format!("AWS4-HMAC-SHA256 Credential={}", "a/".repeat(100_000));
        assert_eq!(code(huge.as_bytes()), malformed);
    }

    #[test]
    fn scope_checks() {
        let c = Credential::parse("AK/20150830/us-east-1/s3/aws4_request").unwrap();
        assert!(c.check_scope("us-east-1", "s3").is_ok());
        assert_eq!(
            c.check_scope("garage", "s3").unwrap_err(),
            "the region 'us-east-1' is wrong; expecting 'garage'"
        );
        assert!(c.check_scope("us-east-1", "iam").is_err());
    }
}
