//! The API layer: what turns HTTP requests from S3 clients (and later the admin API) into calls
//! on the model. For now it holds only [`signature`], the transport-independent AWS Signature
//! Version 4 verifier and signer; the S3 router and handlers (`s3/`) and the admin HTTP API
//! (`admin/`) come next and build on it.

pub mod admin_http;
pub mod http;
pub mod s3;
pub mod signature;
