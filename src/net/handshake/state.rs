//! The handshake state machine: [`HandshakeState`] and its synchronous step functions, one per
//! step of the reference implementation (`initialize`, `createChallenge`, `verifyChallenge`,
//! `clientVerifyChallenge`, `clientCreateAuth`, `serverVerifyAuth`, `serverCreateAccept`,
//! `clientVerifyAccept`, `clean`). They do no I/O and take the ephemeral seed as an argument, so
//! that the test vectors can be replayed. Verify steps leave the state unchanged when they reject
//! their input. Field names follow the reference implementation (see the parent module's table).

use std::fmt;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;

use super::{
    HandshakeError, HandshakeKeys, NetworkKey, CLIENT_AUTH_LEN, HELLO_LEN, SERVER_ACCEPT_LEN,
};
use crate::net::crypto::{self, ZERO_NONCE};
use crate::util::ids::NodeId;

/// Plaintext of the client authentication: signature (64) and client public key (32).
pub(super) const CLIENT_PROOF_LEN: usize = 96;

/// Our side's keys: long-term identity, ephemeral Curve25519 pair, and the proof we sent (client).
#[derive(Clone)]
pub(super) struct LocalKeys {
    pub(super) signing_key: SigningKey,
    pub(super) kx_sk: [u8; 32],
    pub(super) kx_pk: [u8; 32],
    pub(super) app_mac: [u8; 32],
    /// Client only: `sig_A(K ‖ B ‖ shash) ‖ A`, the plaintext of the client auth box.
    pub(super) hello: Option<[u8; CLIENT_PROOF_LEN]>,
}

/// What we know of the peer so far.
#[derive(Clone, Default)]
pub(super) struct RemoteKeys {
    pub(super) public_key: Option<NodeId>,
    pub(super) kx_pk: Option<[u8; 32]>,
    pub(super) app_mac: Option<[u8; 32]>,
    /// Server only: the client's proof (plaintext of its auth box).
    pub(super) hello: Option<[u8; CLIENT_PROOF_LEN]>,
}

/// State of one side of a handshake; field names follow the reference implementation.
#[derive(Clone)]
pub struct HandshakeState {
    pub(super) app_key: NetworkKey,
    pub(super) local: LocalKeys,
    pub(super) remote: RemoteKeys,
    /// `ab`: ephemeral × ephemeral shared secret.
    pub(super) secret: Option<[u8; 32]>,
    /// `sha256(ab)`.
    pub(super) shash: Option<[u8; 32]>,
    /// `aB`: client ephemeral × server long-term.
    pub(super) a_bob: Option<[u8; 32]>,
    /// `sha256(K ‖ ab ‖ aB)`: key of the client auth box.
    pub(super) secret2: Option<[u8; 32]>,
    /// `Ab`: client long-term × server ephemeral.
    pub(super) b_alice: Option<[u8; 32]>,
    /// `sha256(K ‖ ab ‖ aB ‖ Ab)`: key of the server accept box.
    pub(super) secret3: Option<[u8; 32]>,
}

impl fmt::Debug for HandshakeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandshakeState")
            .field(
                "local",
                &NodeId(self.local.signing_key.verifying_key().to_bytes()),
            )
            .field("remote", &self.remote.public_key)
            .finish_non_exhaustive()
    }
}

fn missing(step: &'static str, what: &'static str) -> HandshakeError {
    HandshakeError::OutOfOrder {
        step,
        missing: what,
    }
}

fn to_array<const N: usize>(bytes: &[u8]) -> Option<[u8; N]> {
    <[u8; N]>::try_from(bytes).ok()
}

impl HandshakeState {
    /// Step `initialize`: derives the ephemeral Curve25519 pair from `ephemeral_seed` (an Ed25519
    /// seed, converted) and `app_mac = auth(K, kx_pk)`. A client passes the server's public key.
    pub fn initialize(
        network_key: NetworkKey,
        local: SigningKey,
        remote_public_key: Option<NodeId>,
        ephemeral_seed: [u8; 32],
    ) -> Self {
        let ephemeral = SigningKey::from_bytes(&ephemeral_seed);
        let kx_sk = crypto::ed25519_sk_to_curve25519(&ephemeral);
        let kx_pk = ephemeral.verifying_key().to_montgomery().to_bytes();
        let app_mac = crypto::auth(&network_key, &kx_pk);
        HandshakeState {
            app_key: network_key,
            local: LocalKeys {
                signing_key: local,
                kx_sk,
                kx_pk,
                app_mac,
                hello: None,
            },
            remote: RemoteKeys {
                public_key: remote_public_key,
                ..RemoteKeys::default()
            },
            secret: None,
            shash: None,
            a_bob: None,
            secret2: None,
            b_alice: None,
            secret3: None,
        }
    }

    /// [`initialize`](Self::initialize) with a fresh ephemeral seed from the OS random source.
    pub fn new_random(
        network_key: NetworkKey,
        local: SigningKey,
        remote_public_key: Option<NodeId>,
    ) -> Self {
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        Self::initialize(network_key, local, remote_public_key, seed)
    }

    /// The peer's long-term public key, once known (client: from the start; server: after
    /// [`server_verify_auth`](Self::server_verify_auth)).
    pub fn remote_public_key(&self) -> Option<NodeId> {
        self.remote.public_key
    }

    fn local_id(&self) -> [u8; 32] {
        self.local.signing_key.verifying_key().to_bytes()
    }

    /// Step `createChallenge`: our 64-byte hello, `app_mac ‖ kx_pk`.
    pub fn create_challenge(&self) -> [u8; HELLO_LEN] {
        let mut out = [0u8; HELLO_LEN];
        out[..32].copy_from_slice(&self.local.app_mac);
        out[32..].copy_from_slice(&self.local.kx_pk);
        out
    }

    /// Step `verifyChallenge`: checks the peer's hello (HMAC under the network key) and derives
    /// `secret = ab` and `shash = sha256(ab)`. The state is unchanged on failure.
    pub fn verify_challenge(&mut self, hello: &[u8]) -> Result<(), HandshakeError> {
        if hello.len() != HELLO_LEN {
            return Err(HandshakeError::BadHello {
                reason: "wrong length",
            });
        }
        let (mac, kx_pk) = hello.split_at(32);
        if !crypto::auth_verify(&self.app_key, kx_pk, mac) {
            return Err(HandshakeError::BadHello {
                reason: "HMAC mismatch: the peer uses another network key (rpc_secret)",
            });
        }
        let bad = HandshakeError::BadHello {
            reason: "malformed ephemeral key",
        };
        let (Some(mac), Some(kx_pk)) = (to_array::<32>(mac), to_array::<32>(kx_pk)) else {
            return Err(bad);
        };
        let secret = crypto::dh(&self.local.kx_sk, &kx_pk).ok_or(bad)?;
        self.remote.kx_pk = Some(kx_pk);
        self.remote.app_mac = Some(mac);
        self.shash = Some(crypto::sha256(&[&secret]));
        self.secret = Some(secret);
        Ok(())
    }

    /// Step `clientVerifyChallenge`: [`verify_challenge`](Self::verify_challenge), then derives
    /// `a_bob = aB`, `secret2` and signs our proof `sig_A(K ‖ B ‖ shash) ‖ A`.
    pub fn client_verify_challenge(&mut self, hello: &[u8]) -> Result<(), HandshakeError> {
        const STEP: &str = "client_verify_challenge";
        let server = self
            .remote
            .public_key
            .ok_or_else(|| missing(STEP, "the server public key"))?;
        let invalid = HandshakeError::InvalidPeerKey { key: server };
        let server_curve = crypto::ed25519_pk_to_curve25519(&server.0).ok_or(invalid)?;
        self.verify_challenge(hello)?;
        let (secret, shash) = match (self.secret, self.shash) {
            (Some(s), Some(h)) => (s, h),
            _ => return Err(missing(STEP, "the ephemeral shared secret")),
        };
        let a_bob = crypto::dh(&self.local.kx_sk, &server_curve)
            .ok_or(HandshakeError::InvalidPeerKey { key: server })?;
        let secret2 = crypto::sha256(&[&self.app_key, &secret, &a_bob]);
        let sig = self
            .local
            .signing_key
            .sign(&[&self.app_key[..], &server.0, &shash].concat());
        let mut proof = [0u8; CLIENT_PROOF_LEN];
        proof[..64].copy_from_slice(&sig.to_bytes());
        proof[64..].copy_from_slice(&self.local_id());
        self.a_bob = Some(a_bob);
        self.secret2 = Some(secret2);
        self.local.hello = Some(proof);
        Ok(())
    }

    /// Step `clientCreateAuth`: the 112-byte box of our proof under `secret2`.
    pub fn client_create_auth(&self) -> Result<[u8; CLIENT_AUTH_LEN], HandshakeError> {
        const STEP: &str = "client_create_auth";
        let proof = self.local.hello.ok_or_else(|| missing(STEP, "the proof"))?;
        let key = self.secret2.ok_or_else(|| missing(STEP, "secret2"))?;
        let boxed = crypto::seal(&key, &ZERO_NONCE, &proof);
        to_array(&boxed).ok_or_else(|| missing(STEP, "a 112-byte box"))
    }

    /// Step `serverVerifyAuth`: opens the client's box, checks its signature and learns the
    /// client's identity; derives `a_bob`, `secret2`, `b_alice`, `secret3`. State unchanged on failure.
    pub fn server_verify_auth(&mut self, auth: &[u8]) -> Result<(), HandshakeError> {
        const STEP: &str = "server_verify_auth";
        let bad = |reason| HandshakeError::BadAuth { reason };
        if auth.len() != CLIENT_AUTH_LEN {
            return Err(bad("wrong length"));
        }
        let remote_kx = self
            .remote
            .kx_pk
            .ok_or_else(|| missing(STEP, "the client hello"))?;
        let (secret, shash) = match (self.secret, self.shash) {
            (Some(s), Some(h)) => (s, h),
            _ => return Err(missing(STEP, "the ephemeral shared secret")),
        };
        let local_curve = crypto::ed25519_sk_to_curve25519(&self.local.signing_key);
        let a_bob =
            crypto::dh(&local_curve, &remote_kx).ok_or(bad("client ephemeral key is weak"))?;
        let secret2 = crypto::sha256(&[&self.app_key, &secret, &a_bob]);
        let proof = crypto::open(&secret2, &ZERO_NONCE, auth).ok_or(bad(
            "cannot open the box: the client expects another server key, or the data is corrupt",
        ))?;
        let proof: [u8; CLIENT_PROOF_LEN] =
            to_array(&proof).ok_or(bad("wrong plaintext length"))?;
        let (sig, client_pk) = proof.split_at(64);
        let client_pk: [u8; 32] = to_array(client_pk).ok_or(bad("malformed client key"))?;
        let vk = VerifyingKey::from_bytes(&client_pk).map_err(|_| bad("invalid client key"))?;
        let sig = Signature::from_slice(sig).map_err(|_| bad("malformed signature"))?;
        let signed = [&self.app_key[..], &self.local_id(), &shash].concat();
        vk.verify_strict(&signed, &sig)
            .map_err(|_| bad("signature does not verify"))?;
        let client_curve = vk.to_montgomery().to_bytes();
        let b_alice =
            crypto::dh(&self.local.kx_sk, &client_curve).ok_or(bad("client key is weak"))?;
        self.secret3 = Some(crypto::sha256(&[&self.app_key, &secret, &a_bob, &b_alice]));
        self.a_bob = Some(a_bob);
        self.secret2 = Some(secret2);
        self.b_alice = Some(b_alice);
        self.remote.hello = Some(proof);
        self.remote.public_key = Some(NodeId(client_pk));
        Ok(())
    }

    /// Step `serverCreateAccept`: the 80-byte box of `sig_B(K ‖ client proof ‖ shash)` under `secret3`.
    pub fn server_create_accept(&self) -> Result<[u8; SERVER_ACCEPT_LEN], HandshakeError> {
        const STEP: &str = "server_create_accept";
        let proof = self
            .remote
            .hello
            .ok_or_else(|| missing(STEP, "the client proof"))?;
        let shash = self.shash.ok_or_else(|| missing(STEP, "shash"))?;
        let key = self.secret3.ok_or_else(|| missing(STEP, "secret3"))?;
        let sig = self
            .local
            .signing_key
            .sign(&[&self.app_key[..], &proof, &shash].concat());
        let boxed = crypto::seal(&key, &ZERO_NONCE, &sig.to_bytes());
        to_array(&boxed).ok_or_else(|| missing(STEP, "an 80-byte box"))
    }

    /// Step `clientVerifyAccept`: derives `b_alice`, `secret3`, opens the server's box and checks
    /// the server's signature over our proof. State unchanged on failure.
    pub fn client_verify_accept(&mut self, accept: &[u8]) -> Result<(), HandshakeError> {
        const STEP: &str = "client_verify_accept";
        let bad = |reason| HandshakeError::BadAccept { reason };
        if accept.len() != SERVER_ACCEPT_LEN {
            return Err(bad("wrong length"));
        }
        let server = self
            .remote
            .public_key
            .ok_or_else(|| missing(STEP, "the server public key"))?;
        let remote_kx = self
            .remote
            .kx_pk
            .ok_or_else(|| missing(STEP, "the server hello"))?;
        let proof = self.local.hello.ok_or_else(|| missing(STEP, "our proof"))?;
        let (Some(secret), Some(shash), Some(a_bob)) = (self.secret, self.shash, self.a_bob) else {
            return Err(missing(STEP, "the shared secrets"));
        };
        let local_curve = crypto::ed25519_sk_to_curve25519(&self.local.signing_key);
        let b_alice =
            crypto::dh(&local_curve, &remote_kx).ok_or(bad("server ephemeral key is weak"))?;
        let secret3 = crypto::sha256(&[&self.app_key, &secret, &a_bob, &b_alice]);
        let sig = crypto::open(&secret3, &ZERO_NONCE, accept).ok_or(bad(
            "cannot open the box: the server is not who we expected, or the data is corrupt",
        ))?;
        let sig = Signature::from_slice(&sig).map_err(|_| bad("malformed signature"))?;
        let vk = VerifyingKey::from_bytes(&server.0)
            .map_err(|_| HandshakeError::InvalidPeerKey { key: server })?;
        let signed = [&self.app_key[..], &proof, &shash].concat();
        vk.verify_strict(&signed, &sig)
            .map_err(|_| bad("signature does not verify"))?;
        self.b_alice = Some(b_alice);
        self.secret3 = Some(secret3);
        Ok(())
    }

    /// The session secret `sha256(secret3)` that the box-stream keys are derived from.
    pub(super) fn session_secret(&self, step: &'static str) -> Result<[u8; 32], HandshakeError> {
        let secret3 = self.secret3.ok_or_else(|| missing(step, "secret3"))?;
        Ok(crypto::sha256(&[&secret3]))
    }

    /// Step `clean`: consumes the state and returns the box-stream keys and the authenticated
    /// peer id. Only valid after a successful `server_verify_auth` / `client_verify_accept`.
    pub fn clean(self) -> Result<(HandshakeKeys, NodeId), HandshakeError> {
        const STEP: &str = "clean";
        let secret = self.session_secret(STEP)?;
        let peer = self
            .remote
            .public_key
            .ok_or_else(|| missing(STEP, "the peer public key"))?;
        let remote_mac = self
            .remote
            .app_mac
            .ok_or_else(|| missing(STEP, "the peer hello"))?;
        let mut encrypt_nonce = [0u8; 24];
        encrypt_nonce.copy_from_slice(&remote_mac[..24]);
        let mut decrypt_nonce = [0u8; 24];
        decrypt_nonce.copy_from_slice(&self.local.app_mac[..24]);
        let keys = HandshakeKeys {
            encrypt_key: crypto::sha256(&[&secret, &peer.0]),
            encrypt_nonce,
            decrypt_key: crypto::sha256(&[&secret, &self.local_id()]),
            decrypt_nonce,
        };
        Ok((keys, peer))
    }
}
