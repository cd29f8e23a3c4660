//! Redis Sentinels of this test's own (`redis-server sentinel.conf --sentinel` on free loopback
//! ports), watching a master of the test's own; killed by pid when dropped.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::redis::{free_port, require_tool};

/// How long the Sentinels may take to agree on something.
const AGREE_TIMEOUT: Duration = Duration::from_secs(60);

/// One Sentinel process.
#[derive(Debug)]
struct Sentinel {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sentinels watching the master named [`Sentinels::MASTER`].
#[derive(Debug)]
pub struct Sentinels {
    nodes: Vec<Sentinel>,
}

impl Sentinels {
    /// The name the Sentinels know the master by.
    pub const MASTER: &'static str = "runlog-master";

    /// Start `n` Sentinels watching the master on `master_port` with quorum `quorum`; they
    /// consider a master down after 1 s without a reply.
    pub fn start(n: usize, quorum: usize, master_port: u16) -> Sentinels {
        require_tool("redis-server");
        let nodes = (0..n)
            .map(|_| {
                let dir = tempfile::tempdir().expect("tempdir for a sentinel");
                let port = free_port();
                let conf = dir.path().join("sentinel.conf");
                fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\ndir {}\n\
                         sentinel monitor {m} 127.0.0.1 {master_port} {quorum}\n\
                         sentinel down-after-milliseconds {m} 1000\n\
                         sentinel failover-timeout {m} 5000\n\
                         sentinel parallel-syncs {m} 1\n",
                        dir.path().display(),
                        m = Self::MASTER
                    ),
                )
                .expect("write sentinel.conf");
                let child = Command::new("redis-server")
                    .arg(&conf)
                    .arg("--sentinel")
                    .arg("--logfile")
                    .arg(dir.path().join("sentinel.log"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start a sentinel (redis-server --sentinel)");
                Sentinel {
                    child,
                    port,
                    _dir: dir,
                }
            })
            .collect();
        let s = Sentinels { nodes };
        s.wait(|c| {
            let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                .arg("SENTINELS")
                .arg(Self::MASTER)
                .query(c)
                .unwrap_or_default();
            others.len() + 1 >= n
        });
        s
    }

    /// `redis://127.0.0.1:<port>` of each Sentinel.
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|s| format!("redis://127.0.0.1:{}", s.port))
            .collect()
    }

    fn conn(&self, i: usize) -> Option<redis::Connection> {
        let c = redis::Client::open(format!("redis://127.0.0.1:{}", self.nodes[i].port)).ok()?;
        let c = c.get_connection_with_timeout(Duration::from_secs(2)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        Some(c)
    }

    /// Wait until `ok` holds on every Sentinel.
    fn wait(&self, ok: impl Fn(&mut redis::Connection) -> bool) {
        let deadline = Instant::now() + AGREE_TIMEOUT;
        loop {
            let all = (0..self.nodes.len()).all(|i| self.conn(i).is_some_and(|mut c| ok(&mut c)));
            if all {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test Sentinels did not agree within {AGREE_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until every Sentinel names a master other than the one on `old`; its port.
    pub fn wait_failover(&self, old: u16) -> u16 {
        let port = |c: &mut redis::Connection| -> Option<u16> {
            let addr: Option<(String, String)> = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(Self::MASTER)
                .query(c)
                .ok()
                .flatten();
            addr.and_then(|(_, p)| p.parse().ok())
        };
        self.wait(|c| port(c).is_some_and(|p| p != old));
        self.conn(0)
            .and_then(|mut c| port(&mut c))
            .expect("the new master's port")
    }

    /// Wait until every Sentinel knows `n` replicas of the master that are up.
    pub fn wait_replicas(&self, n: usize) {
        self.wait(|c| {
            let replicas: Vec<std::collections::HashMap<String, String>> = redis::cmd("SENTINEL")
                .arg("REPLICAS")
                .arg(Self::MASTER)
                .query(c)
                .unwrap_or_default();
            replicas
                .iter()
                .filter(|r| r.get("flags").is_some_and(|f| f == "slave"))
                .count()
                >= n
        });
    }
}
