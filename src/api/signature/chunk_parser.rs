//! The aws-chunked decoder as a synchronous state machine, fed with pieces of the body as they
//! arrive (any split, down to single bytes); [`super::streaming`] wraps it in a `Stream`.
//!
//! Format (`<sig>` is 64 lower-case hex digits, sizes are hex):
//! ```text
//! signed:    <size>;chunk-signature=<sig>\r\n<data>\r\n … 0;chunk-signature=<sig>\r\n
//! unsigned:  <size>\r\n<data>\r\n … 0\r\n
//! then:      [<name>:<value>\r\n …] [x-amz-trailer-signature:<sig>\r\n] \r\n
//! ```
//! Trailing headers are refused for `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`; for the signed
//! trailer variant `x-amz-trailer-signature` is required and must come last. An empty line
//! right after the final chunk, before the trailing headers, is tolerated when trailers are
//! expected (some clients send one).
//!
//! Invariants: a chunk of a signed body is released only once its signature (chained from the
//! previous one, starting at the seed) is verified, so at most one chunk (≤ 16 MiB) is held;
//! unsigned data is released as it arrives. Lines are at most 4 KiB, at most 16 trailing
//! headers. Data is never copied: the output pieces are slices of the input.

use std::collections::VecDeque;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::checksum::{Checksum, ChecksumAlgorithm, Checksummer};
use super::error::Error;
use super::header::shorten;
use super::keys::{ct_eq, parse_hex32, sha256, SigningContext};
use super::streaming::{ChunkedConfig, ChunkedMode, Trailers};

/// Largest accepted chunk: 16 MiB.
pub const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Longest accepted chunk-header or trailer line, without its CRLF.
pub const MAX_LINE_LEN: usize = 4096;
/// Most trailing headers accepted.
pub const MAX_TRAILERS: usize = 16;

const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

enum State {
    /// Reading `<size>[;chunk-signature=<sig>]`.
    Header,
    /// Reading chunk data.
    Data {
        remaining: u64,
        signature: Option<[u8; 32]>,
    },
    /// Reading the CRLF after chunk data.
    DataEnd,
    /// Reading trailing headers until the empty line.
    Trailer { blank_skipped: bool },
    /// The body is complete; only the end of input may follow.
    End,
}

pub(super) struct ChunkDecoder {
    state: State,
    signing: Option<SigningContext>,
    trailers_allowed: bool,
    expected_trailer: Option<ChecksumAlgorithm>,
    decoded_content_length: Option<u64>,
    previous_signature: [u8; 32],
    line: Vec<u8>,
    chunk_hasher: Sha256,
    chunk_pieces: Vec<Bytes>,
    decoded: u64,
    checksummer: Option<Checksummer>,
    trailers: Vec<(String, String)>,
    trailer_signature_ok: bool,
}

impl ChunkDecoder {
    pub(super) fn new(config: ChunkedConfig) -> Self {
        let (signing, trailers_allowed) = match config.mode {
            ChunkedMode::Signed(ctx) => (Some(ctx), false),
            ChunkedMode::SignedTrailer(ctx) => (Some(ctx), true),
            ChunkedMode::UnsignedTrailer => (None, true),
        };
        let previous_signature = signing.as_ref().map_or([0; 32], |s| *s.seed_signature());
        ChunkDecoder {
            state: State::Header,
            signing,
            trailers_allowed,
            expected_trailer: config.expected_trailer,
            decoded_content_length: config.decoded_content_length,
            previous_signature,
            line: Vec::new(),
            chunk_hasher: Sha256::new(),
            chunk_pieces: Vec::new(),
            decoded: 0,
            checksummer: config.expected_trailer.map(Checksummer::new),
            trailers: Vec::new(),
            trailer_signature_ok: false,
        }
    }

    /// Consumes all of `input`, pushing decoded (and verified) data to `out`.
    pub(super) fn feed(
        &mut self,
        input: &mut Bytes,
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), Error> {
        while !input.is_empty() {
            match self.state {
                State::Data {
                    remaining,
                    signature,
                } => self.data(input, out, remaining, signature)?,
                State::End => {
                    return Err(Error::invalid_request(
                        "unexpected data after the end of the aws-chunked body",
                    ))
                }
                _ => {
                    if let Some(line) = self.take_line(input)? {
                        self.on_line(&line)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The input ended: checks the body was complete and returns its trailing headers.
    pub(super) fn finish(&mut self) -> Result<Trailers, Error> {
        match self.state {
            State::End => {}
            // Tolerate a missing final CRLF: the trailers received so far are complete.
            State::Trailer { .. } if self.line.is_empty() => self.end_of_trailers()?,
            _ => {
                return Err(Error::incomplete_body(
                    "the aws-chunked body ended before its final chunk",
                ))
            }
        }
        Ok(Trailers {
            headers: std::mem::take(&mut self.trailers),
        })
    }

    /// Takes a complete line (without CRLF) from the input, or keeps the partial line.
    fn take_line(&mut self, input: &mut Bytes) -> Result<Option<Vec<u8>>, Error> {
        let newline = input.iter().position(|&c| c == b'\n');
        let take = newline.map_or(input.len(), |i| i + 1);
        if self.line.len() + take > MAX_LINE_LEN + 2 {
            return Err(Error::invalid_request(format!(
                "aws-chunked line longer than {MAX_LINE_LEN} bytes"
            )));
        }
        let piece = input.split_to(take);
        self.line.extend_from_slice(&piece);
        if newline.is_none() {
            return Ok(None);
        }
        let mut line = std::mem::take(&mut self.line);
        line.pop();
        if line.pop() != Some(b'\r') {
            return Err(Error::invalid_request(
                "aws-chunked line not terminated by CRLF",
            ));
        }
        Ok(Some(line))
    }

    fn on_line(&mut self, line: &[u8]) -> Result<(), Error> {
        match self.state {
            State::Header => self.chunk_header(line),
            State::DataEnd if line.is_empty() => {
                self.state = State::Header;
                Ok(())
            }
            State::DataEnd => Err(Error::invalid_request(
                "chunk data longer than its declared size",
            )),
            State::Trailer { blank_skipped } => {
                if line.is_empty() {
                    let expecting = self.signing.is_some() || self.expected_trailer.is_some();
                    if self.trailers_allowed
                        && expecting
                        && !blank_skipped
                        && self.trailers.is_empty()
                        && !self.trailer_signature_ok
                    {
                        self.state = State::Trailer {
                            blank_skipped: true,
                        };
                        return Ok(());
                    }
                    self.end_of_trailers()?;
                    self.state = State::End;
                    Ok(())
                } else {
                    self.trailer_line(line)
                }
            }
            // `feed` never reads lines in these states.
            State::Data { .. } | State::End => Err(Error::invalid_request(
                "aws-chunked decoder in an invalid state",
            )),
        }
    }

    fn chunk_header(&mut self, line: &[u8]) -> Result<(), Error> {
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::invalid_request("chunk header is not ASCII"))?;
        let (size, extension) = match line.split_once(';') {
            Some((size, ext)) => (size, Some(ext)),
            None => (line, None),
        };
        let size = parse_chunk_size(size)?;
        let signature = match (&self.signing, extension) {
            (Some(_), Some(ext)) => {
                let sig = ext.strip_prefix("chunk-signature=").ok_or_else(|| {
                    Error::invalid_request(format!("unexpected chunk extension {:?}", shorten(ext)))
                })?;
                // A malformed signature cannot match: same error as a wrong one.
                Some(
                    parse_hex32(sig)
                        .ok_or_else(|| Error::chunk_signature_mismatch(String::new()))?,
                )
            }
            (Some(_), None) => return Err(Error::chunk_signature_mismatch(String::new())),
            (None, Some(ext)) => {
                return Err(Error::invalid_request(format!(
                    "unexpected chunk extension {:?} in an unsigned aws-chunked body",
                    shorten(ext)
                )))
            }
            (None, None) => None,
        };
        if size == 0 {
            self.verify_chunk(signature, &sha256(b""))?;
            self.state = State::Trailer {
                blank_skipped: false,
            };
        } else {
            self.state = State::Data {
                remaining: size,
                signature,
            };
        }
        Ok(())
    }

    fn data(
        &mut self,
        input: &mut Bytes,
        out: &mut VecDeque<Bytes>,
        remaining: u64,
        signature: Option<[u8; 32]>,
    ) -> Result<(), Error> {
        let n = usize::try_from(remaining).map_or(input.len(), |r| r.min(input.len()));
        let piece = input.split_to(n);
        self.decoded += n as u64;
        if let Some(expected) = self.decoded_content_length {
            if self.decoded > expected {
                return Err(Error::incomplete_body(format!(
                    "the decoded body is longer than x-amz-decoded-content-length ({expected})"
                )));
            }
        }
        if let Some(c) = self.checksummer.as_mut() {
            c.update(&piece);
        }
        let remaining = remaining - n as u64;
        if self.signing.is_some() {
            self.chunk_hasher.update(&piece);
            self.chunk_pieces.push(piece);
        } else {
            out.push_back(piece);
        }
        if remaining > 0 {
            self.state = State::Data {
                remaining,
                signature,
            };
            return Ok(());
        }
        if self.signing.is_some() {
            let hash: [u8; 32] = std::mem::take(&mut self.chunk_hasher).finalize().into();
            self.verify_chunk(signature, &hash)?;
            out.extend(self.chunk_pieces.drain(..));
        }
        self.state = State::DataEnd;
        Ok(())
    }

    fn verify_chunk(
        &mut self,
        signature: Option<[u8; 32]>,
        data_sha256: &[u8; 32],
    ) -> Result<(), Error> {
        let (Some(ctx), Some(provided)) = (&self.signing, signature) else {
            return Ok(());
        };
        let (expected, sts) = ctx.chunk_signature(&self.previous_signature, data_sha256);
        if !ct_eq(&expected, &provided) {
            return Err(Error::chunk_signature_mismatch(sts));
        }
        self.previous_signature = provided;
        Ok(())
    }

    fn trailer_line(&mut self, line: &[u8]) -> Result<(), Error> {
        if !self.trailers_allowed {
            return Err(Error::invalid_request(
                "trailing headers are not allowed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
            ));
        }
        if self.trailer_signature_ok {
            return Err(Error::invalid_request(
                "x-amz-trailer-signature must be the last trailing header",
            ));
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| Error::invalid_request("trailing header is not valid UTF-8"))?;
        let (name, value) = line.split_once(':').ok_or_else(|| {
            Error::invalid_request(format!("malformed trailing header {:?}", shorten(line)))
        })?;
        let name = name.trim().to_ascii_lowercase();
        let value = value.trim();
        if name == TRAILER_SIGNATURE {
            let Some(ctx) = &self.signing else {
                return Err(Error::invalid_request(
                    "x-amz-trailer-signature in an unsigned aws-chunked body",
                ));
            };
            let mut canonical = Vec::new();
            for (n, v) in &self.trailers {
                canonical.extend_from_slice(format!("{n}:{v}\n").as_bytes());
            }
            let (expected, sts) = ctx.trailer_signature(&self.previous_signature, &canonical);
            match parse_hex32(value) {
                Some(provided) if ct_eq(&expected, &provided) => {
                    self.trailer_signature_ok = true;
                    Ok(())
                }
                _ => Err(Error::chunk_signature_mismatch(sts)),
            }
        } else {
            if self.trailers.len() >= MAX_TRAILERS {
                return Err(Error::invalid_request("too many trailing headers"));
            }
            self.trailers.push((name, value.to_string()));
            Ok(())
        }
    }

    /// Checks made once all trailing headers are in: trailer signature, declared checksum,
    /// decoded length.
    fn end_of_trailers(&mut self) -> Result<(), Error> {
        if self.trailers_allowed && self.signing.is_some() && !self.trailer_signature_ok {
            return Err(Error::chunk_signature_mismatch(String::new()));
        }
        if let Some(alg) = self.expected_trailer {
            let value = self
                .trailers
                .iter()
                .find(|(n, _)| n == alg.header_name())
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| {
                    Error::invalid_request(format!(
                        "x-amz-trailer announced {} but the body has no such trailing header",
                        alg.header_name()
                    ))
                })?;
            let received = Checksum::from_base64(alg, value)?;
            let computed = self
                .checksummer
                .take()
                .map_or_else(|| Checksum::compute(alg, b""), Checksummer::finalize);
            received.verify(&computed)?;
        }
        if let Some(expected) = self.decoded_content_length {
            if self.decoded != expected {
                return Err(Error::incomplete_body(format!(
                    "the decoded body has {} bytes, x-amz-decoded-content-length says {expected}",
                    self.decoded
                )));
            }
        }
        Ok(())
    }
}

/// Parses a hex chunk size, at most [`MAX_CHUNK_SIZE`].
fn parse_chunk_size(s: &str) -> Result<u64, Error> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::invalid_request(format!(
            "invalid chunk size {:?}",
            shorten(s)
        )));
    }
    let digits = s.trim_start_matches('0');
    let size = if digits.len() > 8 {
        u64::MAX
    } else {
        u64::from_str_radix(if digits.is_empty() { "0" } else { digits }, 16).unwrap_or(u64::MAX)
    };
    if size > MAX_CHUNK_SIZE {
        return Err(Error::invalid_request(format!(
            "chunk size {} is larger than the maximum of {MAX_CHUNK_SIZE} bytes",
            shorten(s)
        )));
    }
    Ok(size)
}
