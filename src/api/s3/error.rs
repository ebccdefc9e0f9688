//! S3 errors: every failure of a request is one of these, answered as an S3 XML `<Error>` with
//! the right code and HTTP status, the resource and a request id.

use http::StatusCode;

use crate::api::signature::Error as SigError;
use crate::model::helper::ModelError;
use crate::table::TableError;

/// An S3 error.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(transparent)]
    Signature(#[from] SigError),
    #[error("The specified bucket does not exist")]
    NoSuchBucket(String),
    #[error("The specified key does not exist.")]
    NoSuchKey,
    #[error("The specified upload does not exist.")]
    NoSuchUpload,
    #[error("The specified bucket does not have a website configuration")]
    NoSuchWebsiteConfiguration(String),
    #[error("The lifecycle configuration does not exist")]
    NoSuchLifecycleConfiguration,
    #[error("One or more of the specified parts could not be found or its ETag did not match.")]
    InvalidPart,
    #[error("The list of parts was not in ascending order.")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed object size (5 MiB for every part but the last).")]
    EntityTooSmall,
    #[error("Your proposed upload is smaller than the minimum allowed size: {size} bytes, the policy requires at least {min}.")]
    PolicyEntityTooSmall { size: u64, min: u64 },
    #[error("{0}")]
    AccessDenied(String),
    /// The write would make the bucket exceed one of its quotas (the message names it).
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("The CORS configuration does not exist")]
    NoSuchCorsConfiguration,
    #[error("CORSResponse: This CORS request is not allowed. This is usually because the evaluation of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")]
    CorsForbidden,
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid Policy: {0}")]
    InvalidPolicyDocument(String),
    #[error("The body of your POST request is not well-formed multipart/form-data: {0}")]
    MalformedPostRequest(String),
    #[error("Your POST request fields preceding the upload file were too large.")]
    MaxPostPreDataLengthExceeded,
    #[error("The requested bucket name is not available.")]
    BucketAlreadyExists,
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    #[error("The specified bucket is not valid: {0}")]
    InvalidBucketName(String),
    #[error("The XML you provided was not well-formed or did not validate against our published schema: {0}")]
    MalformedXml(String),
    /// CreateBucket naming another region than this server's.
    #[error("{0}")]
    IllegalLocationConstraint(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The requested range is not satisfiable")]
    InvalidRange,
    #[error("At least one of the preconditions you specified did not hold")]
    PreconditionFailed,
    #[error("Not modified")]
    NotModified,
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest,
    #[error("Your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge,
    #[error(
        "You did not provide the number of bytes specified by the Content-Length HTTP header."
    )]
    IncompleteBody,
    #[error("Your key is too long")]
    KeyTooLongError,
    #[error("A header you provided implies functionality that is not implemented: {0}")]
    NotImplemented(String),
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed,
    #[error("We encountered an internal error. Please try again. ({0})")]
    Internal(String),
    #[error("Service unavailable: {0}")]
    ServiceUnavailable(String),
}

impl S3Error {
    /// The S3 error code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Signature(e) => e.s3_code(),
            Self::NoSuchBucket(_) => "NoSuchBucket",
            Self::NoSuchKey => "NoSuchKey",
            Self::NoSuchUpload => "NoSuchUpload",
            Self::NoSuchWebsiteConfiguration(_) => "NoSuchWebsiteConfiguration",
            Self::NoSuchLifecycleConfiguration => "NoSuchLifecycleConfiguration",
            Self::InvalidPart => "InvalidPart",
            Self::InvalidPartOrder => "InvalidPartOrder",
            Self::EntityTooSmall => "EntityTooSmall",
            Self::PolicyEntityTooSmall { .. } => "EntityTooSmall",
            Self::AccessDenied(_) => "AccessDenied",
            Self::QuotaExceeded(_) => "QuotaExceeded",
            Self::NoSuchCorsConfiguration => "NoSuchCORSConfiguration",
            Self::CorsForbidden => "AccessForbidden",
            Self::BadRequest(_) => "BadRequest",
            Self::InvalidPolicyDocument(_) => "InvalidPolicyDocument",
            Self::MalformedPostRequest(_) => "MalformedPOSTRequest",
            Self::MaxPostPreDataLengthExceeded => "MaxPostPreDataLengthExceededError",
            Self::BucketAlreadyExists => "BucketAlreadyExists",
            Self::BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            Self::BucketNotEmpty => "BucketNotEmpty",
            Self::InvalidBucketName(_) => "InvalidBucketName",
            Self::MalformedXml(_) => "MalformedXML",
            Self::InvalidArgument(_) => "InvalidArgument",
            Self::IllegalLocationConstraint(_) => "IllegalLocationConstraintException",
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::InvalidRange => "InvalidRange",
            Self::PreconditionFailed => "PreconditionFailed",
            Self::NotModified => "NotModified",
            Self::BadDigest => "BadDigest",
            Self::EntityTooLarge => "EntityTooLarge",
            Self::IncompleteBody => "IncompleteBody",
            Self::KeyTooLongError => "KeyTooLongError",
            Self::NotImplemented(_) => "NotImplemented",
            Self::MethodNotAllowed => "MethodNotAllowed",
            Self::Internal(_) => "InternalError",
            Self::ServiceUnavailable(_) => "ServiceUnavailable",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        let code = match self {
            Self::Signature(e) => e.http_status(),
            Self::NoSuchBucket(_)
            | Self::NoSuchKey
            | Self::NoSuchUpload
            | Self::NoSuchWebsiteConfiguration(_)
            | Self::NoSuchCorsConfiguration
            | Self::NoSuchLifecycleConfiguration => 404,
            Self::AccessDenied(_) | Self::QuotaExceeded(_) | Self::CorsForbidden => 403,
            Self::BucketAlreadyExists | Self::BucketAlreadyOwnedByYou | Self::BucketNotEmpty => 409,
            Self::InvalidBucketName(_)
            | Self::MalformedXml(_)
            | Self::InvalidArgument(_)
            | Self::IllegalLocationConstraint(_)
            | Self::InvalidRequest(_)
            | Self::BadDigest
            | Self::EntityTooLarge
            | Self::IncompleteBody
            | Self::KeyTooLongError
            | Self::InvalidPart
            | Self::InvalidPartOrder
            | Self::EntityTooSmall
            | Self::PolicyEntityTooSmall { .. }
            | Self::BadRequest(_)
            | Self::InvalidPolicyDocument(_)
            | Self::MalformedPostRequest(_)
            | Self::MaxPostPreDataLengthExceeded => 400,
            Self::InvalidRange => 416,
            Self::PreconditionFailed => 412,
            Self::NotModified => 304,
            Self::NotImplemented(_) => 501,
            Self::MethodNotAllowed => 405,
            Self::Internal(_) => 500,
            Self::ServiceUnavailable(_) => 503,
        };
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<TableError> for S3Error {
    fn from(e: TableError) -> Self {
        match e {
            TableError::Rpc(_) | TableError::NoLayout { .. } => {
                Self::ServiceUnavailable(e.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<ModelError> for S3Error {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::NoSuchBucket(n) => Self::NoSuchBucket(n),
            ModelError::NoSuchKey(k) => Self::AccessDenied(format!("unknown access key {k}")),
            ModelError::AmbiguousKey(..) => Self::InvalidArgument(e.to_string()),
            ModelError::BucketAlreadyExists {
                owned_by_you: true, ..
            } => Self::BucketAlreadyOwnedByYou,
            ModelError::BucketAlreadyExists { .. } => Self::BucketAlreadyExists,
            ModelError::InvalidBucketName { .. } => Self::InvalidBucketName(e.to_string()),
            ModelError::BucketNotEmpty(_) => Self::BucketNotEmpty,
            ModelError::Invalid(m) => Self::InvalidRequest(m),
            ModelError::Table(t) => t.into(),
        }
    }
}
