//! Tests of the box-stream: round trips of many sizes, the exact byte layout of a box (checked
//! with `crypto_secretbox` directly), tampering, truncation, goodbye, and use after a handshake.

use crypto_secretbox::aead::{Aead, AeadInPlace, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};

use super::*;
use crate::net::handshake::{client_handshake, server_handshake};
use crate::util::ids::NodeId;

const KEY: [u8; 32] = [0x42; 32];
const NONCE: NonceBytes = [0x11; 24];

fn message(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(salt))
        .collect()
}

/// Encrypts `msgs` then a goodbye into bytes.
async fn encode(msgs: &[Vec<u8>]) -> Vec<u8> {
    let mut w = BoxStreamWriter::new(Vec::new(), KEY, NONCE);
    for m in msgs {
        w.send(m).await.expect("send");
    }
    w.goodbye().await.expect("goodbye");
    w.into_inner()
}

/// Reads every box until goodbye (`Ok`) or the first error.
async fn decode(bytes: &[u8]) -> Result<Vec<Vec<u8>>, BoxStreamError> {
    let mut r = BoxStreamReader::new(bytes, KEY, NONCE);
    let mut out = Vec::new();
    while let Some(b) = r.recv().await? {
        out.push(b);
    }
    Ok(out)
}

#[tokio::test]
async fn round_trip_sizes_0_to_10000() {
    let mut sizes: Vec<usize> = (0..=10_000).step_by(331).collect();
    sizes.extend([1, 2, 4095, 4096, 4097, 8191, 8192, 8193, 10_000]);
    let msgs: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| message(n, i as u8))
        .collect();
    let (a, b) = tokio::io::duplex(8 * 1024);
    let to_send = msgs.clone();
    let writer = tokio::spawn(async move {
        let mut w = BoxStreamWriter::new(a, KEY, NONCE);
        for m in &to_send {
            w.send(m).await.expect("send");
        }
        w.goodbye().await.expect("goodbye");
    });
    let mut r = BoxStreamReader::new(b, KEY, NONCE);
    for m in &msgs {
        let mut got = Vec::new();
        let mut boxes = 0;
        while got.len() < m.len() {
            let b = r.recv().await.expect("recv").expect("not goodbye yet");
            assert!(!b.is_empty() && b.len() <= MAX_BODY_LEN);
            got.extend_from_slice(&b);
            boxes += 1;
        }
        assert_eq!(&got, m, "message of {} bytes", m.len());
        assert_eq!(boxes, m.len().div_ceil(MAX_BODY_LEN));
    }
    assert!(r.recv().await.expect("goodbye").is_none());
    assert!(r.recv().await.expect("still closed").is_none());
    writer.await.expect("writer");
}

#[tokio::test]
async fn box_layout_matches_secretbox() {
    let body = b"hello, box-stream".to_vec();
    let bytes = encode(std::slice::from_ref(&body)).await;
    assert_eq!(bytes.len(), HEADER_LEN + body.len() + HEADER_LEN);

    let cipher = XSalsa20Poly1305::new(&KEY.into());
    let n0 = NONCE;
    let mut n1 = n0;
    crypto::increment_nonce(&mut n1);
    let mut n2 = n1;
    crypto::increment_nonce(&mut n2);
    assert_eq!(n1[23], 0x12);
    assert_eq!(n2[23], 0x13);

    // Body: XSalsa20 ciphertext with nonce n+1; its MAC is detached.
    let mut ct = body.clone();
    let tag = cipher
        .encrypt_in_place_detached(Nonce::from_slice(&n1), b"", &mut ct)
        .expect("seal body");
    // Header: secretbox(len BE ‖ body MAC) with nonce n, combined form (MAC first).
    let mut plain = vec![0, body.len() as u8];
    plain.extend_from_slice(&tag);
    let header = cipher
        .encrypt(Nonce::from_slice(&n0), plain.as_slice())
        .expect("seal header");
    assert_eq!(header.len(), 34);
    let goodbye = cipher
        .encrypt(Nonce::from_slice(&n2), &[0u8; 18][..])
        .expect("seal goodbye");
    let expected = [header, ct, goodbye].concat();
    assert_eq!(hex::encode(&bytes), hex::encode(&expected));
}

#[tokio::test]
async fn any_flipped_byte_is_an_error() {
    let msgs = vec![message(10, 1), message(5000, 2)];
    let bytes = encode(&msgs).await;
    assert_eq!(
        decode(&bytes).await.expect("intact").concat(),
        msgs.concat()
    );
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let res = decode(&bad).await;
        assert!(res.is_err(), "flipping byte {i} went unnoticed");
    }
}

#[tokio::test]
async fn truncated_stream_is_an_error() {
    let bytes = encode(&[message(10, 1), message(4100, 2)]).await;
    for cut in 0..bytes.len() {
        let err = decode(&bytes[..cut]).await.expect_err("truncated");
        assert!(
            matches!(err, BoxStreamError::Truncated { .. }),
            "cut {cut}: {err}"
        );
    }
    // A reader that failed stays failed.
    let mut r = BoxStreamReader::new(&bytes[..40], KEY, NONCE);
    assert!(r.recv().await.is_err());
    assert!(matches!(r.recv().await, Err(BoxStreamError::Closed)));
}

#[tokio::test]
async fn goodbye_ends_cleanly_and_closes_writer() {
    let mut w = BoxStreamWriter::new(Vec::new(), KEY, NONCE);
    w.goodbye().await.expect("goodbye");
    w.goodbye().await.expect("idempotent");
    assert!(matches!(w.send(b"late").await, Err(BoxStreamError::Closed)));
    let bytes = w.into_inner();
    assert_eq!(bytes.len(), HEADER_LEN);
    assert!(decode(&bytes).await.expect("clean").is_empty());
    // Empty sends produce nothing.
    let mut w = BoxStreamWriter::new(Vec::new(), KEY, NONCE);
    w.send(&[]).await.expect("empty send");
    assert!(w.into_inner().is_empty());
}

#[tokio::test]
async fn bad_lengths_and_wrong_keys_are_rejected() {
    for len in [0u16, 4097, u16::MAX] {
        let mut plain = [0u8; 18];
        plain[..2].copy_from_slice(&len.to_be_bytes());
        plain[2] = 1; // a non-zero MAC, so this is not a goodbye
        let header = crypto::seal(&KEY, &NONCE, &plain);
        let err = decode(&header).await.expect_err("bad length");
        assert!(
            matches!(err, BoxStreamError::BadLength { .. }),
            "{len}: {err}"
        );
    }
    let bytes = encode(&[message(100, 3)]).await;
    let mut r = BoxStreamReader::new(&bytes[..], [0x43; 32], NONCE);
    let err = r.recv().await.expect_err("wrong key");
    assert!(matches!(
        err,
        BoxStreamError::BadMac {
            part: BoxPart::Header
        }
    ));
    let mut r = BoxStreamReader::new(&bytes[..], KEY, [0x12; 24]);
    assert!(r.recv().await.is_err(), "wrong nonce");
}

#[tokio::test]
async fn box_streams_after_handshake() {
    let net = [5u8; 32];
    let client_key = ed25519_dalek::SigningKey::from_bytes(&[1; 32]);
    let server_key = ed25519_dalek::SigningKey::from_bytes(&[2; 32]);
    let server_id = NodeId(server_key.verifying_key().to_bytes());
    let (mut c, mut s) = tokio::io::duplex(4096);
    let server = tokio::spawn(async move {
        let (keys, _) = server_handshake(&mut s, &net, &server_key)
            .await
            .expect("server");
        let (mut r, mut w) = split(s, &keys);
        while let Some(b) = r.recv().await.expect("server recv") {
            let reply: Vec<u8> = b.iter().map(|x| x.wrapping_add(1)).collect();
            w.send(&reply).await.expect("server send");
        }
        w.goodbye().await.expect("server goodbye");
    });
    let (keys, peer) = client_handshake(&mut c, &net, &client_key, server_id)
        .await
        .expect("client");
    assert_eq!(peer, server_id);
    let (mut r, mut w) = split(c, &keys);
    for len in [1usize, 100, 4096] {
        let m = message(len, 7);
        w.send(&m).await.expect("send");
        let got = r.recv().await.expect("recv").expect("reply");
        let want: Vec<u8> = m.iter().map(|x| x.wrapping_add(1)).collect();
        assert_eq!(got, want);
    }
    w.goodbye().await.expect("goodbye");
    assert!(r.recv().await.expect("server goodbye").is_none());
    server.await.expect("server task");
}
