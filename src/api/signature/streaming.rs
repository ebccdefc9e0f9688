//! aws-chunked request bodies (`x-amz-content-sha256: STREAMING-…`) as an async stream adapter.
//!
//! [`decode_aws_chunked`] wraps the raw body (`Stream<Item = Result<Bytes, E>>`, split anyhow)
//! and yields the decoded payload, verifying on the way every chunk signature (chained from the
//! seed signature of the request), the final empty chunk, the trailing headers and their
//! signature, the trailing checksum announced by `x-amz-trailer` (computed over the decoded
//! data: a mismatch is `BadDigest`) and the length announced by `x-amz-decoded-content-length`
//! (`IncompleteBody` if different). The wire format and the memory bounds are described in
//! [`super::chunk_parser`].
//!
//! **Contract for the caller**: the stream ends with `None` only after every check passed; an
//! `Err` item (after which the stream ends) means the upload must be discarded, even though
//! data was already yielded. The trailing headers are then available from the
//! [`TrailerHandle`], for the caller to store the checksum or compare it with one it computed
//! itself ([`Trailers::verify_checksum`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use http::HeaderMap;

use super::checksum::{Checksum, ChecksumAlgorithm};
use super::chunk_parser::ChunkDecoder;
use super::error::{BoxError, Error};
use super::keys::SigningContext;
use super::payload::ContentSha256;
use super::verify::VerifiedRequest;

/// The variant of aws-chunked body.
#[derive(Debug, Clone)]
pub enum ChunkedMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: signed chunks, no trailing headers.
    Signed(SigningContext),
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: signed chunks and signed trailers.
    SignedTrailer(SigningContext),
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: bare chunks, unsigned trailers.
    UnsignedTrailer,
}

/// How to decode and check an aws-chunked body.
#[derive(Debug, Clone)]
pub struct ChunkedConfig {
    pub mode: ChunkedMode,
    /// `x-amz-decoded-content-length`, checked against the decoded length if given.
    pub decoded_content_length: Option<u64>,
    /// The checksum announced by `x-amz-trailer`: required in the trailers, and verified
    /// against the decoded data.
    pub expected_trailer: Option<ChecksumAlgorithm>,
}

impl ChunkedConfig {
    /// The configuration for a verified request, reading `x-amz-decoded-content-length` and
    /// `x-amz-trailer`; `None` if the body is not aws-chunked.
    pub fn from_request(
        verified: &VerifiedRequest,
        headers: &HeaderMap,
    ) -> Result<Option<Self>, Error> {
        let ctx = verified.signing.clone();
        let mode = match verified.content_sha256 {
            ContentSha256::StreamingSigned => ChunkedMode::Signed(ctx),
            ContentSha256::StreamingSignedTrailer => ChunkedMode::SignedTrailer(ctx),
            ContentSha256::StreamingUnsignedTrailer => ChunkedMode::UnsignedTrailer,
            _ => return Ok(None),
        };
        let decoded_content_length = headers
            .get("x-amz-decoded-content-length")
            .map(|v| {
                v.to_str()
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| {
                        Error::invalid_argument("x-amz-decoded-content-length is not a number")
                    })
            })
            .transpose()?;
        let expected_trailer = headers
            .get("x-amz-trailer")
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(ChecksumAlgorithm::from_header_name)
                    .filter(|a| *a != ChecksumAlgorithm::Md5)
                    .ok_or_else(|| {
                        Error::invalid_argument(
                            "x-amz-trailer must name one x-amz-checksum-* trailing header",
                        )
                    })
            })
            .transpose()?;
        if expected_trailer.is_some() && matches!(mode, ChunkedMode::Signed(_)) {
            return Err(Error::invalid_request(
                "x-amz-trailer requires a STREAMING-…-TRAILER x-amz-content-sha256",
            ));
        }
        Ok(Some(ChunkedConfig {
            mode,
            decoded_content_length,
            expected_trailer,
        }))
    }
}

/// The trailing headers of an aws-chunked body (lower-case names, trimmed values, in order,
/// without `x-amz-trailer-signature`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    pub headers: Vec<(String, String)>,
}

impl Trailers {
    /// The value of a trailing header (name in lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first `x-amz-checksum-*` trailing header, parsed (`InvalidDigest` if malformed).
    pub fn checksum(&self) -> Result<Option<Checksum>, Error> {
        for (name, value) in &self.headers {
            if let Some(alg) = ChecksumAlgorithm::from_header_name(name) {
                if alg != ChecksumAlgorithm::Md5 {
                    return Checksum::from_base64(alg, value).map(Some);
                }
            }
        }
        Ok(None)
    }

    /// Compares the trailing checksum of the algorithm of `computed` with it: `BadDigest` if
    /// different, `InvalidRequest` if there is no such trailer.
    pub fn verify_checksum(&self, computed: &Checksum) -> Result<(), Error> {
        let name = computed.algorithm().header_name();
        let value = self.get(name).ok_or_else(|| {
            Error::invalid_request(format!("no {name} trailing header in the request body"))
        })?;
        Checksum::from_base64(computed.algorithm(), value)?.verify(computed)
    }
}

/// Where the trailing headers appear once the stream has ended successfully.
#[derive(Debug, Clone, Default)]
pub struct TrailerHandle(Arc<Mutex<Option<Trailers>>>);

impl TrailerHandle {
    /// The trailing headers, once the stream ended without error; `None` before.
    pub fn get(&self) -> Option<Trailers> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, trailers: Trailers) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(trailers);
    }
}

/// The decoded payload of an aws-chunked body; see [`decode_aws_chunked`].
pub struct AwsChunkedStream<S> {
    body: S,
    decoder: ChunkDecoder,
    ready: VecDeque<Bytes>,
    handle: TrailerHandle,
    finished: bool,
}

/// Decodes an aws-chunked body. Returns the stream of decoded data and the handle where the
/// trailing headers appear at the end. Transport errors of `body` become `IncompleteBody` with
/// the original error as source.
pub fn decode_aws_chunked<S, E>(
    body: S,
    config: ChunkedConfig,
) -> (AwsChunkedStream<S>, TrailerHandle)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    let handle = TrailerHandle::default();
    let stream = AwsChunkedStream {
        body,
        decoder: ChunkDecoder::new(config),
        ready: VecDeque::new(),
        handle: handle.clone(),
        finished: false,
    };
    (stream, handle)
}

impl<S, E> Stream for AwsChunkedStream<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(piece) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(piece)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            let result = match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(mut input))) => this.decoder.feed(&mut input, &mut this.ready),
                Poll::Ready(Some(Err(e))) => Err(Error::IncompleteBody {
                    message: "error reading the request body".into(),
                    source: Some(e.into()),
                }),
                Poll::Ready(None) => this.decoder.finish().map(|trailers| {
                    this.handle.set(trailers);
                    this.finished = true;
                }),
            };
            if let Err(e) = result {
                this.finished = true;
                this.ready.clear();
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}
