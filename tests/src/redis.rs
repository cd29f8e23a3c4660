//! A private Redis for each shipper test, and readers that check what the shipper wrote
//! against `spec/redis.md`.
//!
//! - [`RedisServer`]: a `redis-server` child on a free loopback port (never 6379), without
//!   persistence, in its own temporary directory; killed on drop. [`RedisServer::restart`]
//!   brings it back empty on the same port, like a production Redis without persistence.
//! - [`snapshot`]: every key under a prefix, read logically by type (plus whether it expires),
//!   for "Redis holds exactly what a clean ship leaves" comparisons.
//! - [`check_consistent`]: the invariants of spec/redis.md, "What a reader may rely on", for a
//!   quiescent store (every chunk decoded, no orphan keys, no stage keys).
//! - [`read_job_atomically`] / [`check_view`]: one job read in a single `EVAL` (reads only), so
//!   that a reader running while a shipper uploads sees one instant, and what it may see then.
//! - [`spec_decode_chunk`]: a chunk decoded from the spec alone (zstd + the record layout of
//!   spec/journal.md), independent of `runlog_shipper::schema`.
//! - [`key_slot`]: CRC16-XMODEM hash slots, independent of `runlog_shipper::schema::key_slot`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use runlog::Record;
use tempfile::TempDir;

/// How long a server may take to answer PING after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The port of whatever Redis the machine runs: never touched.
const SYSTEM_PORT: u16 = 6379;

/// Panic with what to install if `tool` cannot be run. The shipper tests never skip.
pub fn require_tool(tool: &str) {
    match Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("`{tool} --version` failed ({s}): the shipper tests need a working {tool}"),
        Err(e) => panic!(
            "{tool} cannot be run ({e}): the shipper tests start their own Redis; install \
             redis-server and redis-tools (Debian/Ubuntu: `apt-get install redis-server`; \
             scripts/test.sh and CI do this), then re-run"
        ),
    }
}

/// Ports of the [`RedisServer`]s of this process, for as long as they live: a server being
/// restarted leaves its port free for a moment, and a concurrent test must not start its own
/// server there (its shipper would then talk to the other test's Redis).
static OWNED_PORTS: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());

fn owned_ports() -> std::sync::MutexGuard<'static, BTreeSet<u16>> {
    OWNED_PORTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A port on 127.0.0.1 that was free a moment ago (never 6379, never one a live
/// [`RedisServer`] of this process owns).
pub fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        if port != SYSTEM_PORT && !owned_ports().contains(&port) {
            return port;
        }
    }
}

/// A `redis-server` child process of this test.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    starts: u32,
    tls: Option<Tls>,
}

/// A TLS-only server ([`RedisServer::start_tls`]): its certificate files, and how the test
/// itself connects to it.
#[derive(Clone, Debug)]
pub struct Tls {
    /// `--tls-cert-file`: the server's certificate, for `localhost` and 127.0.0.1.
    pub server_cert: PathBuf,
    /// `--tls-key-file`.
    pub server_key: PathBuf,
    /// `--tls-ca-cert-file`: the CA that signed the server's certificate, and that client
    /// certificates must be signed by.
    pub ca: PathBuf,
    /// `Some` (a client certificate and its key, signed by `ca`): `--tls-auth-clients yes`,
    /// and the test connects with it. `None`: `--tls-auth-clients no`.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl RedisServer {
    /// Start a server on a free loopback port and wait until it answers PING.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// [`RedisServer::start`] with extra `redis-server` arguments (e.g.
    /// `["--cluster-enabled", "yes"]`).
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_inner(None, extra)
    }

    /// A server that speaks TLS only (`--port 0 --tls-port P`), on a free loopback port.
    /// [`RedisServer::url`], [`RedisServer::client`] and [`RedisServer::conn`] go over TLS,
    /// trusting `tls.ca` and presenting `tls.client`.
    pub fn start_tls(tls: Tls) -> RedisServer {
        RedisServer::start_inner(Some(tls), &[])
    }

    fn start_inner(tls: Option<Tls>, extra: &[&str]) -> RedisServer {
        require_tool("redis-server");
        require_tool("redis-cli");
        let mut errors = Vec::new();
        // Another process may take the free port before the server binds it: try a few.
        for _ in 0..5 {
            let mut s = RedisServer {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("tempdir for redis-server"),
                starts: 0,
                tls: tls.clone(),
            };
            // Owned from now on (given back when `s` is dropped, also when it did not start).
            owned_ports().insert(s.port);
            match s.spawn(extra) {
                Ok(()) => return s,
                Err(e) => errors.push(e),
            }
        }
        panic!("redis-server did not start: {}", errors.join("; "))
    }

    fn spawn(&mut self, extra: &[&str]) -> Result<(), String> {
        assert_ne!(self.port, SYSTEM_PORT, "never touch the system's Redis");
        self.starts += 1;
        let log = self.dir.path().join(format!("redis-{}.log", self.starts));
        let mut cmd = Command::new("redis-server");
        match &self.tls {
            None => cmd.arg("--port").arg(self.port.to_string()),
            Some(t) => cmd
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(&t.server_cert)
                .arg("--tls-key-file")
                .arg(&t.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&t.ca)
                .arg("--tls-auth-clients")
                .arg(if t.client.is_some() { "yes" } else { "no" }),
        };
        cmd.args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(&log)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                let text = fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(5).collect();
                return Err(format!(
                    "redis-server on port {} exited ({st}): {}",
                    self.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ));
            }
            if self.ping() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "redis-server on port {} did not answer PING within {START_TIMEOUT:?}",
                    self.port
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ping(&self) -> bool {
        let Ok(client) = self.try_client() else {
            return false;
        };
        let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(1)) else {
            return false;
        };
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        redis::cmd("PING")
            .query::<String>(&mut c)
            .is_ok_and(|s| s == "PONG")
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`; `rediss://localhost:<port>/0` for a TLS server.
    pub fn url(&self) -> String {
        match self.tls {
            None => format!("redis://127.0.0.1:{}/0", self.port),
            Some(_) => format!("rediss://localhost:{}/0", self.port),
        }
    }

    /// The TLS files of a server started with [`RedisServer::start_tls`].
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    fn try_client(&self) -> redis::RedisResult<redis::Client> {
        let Some(t) = &self.tls else {
            return redis::Client::open(self.url());
        };
        let read = |p: &PathBuf| {
            fs::read(p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
        };
        redis::Client::build_with_tls(
            self.url(),
            redis::TlsCertificates {
                client_tls: t.client.as_ref().map(|(c, k)| redis::ClientTlsConfig {
                    client_cert: read(c),
                    client_key: read(k),
                }),
                root_cert: Some(read(&t.ca)),
            },
        )
    }

    /// The pid of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client for this server (over TLS for a TLS server).
    pub fn client(&self) -> redis::Client {
        self.try_client().expect("redis client")
    }

    /// A new connection (with timeouts, so that a test never hangs on a dead server).
    pub fn conn(&self) -> Connection {
        let c = self
            .client()
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("cannot connect to the test Redis {}: {e}", self.url()));
        c.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        c.set_write_timeout(Some(Duration::from_secs(60)))
            .expect("write timeout");
        c
    }

    /// Delete every key (this test's own server).
    pub fn flushall(&self) {
        let _: () = redis::cmd("FLUSHALL")
            .query(&mut self.conn())
            .expect("FLUSHALL");
    }

    /// Is the server process running?
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGKILL to our own child (also when it is stopped), then reap it.
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kill the server (SIGKILL: like a crash, it saves nothing) and wait for it to exit.
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Send a signal to the server by name (`STOP`, `CONT`) with `kill(1)`.
    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("the server runs");
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .expect("run kill(1)");
        assert!(st.success(), "kill -{sig} {pid} failed");
    }

    /// Freeze the server (SIGSTOP): connections are still accepted by the kernel, but no
    /// command is answered — a hung Redis.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Let a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    /// Stop the server and start it again on the same port. It comes back empty (no
    /// persistence), like a production Redis without it after a restart.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match self.spawn(&[]) {
                Ok(()) => break,
                // The port may linger for a moment.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("restarting redis-server: {e}; retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("redis-server did not restart on port {}: {e}", self.port),
            }
        }
        // It loaded nothing (a client such as a running shipper may write at once, so the
        // number of keys now says nothing about what it came back with).
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query(&mut self.conn())
            .expect("INFO persistence");
        let loaded = info
            .lines()
            .find_map(|l| l.strip_prefix("rdb_last_load_keys_loaded:"))
            .map(str::trim);
        assert!(
            matches!(loaded, Some("0") | None) && !self.dir.path().join("dump.rdb").exists(),
            "a restarted test Redis must come back empty: {info}"
        );
    }

    /// Start the server again after [`RedisServer::stop`] (same as [`RedisServer::restart`]).
    pub fn start_again(&mut self) {
        self.restart();
    }

    /// The server's directory (its log files are there).
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        owned_ports().remove(&self.port);
    }
}

// ---------------------------------------------------------------------------------------------
// Least privilege (spec/redis.md, "Least privilege (Redis ACL)")
// ---------------------------------------------------------------------------------------------

/// The shipper's ACL user.
pub const SHIPPER_USER: &str = "runlog-shipper";
/// Its password (in [`SHIPPER_ACL`]).
pub const SHIPPER_PASSWORD: &str = "shipper-secret";
/// The reader's (the CLI's) ACL user.
pub const READER_USER: &str = "runlog-reader";
/// Its password (in [`READER_ACL`]).
pub const READER_PASSWORD: &str = "reader-secret";

/// `ACL SETUSER runlog-shipper` arguments of spec/redis.md for the prefix `runlog`: it writes
/// only keys under its prefix.
pub const SHIPPER_ACL: &[&str] = &[
    "on",
    ">shipper-secret",
    "resetkeys",
    "~runlog:*",
    "resetchannels",
    "-@all",
    "+ping",
    "+get",
    "+set",
    "+del",
    "+rpush",
    "+rpushx",
    "+pexpire",
    "+zadd",
    "+evalsha",
    "+script|load",
    "+hset",
    "+hget",
    "+llen",
    "+persist",
    "+rename",
    "+zcard",
    "+zrange",
    "+zrem",
    "+zscore",
    "+multi",
    "+exec",
    "+info",
    "+wait",
    "+role",
    "+asking",
    "+cluster|slots",
];

/// `ACL SETUSER runlog-reader` arguments of spec/redis.md for the prefix `runlog`: it only
/// reads keys under its prefix.
pub const READER_ACL: &[&str] = &[
    "on",
    ">reader-secret",
    "resetkeys",
    "%R~runlog:*",
    "resetchannels",
    "-@all",
    "+ping",
    "+get",
    "+zrange",
    "+hmget",
    "+hgetall",
    "+lrange",
    "+role",
    "+asking",
    "+cluster|slots",
];

/// Create [`SHIPPER_USER`] and [`READER_USER`] with [`SHIPPER_ACL`] and [`READER_ACL`].
pub fn create_acl_users(admin: &mut Connection) {
    for (user, rules) in [(SHIPPER_USER, SHIPPER_ACL), (READER_USER, READER_ACL)] {
        let _: () = redis::cmd("ACL")
            .arg("SETUSER")
            .arg(user)
            .arg(rules)
            .query(admin)
            .unwrap_or_else(|e| panic!("ACL SETUSER {user}: {e}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Logical snapshots
// ---------------------------------------------------------------------------------------------

/// What a key holds, read logically.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Data {
    /// GET.
    Str(Vec<u8>),
    /// HGETALL, sorted by field.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// LRANGE 0 -1.
    List(Vec<Vec<u8>>),
    /// ZRANGE 0 -1 WITHSCORES (scores as Redis prints them).
    ZSet(Vec<(Vec<u8>, String)>),
    /// SMEMBERS, sorted.
    Set(Vec<Vec<u8>>),
    /// Any other type, by name.
    Other(String),
}

/// A key's contents and whether it has an expiry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Val {
    /// The contents.
    pub data: Data,
    /// It has a TTL.
    pub expires: bool,
}

/// Every key under a prefix with its contents.
pub type Snapshot = BTreeMap<Vec<u8>, Val>;

/// `s` without `<prefix>:epoch`, the one key two ships of the same journal into two servers
/// write differently (a random token).
pub fn without_epoch(mut s: Snapshot, prefix: &str) -> Snapshot {
    s.remove(format!("{prefix}:epoch").as_bytes());
    s
}

/// A Redis glob pattern matching `s` literally.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Every key matching a glob pattern (SCAN), sorted.
pub fn scan_keys(conn: &mut Connection, pattern: &str) -> Vec<Vec<u8>> {
    let mut out = BTreeSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(conn)
            .expect("SCAN");
        out.extend(keys);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    out.into_iter().collect()
}

fn pairs<T>(flat: Vec<Vec<u8>>, f: impl Fn(Vec<u8>) -> T) -> Vec<(Vec<u8>, T)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut it = flat.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, f(b)));
    }
    out
}

/// Read one key logically; `None` if it does not exist.
pub fn read_key(conn: &mut Connection, key: &[u8]) -> Option<Val> {
    let kind: String = redis::cmd("TYPE").arg(key).query(conn).expect("TYPE");
    let data = match kind.as_str() {
        "none" => return None,
        "string" => Data::Str(redis::cmd("GET").arg(key).query(conn).expect("GET")),
        "hash" => {
            let flat: Vec<Vec<u8>> = redis::cmd("HGETALL").arg(key).query(conn).expect("HGETALL");
            let mut h = pairs(flat, |v| v);
            h.sort();
            Data::Hash(h)
        }
        "list" => Data::List(
            redis::cmd("LRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query(conn)
                .expect("LRANGE"),
        ),
        "zset" => {
            let flat: Vec<Vec<u8>> = redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(conn)
                .expect("ZRANGE");
            Data::ZSet(pairs(flat, |s| String::from_utf8_lossy(&s).into_owned()))
        }
        "set" => {
            let mut m: Vec<Vec<u8>> = redis::cmd("SMEMBERS")
                .arg(key)
                .query(conn)
                .expect("SMEMBERS");
            m.sort();
            Data::Set(m)
        }
        other => Data::Other(other.to_owned()),
    };
    let pttl: i64 = redis::cmd("PTTL").arg(key).query(conn).expect("PTTL");
    if pttl == -2 {
        return None;
    }
    Some(Val {
        data,
        expires: pttl >= 0,
    })
}

/// Every key `<prefix>:*`, read logically by type. Not atomic: for a quiescent store.
pub fn snapshot(conn: &mut Connection, prefix: &str) -> Snapshot {
    let mut out = Snapshot::new();
    for key in scan_keys(conn, &format!("{}:*", glob_escape(prefix))) {
        if let Some(v) = read_key(conn, &key) {
            out.insert(key, v);
        }
    }
    out
}

/// `DUMP` of every key `<prefix>:*` (the serialized bytes: equal means byte-identical).
pub fn dump_all(conn: &mut Connection, prefix: &str) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut out = BTreeMap::new();
    for key in scan_keys(conn, &format!("{}:*", glob_escape(prefix))) {
        let d: Option<Vec<u8>> = redis::cmd("DUMP").arg(&key).query(conn).expect("DUMP");
        if let Some(d) = d {
            out.insert(key, d);
        }
    }
    out
}

/// The differences between two snapshots, for messages (at most `max` lines).
pub fn diff(a: &Snapshot, b: &Snapshot, max: usize) -> String {
    let mut out = Vec::new();
    let keys: BTreeSet<&Vec<u8>> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let name = String::from_utf8_lossy(k);
        match (a.get(k), b.get(k)) {
            (Some(_), None) => out.push(format!("only in the first: {name}")),
            (None, Some(_)) => out.push(format!("only in the second: {name}")),
            (Some(x), Some(y)) if x != y => out.push(format!(
                "differs: {name}: {} vs {}",
                describe_val(x),
                describe_val(y)
            )),
            _ => {}
        }
    }
    let n = out.len();
    if n > max {
        out.truncate(max);
        out.push(format!("... {} more", n - max));
    }
    out.join("\n")
}

fn describe_val(v: &Val) -> String {
    let ttl = if v.expires { " (expires)" } else { "" };
    match &v.data {
        Data::Str(s) => format!("string {:?}{ttl}", String::from_utf8_lossy(s)),
        Data::Hash(h) => format!(
            "hash {{{}}}{ttl}",
            h.iter()
                .map(|(k, v)| {
                    let v = String::from_utf8_lossy(v);
                    let v: String = v.chars().take(60).collect();
                    format!("{}={v:?}", String::from_utf8_lossy(k))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Data::List(l) => format!(
            "list of {} ({} bytes){ttl}",
            l.len(),
            l.iter().map(Vec::len).sum::<usize>()
        ),
        Data::ZSet(z) => format!(
            "zset [{}]{ttl}",
            z.iter()
                .map(|(m, s)| format!("{} {s}", String::from_utf8_lossy(m)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Data::Set(s) => format!("set of {}{ttl}", s.len()),
        Data::Other(t) => format!("{t}{ttl}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Names, slots and an independent chunk decoder (from the spec text only)
// ---------------------------------------------------------------------------------------------

/// `<J>` of spec/redis.md, written from the spec: bytes outside `[A-Za-z0-9_.-]` become
/// `%XX` (upper-case hex).
pub fn spec_escape(job: &str) -> String {
    let mut out = String::new();
    for &b in job.as_bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `<P>:{<J>}:` for a job.
pub fn job_base(prefix: &str, job: &str) -> String {
    format!("{prefix}:{{{}}}:", spec_escape(job))
}

/// CRC16-XMODEM (polynomial 0x1021, init 0), bit by bit, as the Redis Cluster spec defines it.
pub fn crc16_xmodem(data: &[u8]) -> u16 {
    let mut crc: u32 = 0;
    for &byte in data {
        for bit in (0..8).rev() {
            let inbit = u32::from((byte >> bit) & 1);
            let top = (crc >> 15) & 1;
            crc = (crc << 1) & 0xffff;
            if top ^ inbit == 1 {
                crc ^= 0x1021;
            }
        }
    }
    crc as u16
}

/// The Redis Cluster slot of a key: the hash tag (between the first `{` and the next `}`,
/// if non-empty) or the whole key, CRC16 mod 16384.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = match key.iter().position(|&b| b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|&b| b == b'}') {
            Some(0) | None => key,
            Some(len) => &key[open + 1..open + 1 + len],
        },
        None => key,
    };
    crc16_xmodem(hashed) % 16384
}

/// Largest decompressed chunk (spec/redis.md).
pub const SPEC_MAX_CHUNK: usize = 2 * 1024 * 1024;

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("{what} runs past the payload at {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn str(&mut self, what: &str) -> Result<String, String> {
        let n = self.u32(what)? as usize;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
}

/// Decode a RECORD payload following spec/journal.md (*RECORD payload*) only.
pub fn spec_decode_record(p: &[u8]) -> Result<Record, String> {
    let mut c = Cursor { b: p, at: 0 };
    let fixed = c.take(16, "fixed fields")?;
    let ts_ns = i64::from_le_bytes(fixed[0..8].try_into().expect("8 bytes"));
    let level = match fixed[8] {
        1 => log::Level::Error,
        2 => log::Level::Warn,
        3 => log::Level::Info,
        4 => log::Level::Debug,
        5 => log::Level::Trace,
        l => return Err(format!("level byte {l}")),
    };
    let flags = fixed[9];
    if flags & !7 != 0 {
        return Err(format!("unknown flags {flags:#x}"));
    }
    let kv_count = u16::from_le_bytes([fixed[10], fixed[11]]);
    let line = u32::from_le_bytes(fixed[12..16].try_into().expect("4 bytes"));
    let target = c.str("target")?;
    let module_path = if flags & 4 != 0 {
        None
    } else if flags & 2 != 0 {
        Some(target.clone())
    } else {
        Some(c.str("module path")?)
    };
    let file = c.str("file")?;
    let mut kvs = Vec::new();
    for _ in 0..kv_count {
        let k = c.str("key")?;
        let v = c.str("value")?;
        kvs.push((k, v));
    }
    let message = String::from_utf8(p[c.at..].to_vec()).map_err(|_| "message is not UTF-8")?;
    Ok(Record {
        ts_ns,
        level,
        target,
        module_path,
        file: (!file.is_empty()).then_some(file),
        line: (line != 0).then_some(line),
        kvs,
        message,
        truncated: flags & 1 != 0,
    })
}

/// Decompress a chunk (at most [`SPEC_MAX_CHUNK`]) and split it into `u32` LE length + RECORD
/// payload, decoding each from the spec. Returns the records and the decompressed size.
pub fn spec_decode_chunk(data: &[u8]) -> Result<(Vec<Record>, usize), String> {
    // RFC 8878: magic number, then the Frame_Header_Descriptor whose bit 2 is
    // Content_Checksum_flag; the spec says writers set it.
    match data {
        [0x28, 0xb5, 0x2f, 0xfd, fhd, ..] if fhd & 0x04 != 0 => {}
        [0x28, 0xb5, 0x2f, 0xfd, ..] => return Err("chunk has no content checksum".into()),
        _ => return Err("chunk is not a Zstandard frame".into()),
    }
    let raw = zstd::bulk::decompress(data, SPEC_MAX_CHUNK)
        .map_err(|e| format!("chunk does not decompress: {e}"))?;
    let mut out = Vec::new();
    let mut c = Cursor { b: &raw, at: 0 };
    while c.at < raw.len() {
        let at = c.at;
        let n = c.u32("record length")? as usize;
        let p = c.take(n, "record")?;
        out.push(spec_decode_record(p).map_err(|e| format!("record at {at}: {e}"))?);
    }
    Ok((out, raw.len()))
}

/// Parse a chunk index (`<first_ns> <last_ns> <records>\n` per chunk).
pub fn spec_parse_index(s: &str) -> Result<Vec<(i64, i64, u64)>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = s.strip_suffix('\n') else {
        return Err(format!("chunk index does not end in a newline: {s:?}"));
    };
    body.split('\n')
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let bad = || format!("bad chunk index line {l:?}");
            if f.len() != 3 {
                return Err(bad());
            }
            Ok((
                f[0].parse().map_err(|_| bad())?,
                f[1].parse().map_err(|_| bad())?,
                f[2].parse().map_err(|_| bad())?,
            ))
        })
        .collect()
}

/// A run id as readers accept it: 40 bytes of `[A-Za-z0-9:.-]`.
pub fn is_run_id(s: &[u8]) -> bool {
    s.len() == 40
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'-'))
}

// ---------------------------------------------------------------------------------------------
// Consistency of a quiescent store
// ---------------------------------------------------------------------------------------------

/// One visible run, checked.
#[derive(Clone, Debug)]
pub struct RunState {
    /// `<R>`.
    pub id: String,
    /// Score in `runs` (start, ms).
    pub score: i64,
    /// The `run:<R>` hash.
    pub meta: BTreeMap<String, String>,
    /// Its records, decoded from the chunks (with `runlog_shipper::schema::decode_chunk`).
    pub records: Vec<Record>,
    /// Number of chunks.
    pub chunks: usize,
}

impl RunState {
    /// A metadata field.
    pub fn field(&self, k: &str) -> Option<&str> {
        self.meta.get(k).map(String::as_str)
    }
    /// `status`.
    pub fn status(&self) -> &str {
        self.field("status").unwrap_or("")
    }
}

/// What [`check_consistent`] found.
#[derive(Clone, Debug, Default)]
pub struct Store {
    /// Per job name: its score in `<P>:jobs` and its visible runs, oldest first.
    pub jobs: BTreeMap<String, (i64, Vec<RunState>)>,
    /// `<P>:epoch`.
    pub epoch: Option<String>,
}

impl Store {
    /// The visible runs of a job (empty if none).
    pub fn runs(&self, job: &str) -> &[RunState] {
        self.jobs.get(job).map_or(&[], |(_, r)| r.as_slice())
    }
    /// Ids of the visible runs of a job, oldest first.
    pub fn ids(&self, job: &str) -> Vec<String> {
        self.runs(job).iter().map(|r| r.id.clone()).collect()
    }
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Check one run's metadata against its chunks (the invariants a reader relies on).
/// `chunks` are the elements of `log:<R>`. Returns the decoded records.
pub fn check_run(
    job: &str,
    id: &str,
    score: i64,
    meta: &BTreeMap<String, String>,
    chunks: &[Vec<u8>],
    decode: bool,
) -> Result<Vec<Record>, String> {
    let ctx = format!("job {job:?} run {id}");
    let get = |k: &str| {
        meta.get(k)
            .map(String::as_str)
            .ok_or_else(|| format!("{ctx}: metadata lacks `{k}` (has {:?})", meta.keys()))
    };
    let num = |k: &str| -> Result<i64, String> {
        get(k)?
            .parse::<i64>()
            .map_err(|_| format!("{ctx}: `{k}` is not a number: {:?}", meta.get(k)))
    };
    if !is_run_id(id.as_bytes()) {
        return Err(format!("{ctx}: not a run id"));
    }
    if get("v")? != "1" {
        return Err(format!("{ctx}: v = {:?}", meta.get("v")));
    }
    if get("job")? != job {
        return Err(format!("{ctx}: job field {:?}", meta.get("job")));
    }
    if get("id")? != id {
        return Err(format!("{ctx}: id field {:?}", meta.get("id")));
    }
    let status = get("status")?;
    if !matches!(status, "ok" | "failed" | "crashed") {
        return Err(format!("{ctx}: status {status:?}"));
    }
    let start = num("start")?;
    if start.div_euclid(1_000_000) != score {
        return Err(format!("{ctx}: score {score} is not start {start} in ms"));
    }
    match (status, meta.get("end")) {
        ("crashed", Some(_)) => return Err(format!("{ctx}: a crashed run has `end`")),
        ("ok" | "failed", None) => return Err(format!("{ctx}: an ended run lacks `end`")),
        _ => {}
    }
    if meta.contains_key("end") && num("end")? < start {
        return Err(format!("{ctx}: end before start"));
    }
    let last = num("last")?;
    if last < start {
        return Err(format!("{ctx}: last {last} before start {start}"));
    }
    // Unknown only when the run's BEGIN frame is lost, which is damage.
    if get("host")?.is_empty() && !meta.contains_key("problems") {
        return Err(format!("{ctx}: empty host in an undamaged run"));
    }
    get("pid")?
        .parse::<u32>()
        .map_err(|_| format!("{ctx}: bad pid"))?;
    let records = u64::try_from(num("records")?).map_err(|_| format!("{ctx}: records < 0"))?;
    let dropped = u64::try_from(num("dropped")?).map_err(|_| format!("{ctx}: dropped < 0"))?;
    if status == "crashed" && dropped != 0 {
        return Err(format!("{ctx}: a crashed run has dropped = {dropped}"));
    }
    let bytes = u64::try_from(num("bytes")?).map_err(|_| format!("{ctx}: bytes < 0"))?;
    let index = spec_parse_index(get("chunks")?).map_err(|e| format!("{ctx}: {e}"))?;
    if index.len() != chunks.len() {
        return Err(format!(
            "{ctx}: chunk index has {} lines but log:<R> has {} chunks",
            index.len(),
            chunks.len()
        ));
    }
    let indexed: u64 = index.iter().map(|l| l.2).sum();
    if indexed != records {
        return Err(format!(
            "{ctx}: chunk index counts {indexed} records, `records` says {records}"
        ));
    }
    if let Some(e) = meta.get("error") {
        if status == "ok" {
            return Err(format!("{ctx}: an ok run has an error summary {e:?}"));
        }
        if e.len() > 1024 {
            return Err(format!("{ctx}: error summary of {} bytes", e.len()));
        }
    }
    if let Some(p) = meta.get("problems") {
        p.parse::<u64>()
            .map_err(|_| format!("{ctx}: bad problems {p:?}"))?;
    }
    for k in meta.keys() {
        let known = [
            "v", "job", "id", "status", "start", "end", "last", "host", "pid", "records",
            "dropped", "bytes", "chunks", "error", "problems",
        ];
        if !known.contains(&k.as_str()) && !k.starts_with("label:") {
            return Err(format!("{ctx}: unknown metadata field {k:?}"));
        }
    }
    let mut out = Vec::new();
    if decode {
        let mut raw_total = 0u64;
        for (i, (c, (first, lastc, n))) in chunks.iter().zip(&index).enumerate() {
            let recs = runlog_shipper::schema::decode_chunk(c)
                .map_err(|e| format!("{ctx}: chunk {i}: {e}"))?;
            let raw = runlog_shipper::schema::decompress_chunk(c)
                .map_err(|e| format!("{ctx}: chunk {i}: {e}"))?;
            raw_total += raw.len() as u64;
            if recs.len() as u64 != *n {
                return Err(format!(
                    "{ctx}: chunk {i} holds {} records, its index line says {n}",
                    recs.len()
                ));
            }
            let min = recs.iter().map(|r| r.ts_ns).min();
            let max = recs.iter().map(|r| r.ts_ns).max();
            if min != Some(*first) || max != Some(*lastc) {
                return Err(format!(
                    "{ctx}: chunk {i} spans {min:?}..{max:?}, its index line says {first}..{lastc}"
                ));
            }
            out.extend(recs);
        }
        if out.len() as u64 != records {
            return Err(format!(
                "{ctx}: chunks hold {} records, `records` says {records}",
                out.len()
            ));
        }
        if raw_total != bytes {
            return Err(format!(
                "{ctx}: chunks decompress to {raw_total} bytes, `bytes` says {bytes}"
            ));
        }
    }
    Ok(out)
}

fn zset_pairs(v: &Val) -> Result<Vec<(String, i64)>, String> {
    match &v.data {
        Data::ZSet(z) => z
            .iter()
            .map(|(m, sc)| {
                let score: f64 = sc.parse().map_err(|_| format!("score {sc:?}"))?;
                Ok((s(m), score as i64))
            })
            .collect(),
        other => Err(format!("expected a sorted set, found {other:?}")),
    }
}

/// Check every invariant of spec/redis.md ("What a reader may rely on", *Keys*) for a store
/// nobody is writing to: schema and epoch; for every job in `<P>:jobs` and every run in its
/// `runs`: the complete `run:` hash, `records` equal to the records decoded from the chunks,
/// one chunk-index line per list element, `failed` ⊆ `runs` and exactly the failed and crashed
/// runs; and no other key under the prefix (no orphans of trimmed runs, no `stage:` leftovers).
pub fn check_consistent(conn: &mut Connection, prefix: &str) -> Result<Store, String> {
    check_store(&snapshot(conn, prefix), prefix, true)
}

/// [`check_consistent`] on a snapshot; `decode` decodes every chunk.
pub fn check_store(snap: &Snapshot, prefix: &str, decode: bool) -> Result<Store, String> {
    let mut store = Store::default();
    if snap.is_empty() {
        return Ok(store);
    }
    let key = |k: &str| format!("{prefix}:{k}").into_bytes();
    match snap.get(&key("schema")) {
        Some(Val {
            data: Data::Str(v),
            expires: false,
        }) if v == b"1" => {}
        other => return Err(format!("{prefix}:schema is {other:?}, not \"1\"")),
    }
    match snap.get(&key("epoch")) {
        Some(Val {
            data: Data::Str(v),
            expires: false,
        }) if v.len() == 32 && v.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            store.epoch = Some(s(v));
        }
        other => return Err(format!("{prefix}:epoch is {other:?}, not 32 hex digits")),
    }
    let mut allowed: BTreeSet<Vec<u8>> = [key("schema"), key("epoch"), key("jobs")].into();
    let jobs = match snap.get(&key("jobs")) {
        Some(v) => zset_pairs(v).map_err(|e| format!("{prefix}:jobs: {e}"))?,
        None => Vec::new(),
    };
    for (job, job_score) in jobs {
        let base = job_base(prefix, &job);
        let runs_key = format!("{base}runs").into_bytes();
        let failed_key = format!("{base}failed").into_bytes();
        allowed.insert(runs_key.clone());
        allowed.insert(failed_key.clone());
        let runs = match snap.get(&runs_key) {
            Some(v) => zset_pairs(v).map_err(|e| format!("{}: {e}", s(&runs_key)))?,
            None => Vec::new(),
        };
        let failed = match snap.get(&failed_key) {
            Some(v) => zset_pairs(v).map_err(|e| format!("{}: {e}", s(&failed_key)))?,
            None => Vec::new(),
        };
        let run_scores: BTreeMap<&str, i64> =
            runs.iter().map(|(m, sc)| (m.as_str(), *sc)).collect();
        for (f, sc) in &failed {
            if run_scores.get(f.as_str()) != Some(sc) {
                return Err(format!(
                    "job {job:?}: {f} is in `failed` (score {sc}) but not in `runs` with that score"
                ));
            }
        }
        let failed_set: BTreeSet<&str> = failed.iter().map(|(m, _)| m.as_str()).collect();
        let mut states = Vec::new();
        for (id, score) in &runs {
            if *score > job_score {
                return Err(format!(
                    "job {job:?}: run {id} starts at {score} ms, after the job's score {job_score} in {prefix}:jobs"
                ));
            }
            let meta_key = format!("{base}run:{id}").into_bytes();
            let log_key = format!("{base}log:{id}").into_bytes();
            allowed.insert(meta_key.clone());
            allowed.insert(log_key.clone());
            let meta: BTreeMap<String, String> = match snap.get(&meta_key) {
                Some(Val {
                    data: Data::Hash(h),
                    expires: false,
                }) => h.iter().map(|(k, v)| (s(k), s(v))).collect(),
                other => {
                    return Err(format!(
                        "job {job:?}: run {id} is in `runs` but run:<R> is {other:?}"
                    ))
                }
            };
            let chunks: Vec<Vec<u8>> = match snap.get(&log_key) {
                None => Vec::new(),
                Some(Val {
                    data: Data::List(l),
                    expires: false,
                }) => {
                    if l.is_empty() {
                        return Err(format!("job {job:?}: run {id}: empty log list"));
                    }
                    l.clone()
                }
                Some(other) => {
                    return Err(format!(
                        "job {job:?}: run {id}: log:<R> is {other:?}, not a list without expiry"
                    ))
                }
            };
            let records = check_run(&job, id, *score, &meta, &chunks, decode)?;
            let is_failed = matches!(
                meta.get("status").map(String::as_str),
                Some("failed" | "crashed")
            );
            if is_failed != failed_set.contains(id.as_str()) {
                return Err(format!(
                    "job {job:?}: run {id} has status {:?} but is {}in `failed`",
                    meta.get("status"),
                    if is_failed { "not " } else { "" }
                ));
            }
            states.push(RunState {
                id: id.clone(),
                score: *score,
                meta,
                records,
                chunks: chunks.len(),
            });
        }
        store.jobs.insert(job, (job_score, states));
    }
    for k in snap.keys() {
        if !allowed.contains(k) {
            let name = s(k);
            let what = if name.contains(":stage:") {
                "a leftover stage key"
            } else {
                "an orphan key (not the schema, epoch or jobs key, nor a key of a run in its job's `runs`)"
            };
            return Err(format!("{name} is {what}"));
        }
    }
    Ok(store)
}

// ---------------------------------------------------------------------------------------------
// Atomic reads while a shipper writes
// ---------------------------------------------------------------------------------------------

/// Reads one job at one instant (a script is atomic; this one only reads). KEYS: runs,
/// failed. ARGV: the key base `<P>:{<J>}:`, a glob for every key of the job.
const READ_JOB_LUA: &str = r#"
local runs = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local failed = redis.call('ZRANGE', KEYS[2], 0, -1)
local per = {}
for i = 1, #runs, 2 do
  local id = runs[i]
  per[#per + 1] = redis.call('HGETALL', ARGV[1] .. 'run:' .. id)
  per[#per + 1] = redis.call('LRANGE', ARGV[1] .. 'log:' .. id, 0, -1)
  per[#per + 1] = redis.call('PTTL', ARGV[1] .. 'log:' .. id)
end
local keys = redis.call('KEYS', ARGV[2])
return {runs, failed, per, keys}
"#;

/// One visible run as one atomic read saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewRun {
    /// `<R>`.
    pub id: String,
    /// Score (ms).
    pub score: i64,
    /// `run:<R>` fields (empty if the hash is missing).
    pub meta: BTreeMap<String, String>,
    /// `log:<R>` elements.
    pub chunks: Vec<Vec<u8>>,
    /// `log:<R>` has an expiry.
    pub log_expires: bool,
}

/// A job at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobView {
    /// The job.
    pub job: String,
    /// `runs`, oldest first.
    pub runs: Vec<ViewRun>,
    /// `failed` members.
    pub failed: Vec<String>,
    /// Every key of the job (`<P>:{<J>}:*`).
    pub keys: Vec<Vec<u8>>,
}

fn arr(v: &Value) -> Result<&[Value], String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!(
            "expected an array from the read script, got {other:?}"
        )),
    }
}

fn bytes(v: &Value) -> Result<Vec<u8>, String> {
    match v {
        Value::BulkString(b) => Ok(b.clone()),
        Value::SimpleString(t) => Ok(t.clone().into_bytes()),
        Value::Int(i) => Ok(i.to_string().into_bytes()),
        other => Err(format!(
            "expected a string from the read script, got {other:?}"
        )),
    }
}

/// Read one job's index, every visible run's metadata and chunks, and the names of all its
/// keys, in one `EVAL` (one instant).
pub fn read_job_atomically(
    conn: &mut Connection,
    prefix: &str,
    job: &str,
) -> Result<JobView, String> {
    let base = job_base(prefix, job);
    let v: Value = redis::cmd("EVAL")
        .arg(READ_JOB_LUA)
        .arg(2)
        .arg(format!("{base}runs"))
        .arg(format!("{base}failed"))
        .arg(&base)
        .arg(format!("{}*", glob_escape(&base)))
        .query(conn)
        .map_err(|e| format!("read script: {e}"))?;
    let top = arr(&v)?;
    if top.len() != 4 {
        return Err(format!("read script returned {} items", top.len()));
    }
    let runs = arr(&top[0])?;
    let per = arr(&top[2])?;
    let mut view = JobView {
        job: job.to_owned(),
        ..JobView::default()
    };
    for (i, pair) in runs.chunks(2).enumerate() {
        let [m, sc] = pair else {
            return Err("odd WITHSCORES reply".into());
        };
        let id = s(&bytes(m)?);
        let score: f64 = s(&bytes(sc)?).parse().map_err(|_| "bad score".to_owned())?;
        let flat = arr(per.get(3 * i).ok_or("short reply")?)?;
        let mut meta = BTreeMap::new();
        for kv in flat.chunks(2) {
            if let [k, v] = kv {
                meta.insert(s(&bytes(k)?), s(&bytes(v)?));
            }
        }
        let chunks = arr(per.get(3 * i + 1).ok_or("short reply")?)?
            .iter()
            .map(bytes)
            .collect::<Result<Vec<_>, _>>()?;
        let pttl = match per.get(3 * i + 2) {
            Some(Value::Int(t)) => *t,
            other => return Err(format!("PTTL reply {other:?}")),
        };
        view.runs.push(ViewRun {
            id,
            score: score as i64,
            meta,
            chunks,
            log_expires: pttl >= 0,
        });
    }
    view.failed = arr(&top[1])?
        .iter()
        .map(|v| bytes(v).map(|b| s(&b)))
        .collect::<Result<_, _>>()?;
    view.keys = arr(&top[3])?.iter().map(bytes).collect::<Result<_, _>>()?;
    view.keys.sort();
    Ok(view)
}

/// What a reader may rely on at any instant, for one job: every run in `runs` has its complete
/// metadata and chunks (when `full` holds the complete keys of every run — e.g. a snapshot of
/// a ship that trimmed nothing — each visible run must equal it byte for byte), `failed` ⊆
/// `runs`, at most `max-logs` ok and `max-failed-logs` failed or crashed runs (`limits`), and
/// no keys of the job besides `runs`, `failed`, the `run:`/`log:` keys of visible runs and
/// `stage:` keys.
pub fn check_view(
    view: &JobView,
    prefix: &str,
    limits: (usize, usize),
    full: Option<&Snapshot>,
) -> Result<(), String> {
    let job = &view.job;
    let base = job_base(prefix, job);
    let (max_ok, max_failed) = limits;
    if view.runs.len() > max_ok + max_failed {
        return Err(format!(
            "job {job:?}: {} runs visible, more than max-logs + max-failed-logs = {}",
            view.runs.len(),
            max_ok + max_failed
        ));
    }
    if view.failed.len() > max_failed {
        return Err(format!(
            "job {job:?}: {} failed runs visible, more than max-failed-logs = {max_failed}",
            view.failed.len()
        ));
    }
    if view.runs.len() - view.failed.len().min(view.runs.len()) > max_ok {
        return Err(format!(
            "job {job:?}: {} ok runs visible, more than max-logs = {max_ok}",
            view.runs.len() - view.failed.len()
        ));
    }
    let ids: BTreeSet<&str> = view.runs.iter().map(|r| r.id.as_str()).collect();
    for f in &view.failed {
        if !ids.contains(f.as_str()) {
            return Err(format!("job {job:?}: {f} is in `failed` but not in `runs`"));
        }
    }
    for r in &view.runs {
        if r.meta.is_empty() {
            return Err(format!(
                "job {job:?}: run {} is visible without its run:<R> hash (a partial run)",
                r.id
            ));
        }
        if r.log_expires {
            return Err(format!("job {job:?}: run {}: log:<R> still expires", r.id));
        }
        check_run(job, &r.id, r.score, &r.meta, &r.chunks, false)
            .map_err(|e| format!("partial or bad run visible: {e}"))?;
        let failed = matches!(
            r.meta.get("status").map(String::as_str),
            Some("failed" | "crashed")
        );
        if failed != view.failed.contains(&r.id) {
            return Err(format!(
                "job {job:?}: run {} ({:?}) and `failed` disagree",
                r.id,
                r.meta.get("status")
            ));
        }
        if let Some(full) = full {
            let meta_key = format!("{base}run:{}", r.id).into_bytes();
            let log_key = format!("{base}log:{}", r.id).into_bytes();
            let want_meta: Option<BTreeMap<String, String>> = match full.get(&meta_key) {
                Some(Val {
                    data: Data::Hash(h),
                    ..
                }) => Some(h.iter().map(|(k, v)| (s(k), s(v))).collect()),
                _ => None,
            };
            let Some(want_meta) = want_meta else {
                return Err(format!(
                    "job {job:?}: run {} is visible but no clean ship uploads it",
                    r.id
                ));
            };
            if want_meta != r.meta {
                return Err(format!(
                    "job {job:?}: run {} is visible with metadata {:?}, a clean ship writes {:?}",
                    r.id, r.meta, want_meta
                ));
            }
            let want_log = match full.get(&log_key) {
                Some(Val {
                    data: Data::List(l),
                    ..
                }) => l.clone(),
                _ => Vec::new(),
            };
            if want_log != r.chunks {
                return Err(format!(
                    "job {job:?}: run {} is visible with {} chunks ({} bytes), a clean ship writes {} ({} bytes)",
                    r.id,
                    r.chunks.len(),
                    r.chunks.iter().map(Vec::len).sum::<usize>(),
                    want_log.len(),
                    want_log.iter().map(Vec::len).sum::<usize>()
                ));
            }
        }
    }
    for k in &view.keys {
        let name = s(k);
        let Some(rest) = name.strip_prefix(&base) else {
            return Err(format!(
                "job {job:?}: key {name} matched but lacks the base"
            ));
        };
        let ok = match rest.split_once(':') {
            None => rest == "runs" || rest == "failed",
            Some(("run" | "log", id)) => ids.contains(id),
            Some(("stage", id)) => is_run_id(id.as_bytes()),
            Some(_) => false,
        };
        if !ok {
            return Err(format!(
                "job {job:?}: key {name} is an orphan (visible runs: {ids:?})"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Servers that are not (the right) Redis, for the diagnoses of a wrong setup
// ---------------------------------------------------------------------------------------------

/// A loopback TCP server on a free port that answers every connection with `answer(request
/// bytes so far)` until it returns `Some` reply and, with `close`, closes it. Stopped on drop.
pub struct FakeServer {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`FakeServer`] makes of the bytes a client sent so far: the reply to send and the
/// number of bytes it consumed (`None`: wait for more).
pub type Answer = fn(&[u8]) -> Option<(Vec<u8>, usize)>;

impl FakeServer {
    /// Start one; `close_after_reply`: close the connection after the first reply (as an HTTP
    /// server does after `400`).
    pub fn start(answer: Answer, close_after_reply: bool) -> FakeServer {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake server");
        let port = listener.local_addr().expect("its address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut got = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        while let Some((reply, used)) = answer(&got) {
                            if conn.write_all(&reply).is_err() {
                                return;
                            }
                            got.drain(..used.min(got.len()));
                            if close_after_reply {
                                return;
                            }
                        }
                        match conn.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        FakeServer {
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// An HTTP server: whatever comes, `HTTP/1.1 400 Bad Request`, then it closes.
    pub fn http() -> FakeServer {
        FakeServer::start(
            |got| {
                (!got.is_empty()).then(|| {
                    (
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec(),
                        got.len(),
                    )
                })
            },
            true,
        )
    }

    /// A server that speaks RESP as Redis 6.0.16 does, for the commands a runlog client sends
    /// first: `INFO` says `redis_version:6.0.16` and `HELLO 2` `version 6.0.16`, `GET` finds
    /// nothing, `ZRANGE` with `REV` or `BYSCORE` (new in 6.2) is a syntax error, `CLIENT
    /// SETINFO` (new in 7.2) is unknown.
    /// (No Redis older than 6.2 is installed here; this stands in for one.)
    pub fn redis_6_0() -> FakeServer {
        FakeServer::start(|got| old_redis_answer(got, "6.0.16"), false)
    }

    /// As [`FakeServer::redis_6_0`], for Redis 5.0.7, which does not know `HELLO` (new in 6.0).
    pub fn redis_5_0() -> FakeServer {
        FakeServer::start(|got| old_redis_answer(got, "5.0.7"), false)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How a Redis of `version` (before 6.2) answers the command at the start of `got`, and the
/// bytes it took; `None` until the command is whole.
fn old_redis_answer(got: &[u8], version: &str) -> Option<(Vec<u8>, usize)> {
    let (args, used) = parse_resp_command(got)?;
    let upper: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
        .collect();
    let knows_hello = !version.starts_with(['1', '2', '3', '4', '5']);
    let reply: Vec<u8> = match upper.first().map(String::as_str) {
        Some("PING") => b"+PONG\r\n".to_vec(),
        Some("INFO") => {
            let info = format!(
                "# Server\r\nredis_version:{version}\r\nredis_mode:standalone\r\n\
                 run_id:0123456789abcdef\r\n\r\n# Replication\r\nrole:master\r\n\
                 master_replid:fedcba9876543210\r\n\r\n# Memory\r\n\
                 maxmemory_policy:noeviction\r\n"
            );
            format!("${}\r\n{info}\r\n", info.len()).into_bytes()
        }
        Some("HELLO") if knows_hello => {
            let mut r = b"*14\r\n".to_vec();
            for v in [
                "server",
                "redis",
                "version",
                version,
                "proto",
                ":2",
                "id",
                ":7",
                "mode",
                "standalone",
                "role",
                "master",
                "modules",
                "*0",
            ] {
                if v.starts_with([':', '*']) {
                    r.extend_from_slice(format!("{v}\r\n").as_bytes());
                } else {
                    r.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
                }
            }
            r
        }
        Some("GET") => b"$-1\r\n".to_vec(),
        Some("SELECT") => b"+OK\r\n".to_vec(),
        Some("ZRANGE") if upper.iter().any(|a| a == "REV" || a == "BYSCORE") => {
            b"-ERR syntax error\r\n".to_vec()
        }
        Some("ZRANGE") => b"*0\r\n".to_vec(),
        Some("CLIENT") => b"-ERR Unknown subcommand or wrong number of arguments for 'SETINFO'. \
                            Try CLIENT HELP\r\n"
            .to_vec(),
        Some(c) => {
            format!("-ERR unknown command `{c}`, with args beginning with: \r\n").into_bytes()
        }
        None => b"-ERR empty command\r\n".to_vec(),
    };
    Some((reply, used))
}

/// One command of RESP (an array of bulk strings) at the start of `b`, and its length in
/// bytes; `None` until it is whole.
fn parse_resp_command(b: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    fn line(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let end = b.get(at..)?.windows(2).position(|w| w == b"\r\n")? + at;
        Some((&b[at..end], end + 2))
    }
    let (head, mut at) = line(b, 0)?;
    let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
        .ok()?
        .parse()
        .ok()?;
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        let (len, next) = line(b, at)?;
        let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
            .ok()?
            .parse()
            .ok()?;
        let data = b.get(next..next + len)?;
        if b.get(next + len..next + len + 2)? != b"\r\n" {
            return None;
        }
        args.push(data.to_vec());
        at = next + len + 2;
    }
    Some((args, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_cluster_spec_reference_values() {
        // From the Redis Cluster specification.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16_xmodem(b"foo{}{bar}") % 16384);
        assert_eq!(key_slot(b"foo{{bar}}zap"), crc16_xmodem(b"{bar") % 16384);
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    #[test]
    fn escape_follows_the_spec_example() {
        assert_eq!(
            spec_escape("nightly {eu} report"),
            "nightly%20%7Beu%7D%20report"
        );
        assert_eq!(
            job_base("runlog", "nightly {eu} report"),
            "runlog:{nightly%20%7Beu%7D%20report}:"
        );
        assert_eq!(spec_escape("a.b_c-D9"), "a.b_c-D9");
        assert_eq!(spec_escape("ü"), "%C3%BC");
    }

    #[test]
    fn index_parser_is_strict() {
        assert_eq!(spec_parse_index("").unwrap(), vec![]);
        assert_eq!(spec_parse_index("1 2 3\n").unwrap(), vec![(1, 2, 3)]);
        assert!(spec_parse_index("1 2 3").is_err());
        assert!(spec_parse_index("1 2\n").is_err());
        assert!(spec_parse_index("1  2 3\n").is_err());
    }
}
