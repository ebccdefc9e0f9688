//! The quorum helper (`rpc::quorum`) between real `NetApp`s over loopback TCP: one caller and
//! three servers whose handler answers at once, answers after a delay, or fails.
//!
//! - a call returns as soon as its quorum succeeded, without waiting for a slow node; the
//!   request still running then finishes in the background when asked to, and is cancelled
//!   (its handler aborted on the server) otherwise;
//! - a call that cannot reach its quorum fails with the error of every node that failed,
//!   including a node that is not connected at all;
//! - a read (`send_all_at_once = false`) asks only as many nodes as its quorum, in the given
//!   order, and asks the next one only when one fails;
//! - `call_write_sets` needs the quorum of every set and fails as soon as one set cannot reach
//!   it; with a linger it also waits for the other nodes, for at most that long.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;

use common::netpair::{wait_until, NETWORK_KEY};
use garage::net::frame::Priority;
use garage::net::netapp::NetApp;
use garage::net::node_key::NodeKey;
use garage::rpc::endpoint::{CallOpts, Endpoint, Handler, Rpc};
use garage::rpc::quorum::{call_quorum, call_write_sets, QuorumStrategy};
use garage::rpc::RpcError;
use garage::util::ids::NodeId;

const PATH: &str = "test/quorum";
const WAIT: Duration = Duration::from_secs(10);

/// Asks a server for its number.
#[derive(Serialize, Deserialize)]
struct Ask;
impl Rpc for Ask {
    type Response = u8;
}

/// A server's handler: answers its number after `delay`, or fails; counts what happened.
struct Server {
    number: u8,
    fail: bool,
    delay: Duration,
    started: AtomicU32,
    finished: AtomicU32,
    aborted: AtomicU32,
}

/// Counts a handler dropped before it finished (i.e. aborted).
struct Running(Arc<Server>, bool);
impl Drop for Running {
    fn drop(&mut self) {
        if !self.1 {
            self.0.aborted.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Handler<Ask> for Server {
    async fn handle(self: Arc<Self>, _msg: Ask, _from: NodeId) -> Result<u8, String> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut running = Running(self.clone(), false);
        tokio::time::sleep(self.delay).await;
        running.1 = true;
        self.finished.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            Err(format!("server {} refuses", self.number))
        } else {
            Ok(self.number)
        }
    }
}

/// A caller connected to one server per `(fail, delay)`.
struct Cluster {
    caller: Endpoint<Ask>,
    ids: Vec<NodeId>,
    servers: Vec<Arc<Server>>,
    _stop: watch::Sender<bool>,
}

impl Cluster {
    async fn new(behaviours: &[(bool, Duration)]) -> Self {
        let client = NetApp::new(NodeKey::generate(), NETWORK_KEY, None);
        let (stop, stop_rx) = watch::channel(false);
        let mut ids = vec![];
        let mut servers = vec![];
        for (i, (fail, delay)) in behaviours.iter().enumerate() {
            let netapp = NetApp::new(NodeKey::generate(), NETWORK_KEY, None);
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            tokio::spawn(netapp.clone().listen(listener, stop_rx.clone()));
            let server = Arc::new(Server {
                number: i as u8,
                fail: *fail,
                delay: *delay,
                started: AtomicU32::new(0),
                finished: AtomicU32::new(0),
                aborted: AtomicU32::new(0),
            });
            Endpoint::<Ask>::new(netapp.clone(), PATH).set_handler(server.clone());
            client.connect(addr, netapp.id).await.expect("connect");
            ids.push(netapp.id);
            servers.push(server);
        }
        Self {
            caller: Endpoint::new(client, PATH),
            ids,
            servers,
            _stop: stop,
        }
    }
}

fn strategy(quorum: usize, all_at_once: bool, background: bool) -> QuorumStrategy {
    QuorumStrategy {
        quorum,
        opts: CallOpts::new(Priority::Normal, Duration::from_secs(30)),
        send_all_at_once: all_at_once,
        finish_in_background: background,
    }
}

fn numbers(answers: &[(NodeId, u8)]) -> Vec<u8> {
    let mut n: Vec<u8> = answers.iter().map(|(_, v)| *v).collect();
    n.sort_unstable();
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_returns_without_the_slow_node_which_finishes_or_is_cancelled() {
    const SLOW: Duration = Duration::from_millis(1500);
    let c = Cluster::new(&[
        (false, Duration::ZERO),
        (false, Duration::ZERO),
        (false, SLOW),
    ])
    .await;
    let slow = &c.servers[2];

    // Finished in the background: the slow node's handler runs to its end.
    let start = Instant::now();
    let answers = call_quorum(&c.caller, &c.ids, &Ask, strategy(2, true, true))
        .await
        .expect("quorum of two fast nodes");
    let took = start.elapsed();
    assert_eq!(numbers(&answers), vec![0, 1]);
    assert!(took < SLOW, "waited for the slow node: {took:?}");
    assert!(
        wait_until(WAIT, || slow.finished.load(Ordering::SeqCst) == 1).await,
        "the slow request was not finished in the background"
    );
    assert_eq!(slow.aborted.load(Ordering::SeqCst), 0);

    // Not finished in the background: the slow request is cancelled and its handler aborted.
    let answers = call_quorum(&c.caller, &c.ids, &Ask, strategy(2, true, false))
        .await
        .expect("quorum of two fast nodes");
    assert_eq!(numbers(&answers), vec![0, 1]);
    assert!(
        wait_until(WAIT, || slow.aborted.load(Ordering::SeqCst) == 1).await,
        "the slow handler was not aborted (started {}, finished {})",
        slow.started.load(Ordering::SeqCst),
        slow.finished.load(Ordering::SeqCst)
    );
    assert_eq!(slow.started.load(Ordering::SeqCst), 2);
    assert_eq!(slow.finished.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_quorum_reports_every_nodes_error() {
    let c = Cluster::new(&[
        (true, Duration::ZERO),
        (true, Duration::ZERO),
        (false, Duration::ZERO),
    ])
    .await;
    // A fourth node nobody is connected to.
    let absent = NodeKey::generate().id();
    let mut nodes = c.ids.clone();
    nodes.push(absent);
    let err = call_quorum(&c.caller, &nodes, &Ask, strategy(2, true, false))
        .await
        .expect_err("only one node can answer");
    let RpcError::Quorum {
        needed,
        got,
        errors,
    } = &err
    else {
        panic!("not a quorum error: {err}");
    };
    assert_eq!((*needed, *got), (2, 1), "{err}");
    let mut failed: Vec<NodeId> = errors.iter().map(|(n, _)| *n).collect();
    failed.sort();
    let mut want = vec![c.ids[0], c.ids[1], absent];
    want.sort();
    assert_eq!(failed, want, "{err}");
    for (i, id) in c.ids[..2].iter().enumerate() {
        let (_, e) = errors.iter().find(|(n, _)| n == id).expect("listed");
        assert!(e.contains(&format!("server {i} refuses")), "{e}");
    }
    let text = err.to_string();
    assert!(
        text.contains("1 of 2") && text.contains("refuses"),
        "{text}"
    );
    println!("{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_ask_further_nodes_only_on_failure() {
    let c = Cluster::new(&[
        (true, Duration::ZERO),
        (false, Duration::ZERO),
        (false, Duration::ZERO),
    ])
    .await;
    let answers = call_quorum(&c.caller, &c.ids, &Ask, strategy(1, false, false))
        .await
        .expect("the second node answers");
    assert_eq!(numbers(&answers), vec![1]);
    let started: Vec<u32> = c
        .servers
        .iter()
        .map(|s| s.started.load(Ordering::SeqCst))
        .collect();
    assert_eq!(started, vec![1, 1, 0], "nodes asked, in order");

    // In another order, the first node answers and nobody else is asked.
    let order = vec![c.ids[2], c.ids[0], c.ids[1]];
    let answers = call_quorum(&c.caller, &order, &Ask, strategy(1, false, false))
        .await
        .expect("the first node answers");
    assert_eq!(numbers(&answers), vec![2]);
    let started: Vec<u32> = c
        .servers
        .iter()
        .map(|s| s.started.load(Ordering::SeqCst))
        .collect();
    assert_eq!(started, vec![1, 1, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_sets_each_need_their_quorum() {
    let c = Cluster::new(&[
        (false, Duration::ZERO),
        (false, Duration::ZERO),
        (true, Duration::ZERO),
    ])
    .await;
    let (a, b, f) = (c.ids[0], c.ids[1], c.ids[2]);
    let opts = CallOpts::new(Priority::Normal, Duration::from_secs(30));
    let majority = |n: usize| n / 2 + 1;

    // One set of three with one failing node: 2 of 3 is enough.
    let answers = call_write_sets(&c.caller, &[vec![a, b, f]], majority, &Ask, None, opts)
        .await
        .expect("2 of 3");
    assert_eq!(numbers(&answers), vec![0, 1]);

    // Two sets (a layout transition): the second, {b, f}, cannot get 2 of 2.
    let err = call_write_sets(
        &c.caller,
        &[vec![a, b], vec![b, f]],
        |n| n,
        &Ask,
        None,
        opts,
    )
    .await
    .expect_err("the second set misses its quorum");
    assert!(
        matches!(&err, RpcError::Quorum { errors, .. } if errors.iter().any(|(n, _)| *n == f)),
        "{err}"
    );
    // Each node is called once even when it is in several sets.
    assert_eq!(c.servers[1].started.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linger_waits_for_the_last_node_within_its_bound() {
    let c = Cluster::new(&[
        (false, Duration::ZERO),
        (false, Duration::ZERO),
        (false, Duration::from_millis(1500)),
    ])
    .await;
    let opts = CallOpts::new(Priority::Normal, Duration::from_secs(60));
    let sets = [c.ids.clone()];
    let majority = |n: usize| n / 2 + 1;

    // Without a linger: back at the quorum, the slow node still running.
    let answers = call_write_sets(&c.caller, &sets, majority, &Ask, None, opts)
        .await
        .expect("quorum");
    assert_eq!(numbers(&answers), vec![0, 1]);

    // A linger longer than the slow node: all three answered when the call returns.
    let answers = call_write_sets(&c.caller, &sets, majority, &Ask, Some(WAIT), opts)
        .await
        .expect("quorum");
    assert_eq!(numbers(&answers), vec![0, 1, 2]);

    // A linger shorter than the slow node: back after the linger with the quorum only.
    let answers = call_write_sets(
        &c.caller,
        &sets,
        majority,
        &Ask,
        Some(Duration::from_millis(100)),
        opts,
    )
    .await
    .expect("quorum");
    assert_eq!(numbers(&answers), vec![0, 1]);
}
