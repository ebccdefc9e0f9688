//! Hostile or broken input on the RPC port, against a real daemon and in-process:
//!
//! - a daemon with another `rpc_secret` cannot join: its handshake is refused (logged on both
//!   sides), the cluster never lists it, it lists nobody as healthy but itself;
//! - raw TCP before the handshake: random garbage (up to 4 MiB), a hello with a wrong HMAC, a
//!   hello with the right HMAC followed by a garbage client authentication, a truncated hello
//!   then silence, idle connections; the daemon closes what it must and keeps answering;
//! - after a real handshake (done in-process with the library, as a client that knows the
//!   network key): box-stream headers announcing absurd lengths or failing authentication,
//!   chunk headers with an oversized length or unknown kind/priority bits, body chunks out of
//!   sequence, head chunks for 2000 concurrent message ids (limit 1024), a peer that stops in the
//!   middle of a message. The daemon closes the connection when the protocol is violated, keeps
//!   it when it is merely idle, still answers `garage status` after each case, and its resident
//!   memory stays bounded (printed);
//! - in-process between two `NetApp`s: an unknown endpoint or an undecodable request gives an
//!   error response (`NetError::Remote`), not a dropped connection.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use rand::RngCore;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::netpair::{Pair, Ping, PingHandler};
use common::*;
use garage::admin::{AdminResponse, AdminRpc};
use garage::net::box_stream::split;
use garage::net::frame::{decode_response_head, Chunk, ChunkKind, ChunkReader, Priority};
use garage::net::handshake::{client_handshake, HandshakeKeys};
use garage::net::node_key::NodeKey;
use garage::net::NetError;
use garage::rpc::endpoint::{CallOpts, Endpoint};
use garage::rpc::RpcError;
use garage::util::ids::NodeId;

/// Resident memory allowed to the daemon under attack.
const RSS_LIMIT_KIB: u64 = 200 * 1024;
/// How long the daemon may take to close a connection it must refuse.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

fn network_key() -> [u8; 32] {
    hex::decode(RPC_SECRET)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn garbage(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut v);
    v
}

/// `garage status` still answers and the daemon's RSS is bounded.
fn check_alive(node: &NodeDir, pid: u32, after: &str) {
    let s = node.status();
    assert!(
        s.is_some(),
        "daemon does not answer `status` after {after}; log:\n{}",
        node.log()
    );
    let rss = rss_kib(pid).expect("daemon is running");
    println!(
        "after {after}: daemon answers, VmRSS = {:.1} MiB",
        rss as f64 / 1024.0
    );
    assert!(rss < RSS_LIMIT_KIB, "RSS {rss} KiB after {after}");
}

/// Reads (and discards) until the peer closes the connection, for at most [`CLOSE_WAIT`].
fn std_expect_closed(s: &mut StdTcpStream, what: &str) {
    s.set_read_timeout(Some(CLOSE_WAIT)).expect("timeout");
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!("{what}: the daemon kept the connection open")
            }
            Err(_) => return, // reset
        }
    }
}

async fn expect_closed<R: AsyncRead + Unpin>(r: &mut R, what: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    let res = tokio::time::timeout(CLOSE_WAIT, async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(res.is_ok(), "{what}: the daemon kept the connection open");
}

/// Connects and completes a real secret handshake with the daemon.
async fn handshaken(addr: SocketAddr, server: NodeId) -> (TcpStream, HandshakeKeys) {
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    sock.set_nodelay(true).expect("nodelay");
    let me = NodeKey::generate();
    let (keys, peer) = client_handshake(&mut sock, &network_key(), &me.secret, server)
        .await
        .expect("handshake with the daemon");
    assert_eq!(peer, server);
    (sock, keys)
}

/// A box-stream header sealed by hand, announcing `len` body bytes.
fn sealed_header(keys: &HandshakeKeys, len: u16) -> Vec<u8> {
    let mut plain = [0u8; 18];
    plain[..2].copy_from_slice(&len.to_be_bytes());
    plain[2..].copy_from_slice(&[0xab; 16]);
    XSalsa20Poly1305::new(Key::from_slice(&keys.encrypt_key))
        .encrypt(Nonce::from_slice(&keys.encrypt_nonce), &plain[..])
        .expect("seal")
}

fn head(id: u32, last: bool, has_body: bool, data: Vec<u8>) -> Vec<u8> {
    Chunk {
        id,
        prio: Priority::Normal,
        kind: ChunkKind::Head { last, has_body },
        data: Bytes::from(data),
    }
    .encode()
}

fn body(id: u32, kind: ChunkKind, data: Vec<u8>) -> Vec<u8> {
    Chunk {
        id,
        prio: Priority::Normal,
        kind,
        data: Bytes::from(data),
    }
    .encode()
}

/// A request head for `path` (`path_len ‖ path ‖ payload`).
fn request(path: &str, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![path.len() as u8];
    v.extend_from_slice(path.as_bytes());
    v.extend_from_slice(payload);
    v
}

fn admin_status_request() -> Vec<u8> {
    let payload = rmp_serde::to_vec_named(&AdminRpc::Status).expect("encode");
    request("garage/admin", &payload)
}

#[test]
fn daemon_survives_hostile_input_on_rpc_port() {
    let node = NodeDir::new("");
    let daemon = Daemon::start(&node);
    node.wait_ready(Duration::from_secs(30));
    let pid = daemon.pid();
    let addr: SocketAddr = format!("127.0.0.1:{}", node.rpc_port)
        .parse()
        .expect("addr");
    let server = NodeId(node.node_id_bytes().expect("node_key.pub"));
    check_alive(&node, pid, "start");

    // --- Before the handshake: raw TCP. ---
    for size in [64, 65, 1000, 4096, 64 * 1024, 1 << 20, 4 << 20] {
        let mut s = StdTcpStream::connect(addr).expect("connect");
        let _ = s.set_nodelay(true);
        let _ = s.write_all(&garbage(size)); // the daemon may reset the connection mid-way
        std_expect_closed(&mut s, &format!("{size} bytes of garbage"));
    }
    // All-zero and all-one "hellos" (an absurd length in any length-prefixed reading).
    for byte in [0x00u8, 0xff] {
        let mut s = StdTcpStream::connect(addr).expect("connect");
        let _ = s.write_all(&[byte; 64]);
        std_expect_closed(&mut s, &format!("64 bytes of {byte:#04x}"));
    }
    check_alive(&node, pid, "random garbage before the handshake");

    // A well-formed hello whose HMAC uses another key.
    {
        let eph = garbage(32);
        let mac = hmac_sha512_256(&[0x55; 32], &eph);
        let mut s = StdTcpStream::connect(addr).expect("connect");
        s.write_all(&[&mac[..], &eph[..]].concat())
            .expect("send hello");
        std_expect_closed(&mut s, "hello with a wrong HMAC");
    }
    // The right HMAC, then a client authentication that is garbage.
    {
        let eph = garbage(32);
        let mac = hmac_sha512_256(&network_key(), &eph);
        let mut s = StdTcpStream::connect(addr).expect("connect");
        s.write_all(&[&mac[..], &eph[..]].concat())
            .expect("send hello");
        s.set_read_timeout(Some(CLOSE_WAIT)).expect("timeout");
        let mut server_hello = [0u8; 64];
        s.read_exact(&mut server_hello)
            .expect("the daemon accepts a hello with the right HMAC");
        s.write_all(&garbage(112)).expect("send auth");
        std_expect_closed(&mut s, "garbage client authentication");
    }
    check_alive(&node, pid, "bad hellos");
    let log = node.log();
    assert!(
        log.contains("refused connection from") && log.contains("secret handshake failed"),
        "refusals are logged:\n{log}"
    );

    // A truncated hello then silence, and connections that send nothing: the handshake timeout
    // (10 s) is not awaited, the daemon must simply keep serving while they are open.
    let mut truncated = StdTcpStream::connect(addr).expect("connect");
    truncated.write_all(&garbage(30)).expect("send");
    let idle: Vec<StdTcpStream> = (0..50)
        .map(|_| StdTcpStream::connect(addr).expect("connect"))
        .collect();
    check_alive(
        &node,
        pid,
        "a truncated hello and 50 silent connections (still open)",
    );
    drop(truncated);
    drop(idle);

    // --- After a real handshake: box-stream and framing violations. ---
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    rt.block_on(async {
        // A valid request through the raw client works: the tools below are right.
        let (sock, keys) = handshaken(addr, server).await;
        let (r, mut w) = split(sock, &keys);
        let mut reader = ChunkReader::new(r);
        w.send(&head(1, true, false, admin_status_request()))
            .await
            .expect("send");
        let answer = tokio::time::timeout(CLOSE_WAIT, reader.next())
            .await
            .expect("answer in time")
            .expect("a chunk");
        assert_eq!(answer.id, 1);
        let resp = decode_response_head(answer.data)
            .expect("response head")
            .expect("success");
        let resp: AdminResponse = rmp_serde::from_slice(&resp).expect("decode");
        assert!(matches!(resp, AdminResponse::Status(_)), "{resp:?}");

        // Box-stream header announcing an absurd body length (0xffff, and 0).
        for len in [0xffffu16, 0, 4097] {
            let (mut sock, keys) = handshaken(addr, server).await;
            sock.write_all(&sealed_header(&keys, len))
                .await
                .expect("send");
            expect_closed(&mut sock, &format!("box header announcing {len} bytes")).await;
        }
        // Boxes that fail authentication (garbage after the handshake), of several sizes.
        for size in [34, 100, 1 << 20] {
            let (mut sock, _) = handshaken(addr, server).await;
            let _ = sock.write_all(&garbage(size)).await;
            expect_closed(
                &mut sock,
                &format!("{size} garbage bytes after the handshake"),
            )
            .await;
        }
    });
    check_alive(&node, pid, "box-stream violations");

    rt.block_on(async {
        // Invalid chunk headers inside valid boxes: id ‖ flags ‖ len.
        let bad_headers: [(&str, [u8; 7]); 6] = [
            ("length 0xffff", [0, 0, 0, 1, 0, 0xff, 0xff]),
            ("length 16385", [0, 0, 0, 1, 0, 0x40, 0x01]),
            ("priority 3", [0, 0, 0, 1, 0b11, 0, 0]),
            ("unknown kind 7", [0, 0, 0, 1, 7 << 2, 0, 0]),
            ("reserved bit 7", [0, 0, 0, 1, 0x80, 0, 0]),
            (
                "FINAL on a body chunk",
                [0, 0, 0, 1, (1 << 2) | (1 << 5), 0, 0],
            ),
        ];
        for (what, h) in bad_headers {
            let (sock, keys) = handshaken(addr, server).await;
            let (r, mut w) = split(sock, &keys);
            w.send(&h).await.expect("send");
            expect_closed(&mut r.into_inner(), what).await;
        }
        // HAS_BODY on a head chunk that is not the last one.
        {
            let (sock, keys) = handshaken(addr, server).await;
            let (r, mut w) = split(sock, &keys);
            w.send(&head(1, false, true, vec![1])).await.expect("send");
            expect_closed(&mut r.into_inner(), "HAS_BODY on a non-final head chunk").await;
        }
        // A body chunk before the end of its head.
        {
            let (sock, keys) = handshaken(addr, server).await;
            let (r, mut w) = split(sock, &keys);
            let mut bytes = head(5, false, false, vec![1, 2]);
            bytes.extend(body(5, ChunkKind::BodyData, vec![3]));
            w.send(&bytes).await.expect("send");
            expect_closed(&mut r.into_inner(), "body chunk before the end of the head").await;
        }
        // A second head after a complete one (same id, body still open).
        {
            let (sock, keys) = handshaken(addr, server).await;
            let (r, mut w) = split(sock, &keys);
            let mut bytes = head(9, true, true, request("garage/none", b""));
            bytes.extend(head(9, true, false, vec![0]));
            w.send(&bytes).await.expect("send");
            expect_closed(&mut r.into_inner(), "head chunk after the end of the head").await;
        }
    });
    check_alive(&node, pid, "invalid chunk headers and sequences");

    rt.block_on(async {
        // 2000 messages started and never finished: the limit is 1024 per connection.
        let (sock, keys) = handshaken(addr, server).await;
        let (r, mut w) = split(sock, &keys);
        let mut bytes = Vec::new();
        for id in 1..=2000u32 {
            bytes.extend(head(id, false, false, vec![0u8; 16]));
        }
        let _ = w.send(&bytes).await;
        expect_closed(&mut r.into_inner(), "2000 unfinished messages").await;
    });
    check_alive(&node, pid, "2000 unfinished messages on one connection");
    let log = node.log();
    assert!(
        log.contains("too many concurrent messages"),
        "the daemon says why it closed the connection:\n{log}"
    );

    // A peer that stops in the middle of messages: 64 heads of 16 KiB never finished, and a
    // request whose streamed body never ends. The connection stays open (the peer may just be
    // slow), the request is answered, other clients are served.
    let stalled = rt.block_on(async {
        let (sock, keys) = handshaken(addr, server).await;
        let (r, mut w) = split(sock, &keys);
        let mut reader = ChunkReader::new(r);
        for id in 100..164u32 {
            w.send(&head(id, false, false, vec![0x42; 16 * 1024]))
                .await
                .expect("send");
        }
        let mut bytes = head(7, true, true, admin_status_request());
        bytes.extend(body(7, ChunkKind::BodyData, vec![1; 1000]));
        bytes.extend(body(7, ChunkKind::BodyData, vec![2; 1000]));
        // Chunks of a message this daemon never heard of are ignored (a cancelled message).
        bytes.extend(body(4242, ChunkKind::BodyData, vec![3; 10]));
        w.send(&bytes).await.expect("send");
        let answer = tokio::time::timeout(CLOSE_WAIT, reader.next())
            .await
            .expect("answer in time")
            .expect("the connection is still open");
        assert_eq!(answer.id, 7);
        let resp = decode_response_head(answer.data).expect("head");
        assert!(resp.is_ok(), "{resp:?}");
        (reader, w)
    });
    // The half-sent messages are still pending on the open connection.
    check_alive(&node, pid, "a peer that stopped mid-message (still open)");
    drop(stalled);
    check_alive(&node, pid, "the stalled peer went away");
}

/// libsodium `crypto_auth` (HMAC-SHA-512 truncated to 32 bytes), as the hello uses.
fn hmac_sha512_256(key: &[u8; 32], msg: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha512> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(msg);
    let full = mac.finalize().into_bytes();
    full[..32].try_into().expect("32 bytes")
}

#[test]
fn daemon_with_another_secret_cannot_join() {
    let n1 = NodeDir::new("");
    n1.append_config(&format!("rpc_public_addr = \"127.0.0.1:{}\"", n1.rpc_port));
    let _d1 = Daemon::start(&n1);
    n1.wait_ready(Duration::from_secs(30));
    let id1 = hex::encode(n1.node_id_bytes().expect("id"));

    let other_secret = "ab".repeat(32);
    let bad = NodeDir::new(&format!(
        "bootstrap_peers = [\"{id1}@127.0.0.1:{}\"]",
        n1.rpc_port
    ));
    let text = std::fs::read_to_string(&bad.config).expect("config");
    std::fs::write(&bad.config, text.replace(RPC_SECRET, &other_secret)).expect("config");
    bad.append_config(&format!("rpc_public_addr = \"127.0.0.1:{}\"", bad.rpc_port));
    let _dbad = Daemon::start(&bad);

    let refused = wait_for(Duration::from_secs(30), || {
        n1.log().contains("secret handshake failed").then_some(())
    });
    assert!(
        refused.is_some(),
        "node 1 never logged the refused handshake; its log:\n{}\nthe other's log:\n{}",
        n1.log(),
        bad.log()
    );
    let bad_id = hex::encode(bad.node_id_bytes().expect("id"));
    // The other side logs its failure too, with the likely cause.
    let logged = wait_for(Duration::from_secs(10), || {
        bad.log().contains("cannot connect to").then_some(())
    });
    assert!(logged.is_some(), "its log:\n{}", bad.log());
    let line = bad
        .log()
        .lines()
        .find(|l| l.contains("cannot connect to"))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("rpc_secret"), "{line}");
    let log1 = n1.log();
    let refusal = log1
        .lines()
        .find(|l| l.contains("secret handshake failed"))
        .expect("refusal line");
    assert!(
        refusal.contains("WARN") && refusal.contains("refused connection from 127.0.0.1"),
        "{refusal}"
    );
    println!("node 1: {refusal}");
    println!(
        "other node: {}",
        bad.log()
            .lines()
            .find(|l| l.contains("cannot connect to"))
            .unwrap_or_default()
    );

    // Now, and again after one more refused attempt: node 1 never lists it, and it lists
    // nobody healthy but itself (node 1 appears at most as a failed bootstrap peer).
    for round in 0..2 {
        let refusals = n1.log().matches("secret handshake failed").count();
        let s1 = n1.status().expect("node 1 status");
        assert!(!s1.knows(&bad_id), "{s1:?}");
        assert_eq!(s1.healthy.len(), 1, "{s1:?}");
        assert!(s1.failed.is_empty(), "{s1:?}");
        let sb = bad
            .status()
            .expect("its own status (its CLI has its secret)");
        assert_eq!(sb.healthy.len(), 1, "{sb:?}");
        assert!(sb.is_healthy(&bad_id), "{sb:?}");
        assert!(!sb.is_healthy(&id1), "{sb:?}");
        // Its bootstrap peer may be shown as failed ("never seen"), nobody else.
        assert!(
            sb.failed.iter().all(|f| id1.starts_with(f.as_str())),
            "{sb:?}"
        );
        if round == 0 {
            println!("node 1 status: {s1:?}; other node status: {sb:?}");
            // It retries with a backoff of 1 s, 2 s, ...
            let again = wait_for(Duration::from_secs(20), || {
                (n1.log().matches("secret handshake failed").count() > refusals).then_some(())
            });
            assert!(again.is_some(), "the other node keeps retrying");
        }
    }
    // The CLI with node 1's secret cannot use the other daemon either.
    let out = std::process::Command::new(garage_bin())
        .env_remove("GARAGE_RPC_SECRET")
        .env("GARAGE_CONFIG_FILE", bad.path().join("none.toml"))
        .args([
            "-h",
            &format!("{bad_id}@127.0.0.1:{}", bad.rpc_port),
            "-s",
            RPC_SECRET,
            "status",
        ])
        .output()
        .expect("run");
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_endpoint_and_undecodable_request_are_error_responses() {
    let pair = Pair::new().await;
    let ping = Endpoint::<Ping>::new(pair.server.clone(), "test/ping");
    ping.set_handler(Arc::new(PingHandler));
    let client_ping = Endpoint::<Ping>::new(pair.client.clone(), "test/ping");
    let opts = CallOpts::new(Priority::High, Duration::from_secs(5));
    assert_eq!(
        client_ping
            .call(pair.server_id(), &Ping(1), opts)
            .await
            .expect("ping"),
        2
    );

    // Unknown path.
    let res = pair
        .client
        .request(
            pair.server_id(),
            "test/no-such-endpoint",
            Priority::Normal,
            Bytes::from_static(b"\x90"),
            None,
            Duration::from_secs(5),
        )
        .await;
    match res {
        Err(NetError::Remote { message, .. }) => {
            assert!(message.contains("unknown endpoint"), "{message}")
        }
        other => panic!("expected a remote error, got {:?}", other.map(|_| ())),
    }
    assert!(pair.client.is_connected(&pair.server_id()));

    // A payload that is not a `Ping`.
    for payload in [&b""[..], b"\xc1", b"\x92\x01\x02\x03", b"\xa5hello"] {
        let res = pair
            .client
            .request(
                pair.server_id(),
                "test/ping",
                Priority::Normal,
                Bytes::copy_from_slice(payload),
                None,
                Duration::from_secs(5),
            )
            .await;
        match res {
            Err(NetError::Remote { message, .. }) => {
                assert!(message.contains("undecodable"), "{message}")
            }
            other => panic!("expected a remote error, got {:?}", other.map(|_| ())),
        }
    }
    // The typed layer reports it the same way.
    let wrong = Endpoint::<AdminRpc>::new(pair.client.clone(), "test/ping");
    match wrong.call(pair.server_id(), &AdminRpc::Status, opts).await {
        Err(RpcError::Net(NetError::Remote { message, .. })) => {
            assert!(message.contains("undecodable"), "{message}")
        }
        other => panic!("expected a remote error, got {other:?}"),
    }

    // The same connection still works.
    assert!(pair.client.is_connected(&pair.server_id()));
    assert_eq!(
        client_ping
            .call(pair.server_id(), &Ping(41), opts)
            .await
            .expect("ping"),
        42
    );
}
