//! One connection type for a single Redis server and for a Redis Cluster, so that the shipper
//! and the CLI work unchanged on either (`[runlog-redis] cluster`, spec/config.md).
//!
//! On a cluster, a command goes to the node serving its key's slot, following MOVED and ASK
//! redirections (the `redis` crate's cluster client); a pipeline of commands for several slots
//! is split by node.

use redis::cluster::{ClusterClientBuilder, ClusterConnection};
use redis::{Cmd, Connection, ConnectionLike, FromRedisValue, Pipeline, RedisResult, Value};

/// A connection to one server or to a cluster.
pub enum Conn {
    /// One server (or a Sentinel-chosen master).
    Single(Connection),
    /// A Redis Cluster.
    Cluster(Box<ClusterConnection>),
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Conn::Single(_) => "Conn::Single",
            Conn::Cluster(_) => "Conn::Cluster",
        })
    }
}

impl Conn {
    /// Whether this is a cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Send the commands of `p` and return their replies as `T`. On a single server it is one
    /// pipeline; on a cluster each command goes to its slot's node (one pipeline per node), so
    /// the commands may address any keys. For pipelines without `ignore()`d commands: on a
    /// cluster every command's reply is returned.
    pub fn query_pipe<T: FromRedisValue>(&mut self, p: &Pipeline) -> RedisResult<T> {
        if p.is_empty() {
            return Ok(redis::from_redis_value(Value::Array(Vec::new()))?);
        }
        match self {
            Conn::Single(c) => p.query(c),
            Conn::Cluster(c) => {
                let mut cp = redis::cluster::cluster_pipe();
                for cmd in p.cmd_iter() {
                    cp.add_command(cmd.clone());
                }
                cp.query(c)
            }
        }
    }

    /// The single-server connection, if it is one.
    pub fn single(&mut self) -> Option<&mut Connection> {
        match self {
            Conn::Single(c) => Some(c),
            Conn::Cluster(_) => None,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn req_command(&mut self, cmd: &Cmd) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_command(cmd),
            Conn::Cluster(c) => c.req_command(cmd),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// A cluster client for `nodes` (seed URLs) with these settings.
pub(crate) fn cluster_connection(
    nodes: &[String],
    username: Option<&str>,
    password: Option<&str>,
    tls: Option<redis::TlsCertificates>,
    connect_timeout: std::time::Duration,
    io_timeout: std::time::Duration,
) -> RedisResult<ClusterConnection> {
    let mut b = ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(connect_timeout)
        .response_timeout(io_timeout);
    if let Some(u) = username {
        b = b.username(u);
    }
    if let Some(p) = password {
        b = b.password(p);
    }
    if let Some(certs) = tls {
        b = b.certs(certs);
    }
    let client = b.build()?;
    let conn = client.get_connection()?;
    conn.set_read_timeout(Some(io_timeout))?;
    conn.set_write_timeout(Some(io_timeout))?;
    Ok(conn)
}
