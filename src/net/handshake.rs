//! Secure Scuttlebutt secret handshake, version 1 (SHS1): mutual authentication of two nodes that
//! share a network key (the cluster's `rpc_secret`), ending with the keys of a box-stream.
//!
//! Client A knows server B's long-term Ed25519 public key before connecting. Wire format (all
//! sizes fixed, no framing):
//!
//! | # | direction | bytes | content                                                              |
//! |---|-----------|-------|----------------------------------------------------------------------|
//! | 1 | A → B     | 64    | `auth(K, a_eph) ‖ a_eph` (hello)                                     |
//! | 2 | B → A     | 64    | `auth(K, b_eph) ‖ b_eph` (hello)                                     |
//! | 3 | A → B     | 112   | `box[sha256(K‖ab‖aB)](sig_A(K‖B‖sha256(ab)) ‖ A)` (client auth)     |
//! | 4 | B → A     | 80    | `box[sha256(K‖ab‖aB‖Ab)](sig_B(K‖sig_A‖A‖sha256(ab)))` (accept)     |
//!
//! `auth` is HMAC-SHA-512/256, `box` a secretbox with the zero nonce, `ab`/`aB`/`Ab` are X25519
//! shared secrets (ephemeral×ephemeral, A-ephemeral×B-long-term, A-long-term×B-ephemeral; the
//! long-term Ed25519 keys are converted to Curve25519). Ephemeral keys are Ed25519 seeds converted
//! to Curve25519, as the reference implementation does, so that test vectors can be replayed.
//!
//! After step 4 both sides derive, with `s = sha256(sha256(K‖ab‖aB‖Ab))`:
//! encrypt key `sha256(s ‖ remote long-term pk)`, decrypt key `sha256(s ‖ local long-term pk)`,
//! encrypt nonce = first 24 bytes of the remote hello's HMAC, decrypt nonce = same of the local one.
//!
//! The protocol is written as synchronous step functions on [`HandshakeState`] (named after the
//! steps of the reference implementation and its test vectors), wrapped by [`client_handshake`]
//! and [`server_handshake`] which do the I/O. A peer with the wrong network key is rejected at
//! the hello; every failure is a [`HandshakeError`], never a panic. The wrappers do not time out:
//! callers wrap them in `tokio::time::timeout`.

use std::fmt;

use ed25519_dalek::SigningKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::crypto::NonceBytes;
use crate::util::ids::NodeId;

mod state;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use state::HandshakeState;

/// The 32-byte network key (the cluster's `rpc_secret`, called `app_key` in SSB).
pub type NetworkKey = [u8; 32];

/// Size of a hello message (steps 1 and 2).
pub const HELLO_LEN: usize = 64;
/// Size of the client authentication message (step 3).
pub const CLIENT_AUTH_LEN: usize = 112;
/// Size of the server accept message (step 4).
pub const SERVER_ACCEPT_LEN: usize = 80;

/// The four messages of the handshake, to say where an I/O error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeStep {
    ClientHello,
    ServerHello,
    ClientAuth,
    ServerAccept,
}

impl fmt::Display for HandshakeStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeStep::ClientHello => "client hello (64 bytes)",
            HandshakeStep::ServerHello => "server hello (64 bytes)",
            HandshakeStep::ClientAuth => "client authentication (112 bytes)",
            HandshakeStep::ServerAccept => "server accept (80 bytes)",
        })
    }
}

/// Why a handshake failed. Each variant names the step that rejected the peer.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("handshake I/O error on the {step}: {source}{}", io_hint(*.step, .source))]
    Io {
        step: HandshakeStep,
        #[source]
        source: std::io::Error,
    },
    #[error("peer hello rejected: {reason}")]
    BadHello { reason: &'static str },
    #[error("client authentication rejected: {reason}")]
    BadAuth { reason: &'static str },
    #[error("server accept rejected: {reason}")]
    BadAccept { reason: &'static str },
    #[error("public key {key} is not a usable Ed25519 public key")]
    InvalidPeerKey { key: NodeId },
    #[error("handshake step {step} called before {missing} was known")]
    OutOfOrder {
        step: &'static str,
        missing: &'static str,
    },
}

/// What an I/O error most likely means: a server that closes the connection instead of
/// answering the client's hello has rejected its HMAC, i.e. uses another network key.
fn io_hint(step: HandshakeStep, source: &std::io::Error) -> &'static str {
    if step == HandshakeStep::ServerHello && source.kind() == std::io::ErrorKind::UnexpectedEof {
        " (the peer closed the connection after our hello: is its rpc_secret the same as ours?)"
    } else {
        ""
    }
}

/// Box-stream keys and initial nonces produced by a successful handshake.
#[derive(Clone, PartialEq, Eq)]
pub struct HandshakeKeys {
    /// Key for the boxes this side sends.
    pub encrypt_key: [u8; 32],
    /// First nonce of the boxes this side sends.
    pub encrypt_nonce: NonceBytes,
    /// Key for the boxes this side receives.
    pub decrypt_key: [u8; 32],
    /// First nonce of the boxes this side receives.
    pub decrypt_nonce: NonceBytes,
}

impl fmt::Debug for HandshakeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeKeys").finish_non_exhaustive()
    }
}

async fn send<S: AsyncWrite + Unpin>(
    stream: &mut S,
    step: HandshakeStep,
    data: &[u8],
) -> Result<(), HandshakeError> {
    let io = |source| HandshakeError::Io { step, source };
    stream.write_all(data).await.map_err(io)?;
    stream.flush().await.map_err(io)
}

async fn recv<const N: usize, S: AsyncRead + Unpin>(
    stream: &mut S,
    step: HandshakeStep,
) -> Result<[u8; N], HandshakeError> {
    let mut buf = [0u8; N];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|source| HandshakeError::Io { step, source })?;
    Ok(buf)
}

/// Runs the client side over `stream`, authenticating the server as `server_pk`. Returns the
/// box-stream keys and the server's id (`server_pk`).
pub async fn client_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    network_key: &NetworkKey,
    local: &SigningKey,
    server_pk: NodeId,
) -> Result<(HandshakeKeys, NodeId), HandshakeError> {
    let mut st = HandshakeState::new_random(*network_key, local.clone(), Some(server_pk));
    send(stream, HandshakeStep::ClientHello, &st.create_challenge()).await?;
    let hello: [u8; HELLO_LEN] = recv(stream, HandshakeStep::ServerHello).await?;
    st.client_verify_challenge(&hello)?;
    send(stream, HandshakeStep::ClientAuth, &st.client_create_auth()?).await?;
    let accept: [u8; SERVER_ACCEPT_LEN] = recv(stream, HandshakeStep::ServerAccept).await?;
    st.client_verify_accept(&accept)?;
    st.clean()
}

/// Runs the server side over `stream`. Returns the box-stream keys and the authenticated
/// client's id.
pub async fn server_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    network_key: &NetworkKey,
    local: &SigningKey,
) -> Result<(HandshakeKeys, NodeId), HandshakeError> {
    let mut st = HandshakeState::new_random(*network_key, local.clone(), None);
    let hello: [u8; HELLO_LEN] = recv(stream, HandshakeStep::ClientHello).await?;
    st.verify_challenge(&hello)?;
    send(stream, HandshakeStep::ServerHello, &st.create_challenge()).await?;
    let auth: [u8; CLIENT_AUTH_LEN] = recv(stream, HandshakeStep::ClientAuth).await?;
    st.server_verify_auth(&auth)?;
    send(
        stream,
        HandshakeStep::ServerAccept,
        &st.server_create_accept()?,
    )
    .await?;
    st.clean()
}
