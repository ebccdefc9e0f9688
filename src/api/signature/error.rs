//! The errors of request authentication, one variant per S3 error code.
//!
//! Every variant maps 1:1 to the `<Code>` S3 puts in its XML error body ([`Error::s3_code`]) and
//! to an HTTP status ([`Error::http_status`]); the `Display` text is the `<Message>`. Variants
//! carry named fields so that the S3 layer can add the extra elements S3 returns (for example
//! `StringToSign` and `CanonicalRequest` with `SignatureDoesNotMatch`).

/// A boxed error from the transport, kept as the source of [`Error::IncompleteBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request failed authentication or integrity checks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Generic refusal: missing or invalid date, expired presigned URL, unsigned `x-amz-*`
    /// headers...
    #[error("Access Denied: {message}")]
    AccessDenied { message: String },

    /// The access key id of the credential is unknown.
    #[error("The AWS Access Key Id you provided does not exist in our records: {access_key_id}")]
    InvalidAccessKeyId { access_key_id: String },

    /// The signature (of the request, of a chunk or of the trailer) is wrong.
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your key and signing method."
    )]
    SignatureDoesNotMatch {
        /// The canonical request we computed (empty for chunk and trailer signatures).
        canonical_request: String,
        /// The string to sign we computed.
        string_to_sign: String,
    },

    /// The request date is more than 15 minutes away from the server's clock.
    #[error(
        "The difference between the request time ({request_time}) and the server's time \
         ({server_time}) is too large."
    )]
    RequestTimeTooSkewed {
        request_time: String,
        server_time: String,
    },

    /// The `Authorization` header cannot be parsed, or its scope is wrong (region, service,
    /// date, terminal).
    #[error("The authorization header is malformed; {message}")]
    AuthorizationHeaderMalformed { message: String },

    /// The `X-Amz-*` query parameters of a presigned URL are missing or malformed.
    #[error("Query-string authentication error: {message}")]
    AuthorizationQueryParametersError { message: String },

    /// The body does not hash to the value of `x-amz-content-sha256`.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    XAmzContentSHA256Mismatch {
        client_computed: String,
        s3_computed: String,
    },

    /// A `Content-MD5` or `x-amz-checksum-*` value is not valid (bad base64 or length).
    #[error("The digest you specified is not valid: {message}")]
    InvalidDigest { message: String },

    /// A `Content-MD5` or `x-amz-checksum-*` value does not match the data received.
    #[error(
        "The {algorithm} you specified did not match what we received \
         (expected {expected}, computed {computed})."
    )]
    BadDigest {
        algorithm: &'static str,
        expected: String,
        computed: String,
    },

    /// The request is not acceptable as a whole (unsupported mechanism, bad framing...).
    #[error("Invalid request: {message}")]
    InvalidRequest { message: String },

    /// A header or parameter value is not acceptable.
    #[error("Invalid argument: {message}")]
    InvalidArgument { message: String },

    /// The body ended early, was longer or shorter than announced, or could not be read.
    #[error("Incomplete body: {message}")]
    IncompleteBody {
        message: String,
        #[source]
        source: Option<BoxError>,
    },

    /// A header that authentication requires is absent.
    #[error("Your request was missing a required header: {header}")]
    MissingSecurityHeader { header: &'static str },
}

impl Error {
    /// The S3 error code (`<Code>` of the XML error body).
    pub fn s3_code(&self) -> &'static str {
        match self {
            Error::AccessDenied { .. } => "AccessDenied",
            Error::InvalidAccessKeyId { .. } => "InvalidAccessKeyId",
            Error::SignatureDoesNotMatch { .. } => "SignatureDoesNotMatch",
            Error::RequestTimeTooSkewed { .. } => "RequestTimeTooSkewed",
            Error::AuthorizationHeaderMalformed { .. } => "AuthorizationHeaderMalformed",
            Error::AuthorizationQueryParametersError { .. } => "AuthorizationQueryParametersError",
            Error::XAmzContentSHA256Mismatch { .. } => "XAmzContentSHA256Mismatch",
            Error::InvalidDigest { .. } => "InvalidDigest",
            Error::BadDigest { .. } => "BadDigest",
            Error::InvalidRequest { .. } => "InvalidRequest",
            Error::InvalidArgument { .. } => "InvalidArgument",
            Error::IncompleteBody { .. } => "IncompleteBody",
            Error::MissingSecurityHeader { .. } => "MissingSecurityHeader",
        }
    }

    /// The HTTP status S3 answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            Error::AccessDenied { .. }
            | Error::InvalidAccessKeyId { .. }
            | Error::SignatureDoesNotMatch { .. }
            | Error::RequestTimeTooSkewed { .. } => 403,
            Error::AuthorizationHeaderMalformed { .. }
            | Error::AuthorizationQueryParametersError { .. }
            | Error::XAmzContentSHA256Mismatch { .. }
            | Error::InvalidDigest { .. }
            | Error::BadDigest { .. }
            | Error::InvalidRequest { .. }
            | Error::InvalidArgument { .. }
            | Error::IncompleteBody { .. }
            | Error::MissingSecurityHeader { .. } => 400,
        }
    }

    pub(crate) fn access_denied(message: impl Into<String>) -> Self {
        Error::AccessDenied {
            message: message.into(),
        }
    }

    pub(crate) fn header_malformed(message: impl Into<String>) -> Self {
        Error::AuthorizationHeaderMalformed {
            message: message.into(),
        }
    }

    pub(crate) fn query_error(message: impl Into<String>) -> Self {
        Error::AuthorizationQueryParametersError {
            message: message.into(),
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
        }
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    pub(crate) fn incomplete_body(message: impl Into<String>) -> Self {
        Error::IncompleteBody {
            message: message.into(),
            source: None,
        }
    }

    /// A signature mismatch on a chunk or trailer (no canonical request involved).
    pub(crate) fn chunk_signature_mismatch(string_to_sign: String) -> Self {
        Error::SignatureDoesNotMatch {
            canonical_request: String::new(),
            string_to_sign,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        let cases: Vec<(Error, &str, u16)> = vec![
            (Error::access_denied("x"), "AccessDenied", 403),
            (
                Error::InvalidAccessKeyId {
                    access_key_id: "GK".into(),
                },
                "InvalidAccessKeyId",
                403,
            ),
            (
                Error::chunk_signature_mismatch(String::new()),
                "SignatureDoesNotMatch",
                403,
            ),
            (
                Error::RequestTimeTooSkewed {
                    request_time: String::new(),
                    server_time: String::new(),
                },
                "RequestTimeTooSkewed",
                403,
            ),
            (
                Error::header_malformed("x"),
                "AuthorizationHeaderMalformed",
                400,
            ),
            (
                Error::query_error("x"),
                "AuthorizationQueryParametersError",
                400,
            ),
            (
                Error::XAmzContentSHA256Mismatch {
                    client_computed: String::new(),
                    s3_computed: String::new(),
                },
                "XAmzContentSHA256Mismatch",
                400,
            ),
            (
                Error::InvalidDigest {
                    message: String::new(),
                },
                "InvalidDigest",
                400,
            ),
            (
                Error::BadDigest {
                    algorithm: "CRC32",
                    expected: String::new(),
                    computed: String::new(),
                },
                "BadDigest",
                400,
            ),
            (Error::invalid_request("x"), "InvalidRequest", 400),
            (Error::invalid_argument("x"), "InvalidArgument", 400),
            (Error::incomplete_body("x"), "IncompleteBody", 400),
            (
                Error::MissingSecurityHeader {
                    header: "x-amz-content-sha256",
                },
                "MissingSecurityHeader",
                400,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!(e.s3_code(), code);
            assert_eq!(e.http_status(), status);
            assert!(!e.to_string().is_empty());
        }
    }
}
