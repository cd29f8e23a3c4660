//! A Redis Cluster of this test's own: `redis-server --cluster-enabled yes` nodes on free
//! loopback ports (each with its own cluster bus port), joined with `redis-cli --cluster
//! create`, stopped by pid when dropped. Also: a whole-cluster snapshot, and moving a slot from
//! one master to another by hand (the steps `redis-cli --cluster reshard` takes), so that a
//! test can migrate a slot while a shipper writes to it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use redis::Connection;

use crate::redis::{free_port, require_tool, snapshot, RedisServer, Snapshot};

/// How long a new cluster may take to agree on its slots.
const FORM_TIMEOUT: Duration = Duration::from_secs(30);

/// A cluster of masters (no replicas).
#[derive(Debug)]
pub struct RedisCluster {
    /// Its masters, in the order they were created.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Start `masters` nodes (at least 3, as `redis-cli --cluster create` wants) and make
    /// them one cluster, every slot served.
    pub fn start(masters: usize) -> RedisCluster {
        require_tool("redis-cli");
        let nodes: Vec<RedisServer> = (0..masters)
            .map(|_| {
                let bus = free_port().to_string();
                RedisServer::start_with(&[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-port",
                    &bus,
                    "--cluster-node-timeout",
                    "5000",
                ])
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create {addrs:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let c = RedisCluster { nodes };
        c.wait_ok();
        c
    }

    /// Wait until every node says `cluster_state:ok` and knows every other node.
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        loop {
            let ok = self.nodes.iter().all(|n| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut n.conn())
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{}", self.nodes.len()))
            });
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the test cluster did not become ok within {FORM_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The seed URLs (`redis://127.0.0.1:<port>`) of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.url()).collect()
    }

    /// Every key under `prefix` on every node (a key lives on one master).
    pub fn snapshot(&self, prefix: &str) -> Snapshot {
        let mut all = Snapshot::new();
        for n in &self.nodes {
            all.extend(snapshot(&mut n.conn(), prefix));
        }
        all
    }

    /// Keys under `prefix` per node: (node index, key count).
    pub fn spread(&self, prefix: &str) -> BTreeMap<usize, usize> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (i, snapshot(&mut n.conn(), prefix).len()))
            .collect()
    }

    /// The node id of node `i`.
    pub fn node_id(&self, i: usize) -> String {
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut self.nodes[i].conn())
            .expect("CLUSTER MYID")
    }

    /// The index of the node serving `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        let slots: Vec<(u16, u16, Vec<redis::Value>)> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut self.nodes[0].conn())
            .map(|v: Vec<redis::Value>| {
                v.into_iter()
                    .filter_map(|r| match r {
                        redis::Value::Array(mut a) if a.len() >= 3 => {
                            let node = a.remove(2);
                            let end = a.remove(1);
                            let start = a.remove(0);
                            let num = |v: redis::Value| match v {
                                redis::Value::Int(i) => Some(i as u16),
                                _ => None,
                            };
                            let redis::Value::Array(node) = node else {
                                return None;
                            };
                            Some((num(start)?, num(end)?, node))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .expect("CLUSTER SLOTS");
        for (start, end, node) in slots {
            if (start..=end).contains(&slot) {
                let port = match node.get(1) {
                    Some(redis::Value::Int(p)) => *p as u16,
                    _ => continue,
                };
                if let Some(i) = self.nodes.iter().position(|n| n.port() == port) {
                    return i;
                }
            }
        }
        panic!("no node serves slot {slot}")
    }

    /// Start moving `slot` from node `from` to node `to`: the slot is IMPORTING on `to` and
    /// MIGRATING on `from` (clients get ASK for keys already moved, TRYAGAIN for commands on
    /// keys split between the two).
    pub fn begin_migration(&self, slot: u16, from: usize, to: usize) {
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        let set = |node: usize, how: &str, id: &str| {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg(how)
                .arg(id)
                .query(&mut self.nodes[node].conn())
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} {how} on node {node}: {e}"));
        };
        set(to, "IMPORTING", &from_id);
        set(from, "MIGRATING", &to_id);
    }

    /// Move up to `n` keys of `slot` from node `from` to node `to` with MIGRATE; how many
    /// were moved.
    pub fn migrate_keys(&self, slot: u16, from: usize, to: usize, n: usize) -> usize {
        let mut src = self.nodes[from].conn();
        let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(slot)
            .arg(n)
            .query(&mut src)
            .expect("CLUSTER GETKEYSINSLOT");
        if keys.is_empty() {
            return 0;
        }
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg("127.0.0.1")
            .arg(self.nodes[to].port())
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("REPLACE")
            .arg("KEYS");
        for k in &keys {
            cmd.arg(k);
        }
        let _: redis::Value = cmd.query(&mut src).expect("MIGRATE");
        keys.len()
    }

    /// Finish moving `slot` to node `to`: every remaining key migrated, then every node told
    /// that `to` serves it.
    pub fn finish_migration(&self, slot: u16, from: usize, to: usize) {
        while self.migrate_keys(slot, from, to, 100) > 0 {}
        let to_id = self.node_id(to);
        for (i, n) in self.nodes.iter().enumerate() {
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&to_id)
                .query(&mut n.conn())
                .unwrap_or_else(|e| panic!("CLUSTER SETSLOT {slot} NODE on node {i}: {e}"));
        }
        self.wait_ok();
    }

    /// A plain connection to node `i`.
    pub fn conn(&self, i: usize) -> Connection {
        self.nodes[i].conn()
    }
}
