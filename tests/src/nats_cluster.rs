//! [`TestNatsCluster`]: three (or more) real nats-servers clustered on
//! loopback with JetStream, each with its own ports and store, any of them
//! stoppable and restartable on the same ports and store; killed on drop.

use std::time::Duration;

use crate::TestNats;
use crate::nats::ClusterMember;
use crate::util::free_port;

/// A JetStream cluster owned by one test.
#[derive(Debug)]
pub struct TestNatsCluster {
    servers: Vec<TestNats>,
}

impl TestNatsCluster {
    /// Starts `size` clustered servers and waits (bounded) until each says
    /// JetStream is ready (a meta leader elected, the server current).
    pub async fn start(size: usize) -> TestNatsCluster {
        assert!(size >= 1, "a cluster has at least one server");
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let cluster = format!("hostkit-test-{}", ulid::Ulid::new().random() as u32);
        let mut servers: Vec<TestNats> = (0..size)
            .map(|i| {
                let member = ClusterMember {
                    name: format!("n{}", i + 1),
                    cluster: cluster.clone(),
                    route_port: route_ports[i],
                    routes: route_ports
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, port)| *port)
                        .collect(),
                };
                let mut server = TestNats::prepare(None, Some(member));
                server.set_ports(free_port(), free_port());
                server
            })
            .collect();
        // All at once: a clustered server is ready only once a quorum is up.
        let spawned: Vec<_> = servers.iter().map(TestNats::spawn).collect();
        for (server, (process, log_before)) in servers.iter_mut().zip(spawned) {
            if let Err(log) = server.wait_ready(process, log_before).await {
                panic!(
                    "clustered nats-server on port {} did not start:\n{log}",
                    server.port()
                );
            }
        }
        TestNatsCluster { servers }
    }

    /// Every server's URL, comma-separated (as `--server` and `NATS_URL`
    /// take them).
    pub fn urls(&self) -> String {
        self.url_list().join(",")
    }

    /// Every server's URL.
    pub fn url_list(&self) -> Vec<String> {
        self.servers.iter().map(TestNats::url).collect()
    }

    /// Server `i` (0-based).
    pub fn server(&self, i: usize) -> &TestNats {
        &self.servers[i]
    }

    /// Stops server `i` (SIGTERM, then SIGKILL after a grace period).
    pub fn stop(&mut self, i: usize) {
        self.servers[i].stop();
    }

    /// Kills server `i` at once (SIGKILL).
    pub fn kill(&mut self, i: usize) {
        self.servers[i].kill();
    }

    /// Starts server `i` again on its ports and store and waits until it is
    /// ready (caught up with the cluster).
    pub async fn restart(&mut self, i: usize) {
        self.servers[i].start().await;
    }

    /// A client that knows every server (it fails over between them).
    pub async fn client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(self.url_list())
            .await
            .unwrap_or_else(|e| panic!("connect to the test cluster {}: {e}", self.urls()))
    }

    /// The last lines of every server's log (for failure messages).
    pub fn log_tails(&self) -> String {
        self.servers
            .iter()
            .enumerate()
            .map(|(i, s)| format!("--- server {} (port {})\n{}", i + 1, s.port(), s.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
