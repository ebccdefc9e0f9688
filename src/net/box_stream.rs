//! Box-stream (as in Secure Scuttlebutt): the encrypted, authenticated byte stream that follows
//! the secret handshake. One direction of a connection is one box-stream with its own key and
//! nonce, both taken from [`HandshakeKeys`].
//!
//! Format of one box, for a body of `1..=4096` bytes and a current nonce `n`:
//!
//! ```text
//! header (34 bytes) = secretbox[key, n]( body_len: u16 BE ‖ body_mac: 16 bytes )
//! body (body_len)   = XSalsa20 ciphertext of the body with nonce n+1 (its MAC is body_mac)
//! ```
//!
//! after which the nonce is `n+2`. Nonces are 24-byte big-endian counters. A header whose
//! plaintext is 18 zero bytes is the goodbye: the sender is done and the stream ends cleanly.
//! A stream that ends any other way, a MAC that does not verify, or a header announcing 0 or more
//! than 4096 bytes is an error; after an error the reader refuses to go on (it cannot resync).
//!
//! `send`/`recv` are not cancel-safe: a future dropped mid-way leaves the stream unusable.

use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadHalf, WriteHalf,
};

use super::crypto::{self, NonceBytes, MAC_LEN};
use super::handshake::HandshakeKeys;

#[cfg(test)]
mod tests;

/// Largest body carried by one box.
pub const MAX_BODY_LEN: usize = 4096;
/// Size of an encrypted header.
pub const HEADER_LEN: usize = MAC_LEN + HEADER_PLAIN_LEN;
/// Size of a header's plaintext: body length (2) and body MAC (16).
const HEADER_PLAIN_LEN: usize = 2 + MAC_LEN;
/// Writes are batched up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// The two parts of a box, to say where a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxPart {
    Header,
    Body,
}

impl std::fmt::Display for BoxPart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BoxPart::Header => "header",
            BoxPart::Body => "body",
        })
    }
}

/// Errors of a box-stream.
#[derive(Debug, thiserror::Error)]
pub enum BoxStreamError {
    #[error("box-stream I/O error: {source}")]
    Io {
        #[from]
        source: std::io::Error,
    },
    #[error("box-stream ended without a goodbye (while reading a box {part})")]
    Truncated { part: BoxPart },
    #[error("box-stream {part} failed authentication (wrong key, tampered or reordered data)")]
    BadMac { part: BoxPart },
    #[error("box-stream header announces a body of {len} bytes (allowed: 1 to 4096)")]
    BadLength { len: usize },
    #[error("box-stream is closed (goodbye already sent, or an earlier error)")]
    Closed,
}

/// Sending half of a box-stream.
pub struct BoxStreamWriter<W> {
    inner: W,
    key: [u8; 32],
    nonce: NonceBytes,
    closed: bool,
}

impl<W: AsyncWrite + Unpin> BoxStreamWriter<W> {
    /// A writer that seals with `key`, starting at `nonce`.
    pub fn new(inner: W, key: [u8; 32], nonce: NonceBytes) -> Self {
        BoxStreamWriter {
            inner,
            key,
            nonce,
            closed: false,
        }
    }

    /// A writer with the sending key and nonce of a handshake.
    pub fn from_keys(inner: W, keys: &HandshakeKeys) -> Self {
        Self::new(inner, keys.encrypt_key, keys.encrypt_nonce)
    }

    /// Sends `data` as boxes of at most 4096 bytes, then flushes. Empty data sends nothing.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), BoxStreamError> {
        if self.closed {
            return Err(BoxStreamError::Closed);
        }
        let mut buf = Vec::with_capacity(WRITE_BATCH.min(data.len() + HEADER_LEN * 2));
        for chunk in data.chunks(MAX_BODY_LEN) {
            self.seal_box(chunk, &mut buf);
            if buf.len() >= WRITE_BATCH {
                self.write(&buf).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            self.write(&buf).await?;
        }
        self.inner.flush().await.map_err(|e| self.fail(e))
    }

    /// Sends the goodbye header, flushes and shuts down the underlying writer. Idempotent.
    pub async fn goodbye(&mut self) -> Result<(), BoxStreamError> {
        if self.closed {
            return Ok(());
        }
        let header = crypto::seal(&self.key, &self.nonce, &[0u8; HEADER_PLAIN_LEN]);
        crypto::increment_nonce(&mut self.nonce);
        self.closed = true;
        self.inner.write_all(&header).await?;
        self.inner.flush().await?;
        self.inner.shutdown().await?;
        Ok(())
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.inner
    }

    /// Appends one sealed box (header and body) for `chunk` (1..=4096 bytes) to `out`.
    fn seal_box(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let header_nonce = self.nonce;
        crypto::increment_nonce(&mut self.nonce);
        let body_nonce = self.nonce;
        crypto::increment_nonce(&mut self.nonce);

        let body_start = out.len() + HEADER_LEN;
        out.resize(body_start, 0);
        out.extend_from_slice(chunk);
        let body_mac = crypto::seal_detached(&self.key, &body_nonce, &mut out[body_start..]);

        let mut plain = [0u8; HEADER_PLAIN_LEN];
        // `chunk` comes from `chunks(MAX_BODY_LEN)`, so its length fits in a u16.
        plain[..2].copy_from_slice(&(chunk.len() as u16).to_be_bytes());
        plain[2..].copy_from_slice(&body_mac);
        let header = crypto::seal(&self.key, &header_nonce, &plain);
        out[body_start - HEADER_LEN..body_start].copy_from_slice(&header);
    }

    async fn write(&mut self, buf: &[u8]) -> Result<(), BoxStreamError> {
        self.inner.write_all(buf).await.map_err(|e| self.fail(e))
    }

    /// After a failed write the peer may have seen part of a box: nothing more can be sent.
    fn fail(&mut self, e: std::io::Error) -> BoxStreamError {
        self.closed = true;
        BoxStreamError::Io { source: e }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReaderState {
    Open,
    Finished,
    Failed,
}

/// Receiving half of a box-stream.
pub struct BoxStreamReader<R> {
    inner: R,
    key: [u8; 32],
    nonce: NonceBytes,
    state: ReaderState,
}

impl<R: AsyncRead + Unpin> BoxStreamReader<R> {
    /// A reader that opens with `key`, starting at `nonce`.
    pub fn new(inner: R, key: [u8; 32], nonce: NonceBytes) -> Self {
        BoxStreamReader {
            inner,
            key,
            nonce,
            state: ReaderState::Open,
        }
    }

    /// A reader with the receiving key and nonce of a handshake.
    pub fn from_keys(inner: R, keys: &HandshakeKeys) -> Self {
        Self::new(inner, keys.decrypt_key, keys.decrypt_nonce)
    }

    /// Receives the body of the next box (1 to 4096 bytes); `None` once the peer said goodbye.
    /// Box boundaries are not message boundaries: one `send` may arrive as several boxes.
    pub async fn recv(&mut self) -> Result<Option<Vec<u8>>, BoxStreamError> {
        match self.state {
            ReaderState::Open => (),
            ReaderState::Finished => return Ok(None),
            ReaderState::Failed => return Err(BoxStreamError::Closed),
        }
        let res = self.recv_box().await;
        self.state = match &res {
            Ok(Some(_)) => ReaderState::Open,
            Ok(None) => ReaderState::Finished,
            Err(_) => ReaderState::Failed,
        };
        res
    }

    async fn recv_box(&mut self) -> Result<Option<Vec<u8>>, BoxStreamError> {
        let mut header = [0u8; HEADER_LEN];
        read_exact(&mut self.inner, &mut header, BoxPart::Header).await?;
        let header_nonce = self.nonce;
        let plain =
            crypto::open(&self.key, &header_nonce, &header).ok_or(BoxStreamError::BadMac {
                part: BoxPart::Header,
            })?;
        if plain.len() != HEADER_PLAIN_LEN {
            return Err(BoxStreamError::BadMac {
                part: BoxPart::Header,
            });
        }
        if plain.iter().all(|&b| b == 0) {
            crypto::increment_nonce(&mut self.nonce);
            return Ok(None);
        }
        let len = usize::from(u16::from_be_bytes([plain[0], plain[1]]));
        if len == 0 || len > MAX_BODY_LEN {
            return Err(BoxStreamError::BadLength { len });
        }
        let mut body = vec![0u8; len];
        read_exact(&mut self.inner, &mut body, BoxPart::Body).await?;
        let mut body_nonce = header_nonce;
        crypto::increment_nonce(&mut body_nonce);
        if !crypto::open_detached(&self.key, &body_nonce, &mut body, &plain[2..]) {
            return Err(BoxStreamError::BadMac {
                part: BoxPart::Body,
            });
        }
        self.nonce = body_nonce;
        crypto::increment_nonce(&mut self.nonce);
        Ok(Some(body))
    }

    /// The underlying reader.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

async fn read_exact<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut [u8],
    part: BoxPart,
) -> Result<(), BoxStreamError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Err(BoxStreamError::Truncated { part })
        }
        Err(e) => Err(e.into()),
    }
}

/// Read buffer of a connection: a box is read as a header then a body, two small reads that
/// would each be a system call; buffered, a 1 MiB message takes a few dozen reads, not 512.
const READ_BUFFER: usize = 64 * 1024;

/// Splits a stream on which a handshake just completed into its box-stream reader (buffered)
/// and writer (which batches boxes itself).
pub fn split<S: AsyncRead + AsyncWrite>(
    stream: S,
    keys: &HandshakeKeys,
) -> (
    BoxStreamReader<BufReader<ReadHalf<S>>>,
    BoxStreamWriter<WriteHalf<S>>,
) {
    let (r, w) = tokio::io::split(stream);
    (
        BoxStreamReader::from_keys(BufReader::with_capacity(READ_BUFFER, r), keys),
        BoxStreamWriter::from_keys(w, keys),
    )
}
