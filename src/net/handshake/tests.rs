//! Full client/server handshakes over an in-memory duplex, and rejection of malformed input by
//! the step functions.

use ed25519_dalek::SigningKey;

use super::*;
use crate::net::crypto;

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

type Outcome = Result<(HandshakeKeys, NodeId), HandshakeError>;

async fn run_pair(
    client_net: NetworkKey,
    server_net: NetworkKey,
    expected_server: NodeId,
) -> (Outcome, Outcome) {
    let (mut c, mut s) = tokio::io::duplex(1024);
    let client_key = key(1);
    let server_key = key(2);
    let server = tokio::spawn(async move {
        // The stream is dropped on return, as a real server closes the connection on failure.
        server_handshake(&mut s, &server_net, &server_key).await
    });
    let client = client_handshake(&mut c, &client_net, &client_key, expected_server).await;
    drop(c);
    (client, server.await.expect("server task"))
}

fn id_of(k: &SigningKey) -> NodeId {
    NodeId(k.verifying_key().to_bytes())
}

#[tokio::test]
async fn handshake_succeeds_with_same_network_key() {
    let (client, server) = run_pair([9; 32], [9; 32], id_of(&key(2))).await;
    let (ck, server_id) = client.expect("client");
    let (sk, client_id) = server.expect("server");
    assert_eq!(server_id, id_of(&key(2)));
    assert_eq!(client_id, id_of(&key(1)));
    assert_eq!(ck.encrypt_key, sk.decrypt_key);
    assert_eq!(ck.encrypt_nonce, sk.decrypt_nonce);
    assert_eq!(ck.decrypt_key, sk.encrypt_key);
    assert_eq!(ck.decrypt_nonce, sk.encrypt_nonce);
    assert_ne!(ck.encrypt_key, ck.decrypt_key);
}

#[tokio::test]
async fn handshake_fails_with_other_network_key() {
    let (client, server) = run_pair([9; 32], [8; 32], id_of(&key(2))).await;
    let server_err = server.expect_err("server must reject");
    assert!(
        matches!(server_err, HandshakeError::BadHello { .. }),
        "{server_err}"
    );
    let client_err = client.expect_err("client must fail");
    assert!(
        matches!(
            client_err,
            HandshakeError::Io {
                step: HandshakeStep::ServerHello,
                ..
            }
        ),
        "{client_err}"
    );
    // The client only sees the connection closed: its error suggests the likely cause.
    assert!(
        client_err.to_string().contains("rpc_secret"),
        "{client_err}"
    );
}

#[tokio::test]
async fn handshake_fails_when_client_expects_another_server() {
    let (client, server) = run_pair([9; 32], [9; 32], id_of(&key(3))).await;
    let server_err = server.expect_err("server must reject");
    assert!(
        matches!(server_err, HandshakeError::BadAuth { .. }),
        "{server_err}"
    );
    let client_err = client.expect_err("client must fail");
    assert!(
        matches!(
            client_err,
            HandshakeError::Io {
                step: HandshakeStep::ServerAccept,
                ..
            }
        ),
        "{client_err}"
    );
}

#[tokio::test]
async fn server_rejects_garbage_and_short_streams() {
    let (mut c, mut s) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move { server_handshake(&mut s, &[1; 32], &key(2)).await });
    c.write_all(&[0xAB; HELLO_LEN]).await.expect("write");
    let err = server.await.expect("task").expect_err("garbage hello");
    assert!(matches!(err, HandshakeError::BadHello { .. }), "{err}");

    let (mut c, mut s) = tokio::io::duplex(1024);
    let server = tokio::spawn(async move { server_handshake(&mut s, &[1; 32], &key(2)).await });
    c.write_all(&[0xAB; 10]).await.expect("write");
    drop(c);
    let err = server.await.expect("task").expect_err("short hello");
    assert!(matches!(
        err,
        HandshakeError::Io {
            step: HandshakeStep::ClientHello,
            ..
        }
    ));
}

#[test]
fn steps_reject_bad_lengths_and_wrong_order() {
    let mut st = HandshakeState::initialize([1; 32], key(1), Some(id_of(&key(2))), [3; 32]);
    assert!(matches!(
        st.verify_challenge(&[0; 63]),
        Err(HandshakeError::BadHello { .. })
    ));
    assert!(matches!(
        st.client_create_auth(),
        Err(HandshakeError::OutOfOrder { .. })
    ));
    assert!(matches!(
        st.server_verify_auth(&[0; 112]),
        Err(HandshakeError::OutOfOrder { .. })
    ));
    assert!(matches!(
        st.client_verify_accept(&[0; 5]),
        Err(HandshakeError::BadAccept { .. })
    ));
    assert!(matches!(
        st.clone().clean(),
        Err(HandshakeError::OutOfOrder { .. })
    ));
    // A hello carrying a low-order point with a valid HMAC is still rejected.
    let zero = [0u8; 32];
    let mut hello = crypto::auth(&[1; 32], &zero).to_vec();
    hello.extend_from_slice(&zero);
    assert!(matches!(
        st.verify_challenge(&hello),
        Err(HandshakeError::BadHello { .. })
    ));
}
