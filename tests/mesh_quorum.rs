//! `call_write_sets` against three real nodes over loopback TCP, one of which holds its answer
//! until the test releases it: the call returns at the quorum (2 of 3) without waiting, and with
//! a linger it waits for the third answer, for at most the linger.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use garage::net::frame::Priority;
use garage::net::netapp::NetApp;
use garage::net::node_key::NodeKey;
use garage::rpc::endpoint::{CallOpts, Endpoint, Handler, Rpc};
use garage::rpc::quorum::call_write_sets;
use garage::util::ids::NodeId;

const KEY: [u8; 32] = [9u8; 32];

#[derive(Serialize, Deserialize, Debug, Clone, Copy)]
struct Write;

impl Rpc for Write {
    type Response = ();
}

/// Answers once a permit is available (the test hands them out); other nodes have plenty.
/// Counts the requests that arrived.
struct Gate(Arc<Semaphore>, Arc<AtomicUsize>);

impl Handler<Write> for Gate {
    async fn handle(self: Arc<Self>, _msg: Write, _from: NodeId) -> Result<(), String> {
        self.1.fetch_add(1, Ordering::SeqCst);
        let permit = self.0.acquire().await.map_err(|e| e.to_string())?;
        permit.forget();
        Ok(())
    }
}

struct Cluster {
    client: Arc<NetApp>,
    servers: Vec<NodeId>,
    /// Permits of the third (slow) server, and the requests that reached it.
    gate: Arc<Semaphore>,
    arrived: Arc<AtomicUsize>,
    _stops: Vec<watch::Sender<bool>>,
}

async fn cluster() -> Cluster {
    let client = NetApp::new(NodeKey::generate(), KEY, None);
    let gate = Arc::new(Semaphore::new(0));
    let arrived = Arc::new(AtomicUsize::new(0));
    let mut servers = vec![];
    let mut stops = vec![];
    for i in 0..3 {
        let server = NetApp::new(NodeKey::generate(), KEY, None);
        let permits = if i == 2 {
            gate.clone()
        } else {
            Arc::new(Semaphore::new(1000))
        };
        let handler = Gate(permits, arrived.clone());
        Endpoint::<Write>::new(server.clone(), "test/write").set_handler(Arc::new(handler));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(server.clone().listen(listener, stop_rx));
        client.connect(addr, server.id).await.expect("connect");
        servers.push(server.id);
        stops.push(stop);
    }
    Cluster {
        client,
        servers,
        gate,
        arrived,
        _stops: stops,
    }
}

async fn write(c: &Cluster, linger: Option<Duration>) -> Vec<NodeId> {
    let ep = Endpoint::<Write>::new(c.client.clone(), "test/write");
    let opts = CallOpts::new(Priority::Normal, Duration::from_secs(60));
    let sets = vec![c.servers.clone()];
    let ok = call_write_sets(&ep, &sets, |n| n - 1, &Write, linger, opts)
        .await
        .expect("quorum reached");
    ok.into_iter().map(|(n, ())| n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_linger_the_call_returns_at_the_quorum() {
    let c = cluster().await;
    let ok = write(&c, None).await;
    assert_eq!(ok.len(), 2, "returned at the quorum");
    assert!(
        !ok.contains(&c.servers[2]),
        "the held node cannot have answered"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linger_waits_for_the_last_node_and_no_longer() {
    let c = Arc::new(cluster().await);
    // The held node never answers: the call returns after the linger with the quorum.
    let ok = write(&c, Some(Duration::from_millis(200))).await;
    assert_eq!(ok.len(), 2);

    // Held, then released while the call lingers (for at most a minute): all three answered.
    c.gate.add_permits(1); // the first call's request, still waiting at the held node
    let call = {
        let c = c.clone();
        tokio::spawn(async move { write(&c, Some(Duration::from_secs(60))).await })
    };
    // Released only once the second request is held there, i.e. while the call lingers.
    let start = Instant::now();
    while c.arrived.load(Ordering::SeqCst) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "request never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    c.gate.add_permits(1);
    let ok = call.await.expect("call task");
    assert_eq!(
        ok.len(),
        3,
        "the lingering call waited for the released node"
    );
    assert!(ok.contains(&c.servers[2]));
}
