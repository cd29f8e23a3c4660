//! The Redis side: connecting, the schema and epoch checks, and the atomic, idempotent upload
//! of prepared runs (`spec/redis.md`, *Upload*).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, Value};
use runlog::RedisConfig;

use crate::conn::{cluster_connection, Conn};
use crate::diagnose::{diagnose, diagnose_tls_failure, replica_of, too_old, Role};
use crate::prepare::PreparedRun;
use crate::schema::{Chunk, Keys, SCHEMA_VERSION, STAGE_TTL_MS};

/// By default a pipeline is sent once it holds this many bytes of chunk data
/// (`[runlog-shipper] pipeline-size`).
pub const PIPELINE_BYTES: usize = runlog::ShipperConfig::DEFAULT_PIPELINE_SIZE as usize;
/// One RPUSH carries at most this many bytes of chunks.
const RPUSH_BYTES: usize = 4 << 20;

/// The upload script. KEYS: runs, failed, run:<R>, log:<R>, stage:<R>. ARGV: run id, score
/// (start ms), 1 if failed or crashed, max-logs, max-failed-logs, chunk count, the job's key
/// base `<P>:{<J>}:`, then metadata field/value pairs.
const UPLOAD_LUA: &str = r#"
local runs, failed, meta, logk, stage = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, score, isfailed = ARGV[1], ARGV[2], ARGV[3] == '1'
local maxok, maxfailed, nchunks = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local base = ARGV[7]
if redis.call('ZSCORE', runs, id) then
  redis.call('DEL', stage)
  return 0
end
if nchunks > 0 then
  local have = redis.call('LLEN', stage)
  if have ~= nchunks then
    return redis.error_reply('RUNLOGSTAGE stage list of ' .. id .. ' holds ' .. have .. ' of ' .. nchunks .. ' chunks')
  end
  redis.call('RENAME', stage, logk)
  redis.call('PERSIST', logk)
else
  redis.call('DEL', stage, logk)
end
redis.call('DEL', meta)
-- HSET in batches: Lua's stack limits unpack.
local i = 8
while i <= #ARGV do
  local last = math.min(#ARGV, i + 399)
  redis.call('HSET', meta, unpack(ARGV, i, last))
  i = last + 1
end
redis.call('ZADD', runs, score, id)
if isfailed then redis.call('ZADD', failed, score, id) end
local function drop(rid)
  redis.call('DEL', base .. 'run:' .. rid, base .. 'log:' .. rid)
  redis.call('ZREM', runs, rid)
  redis.call('ZREM', failed, rid)
end
local nf = redis.call('ZCARD', failed)
if nf > maxfailed then
  for _, rid in ipairs(redis.call('ZRANGE', failed, 0, nf - maxfailed - 1)) do drop(rid) end
end
local excess = redis.call('ZCARD', runs) - redis.call('ZCARD', failed) - maxok
local at = 0
while excess > 0 do
  local batch = redis.call('ZRANGE', runs, at, at + 99)
  if #batch == 0 then break end
  for _, rid in ipairs(batch) do
    if excess > 0 and not redis.call('ZSCORE', failed, rid) then
      drop(rid)
      excess = excess - 1
    else
      at = at + 1
    end
  end
end
return 1
"#;

/// Why talking to Redis failed.
#[derive(Debug)]
pub enum UploadError {
    /// Connecting, a timeout, a dropped connection or a server error: retry later.
    Redis(redis::RedisError),
    /// Redis holds another schema version under our prefix: a configuration problem.
    Schema {
        /// The key.
        key: String,
        /// What it holds.
        found: String,
    },
    /// `<P>:epoch` changed: Redis lost its data; everything must be uploaded again.
    EpochChanged {
        /// The new epoch.
        epoch: String,
    },
    /// Bad configuration (TLS files, URL).
    Config(String),
    /// Fewer replicas than `[runlog-shipper] min-replicas-acked` acknowledged an upload
    /// (`WAIT`): its runs do not count as shipped and are uploaded again later. Retried like
    /// [`UploadError::Redis`].
    NotReplicated {
        /// Replicas that acknowledged.
        acked: i64,
        /// Replicas wanted.
        wanted: u32,
    },
    /// The TLS connection failed: the server's certificate was not trusted, the server
    /// refused ours (or wanted one), or the connection broke during the handshake. Retried
    /// like [`UploadError::Redis`].
    Tls {
        /// What failed.
        source: redis::RedisError,
        /// What was checked and presented, and what to set.
        hint: String,
    },
    /// The server refused this client for a reason its operator must fix (a password, an
    /// ACL rule, TLS on one side only, not Redis at all, a Redis too old, a replica): one line
    /// naming the server and the fix ([`crate::diagnose`]). Retried like
    /// [`UploadError::Redis`]: the server's side may be fixed while the shipper waits.
    Refused(String),
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UploadError::Redis(e) if is_no_perm(e) => write!(
                f,
                "{e}; the Redis user of [runlog-redis] needs the shipper's rules of \
                 spec/redis.md, \"Least privilege\""
            ),
            UploadError::Redis(e) => write!(f, "{e}"),
            UploadError::Schema { key, found } => write!(
                f,
                "Redis key {key} says runlog schema {found:?}, this shipper writes schema {SCHEMA_VERSION}; \
                 use another prefix ([runlog-redis] prefix) or upgrade the shipper"
            ),
            UploadError::EpochChanged { epoch } => {
                write!(f, "Redis lost its data (epoch is now {epoch})")
            }
            UploadError::Config(e) => f.write_str(e),
            UploadError::NotReplicated { acked, wanted } => write!(
                f,
                "only {acked} of the {wanted} replicas wanted ([runlog-shipper] \
                 min-replicas-acked) acknowledged the upload in time; its runs stay \
                 unconfirmed and are uploaded again"
            ),
            UploadError::Tls { source, hint } => {
                write!(f, "TLS connection failed: {source}; {hint}")
            }
            UploadError::Refused(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for UploadError {}

impl From<redis::RedisError> for UploadError {
    fn from(e: redis::RedisError) -> Self {
        UploadError::Redis(e)
    }
}

/// Connections a shipper uploads to a cluster with at once.
const CLUSTER_LANES: usize = 4;

/// `wanted` replicas or more acknowledged, by the reply of `WAIT`?
fn check_acked(reply: Option<&Value>, wanted: u32) -> Result<(), UploadError> {
    let acked = match reply {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    if acked < i64::from(wanted) {
        return Err(UploadError::NotReplicated { acked, wanted });
    }
    Ok(())
}

/// Send one pipeline of a job's commands (all in the job's slot) on a cluster connection;
/// with `wait`, its last command is `WAIT` and needs that many replicas.
fn send_job_pipeline(
    conn: &mut Conn,
    cmds: &[redis::Cmd],
    wait: Option<u32>,
) -> Result<(), UploadError> {
    let mut p = redis::pipe();
    for c in cmds {
        p.add_command(c.clone());
    }
    let replies = match conn.req_packed_commands(&p.get_packed_pipeline(), 0, p.len()) {
        Ok(r) => r,
        // The job's slot is being migrated: ASKING holds for one command, so a pipeline sent
        // after an ASK redirection bounces back (MOVED) until the migration ends. One command
        // at a time, each redirection is followed.
        // (Without MULTI and EXEC, which name no key: each command goes where its key is.)
        Err(e) if is_slot_moving(&e) => {
            let (multi, exec) = (
                redis::cmd("MULTI").get_packed_command(),
                redis::cmd("EXEC").get_packed_command(),
            );
            let mut replies = Vec::with_capacity(cmds.len());
            for c in cmds {
                let packed = c.get_packed_command();
                if packed == multi || packed == exec {
                    continue;
                }
                replies.push(conn.req_packed_command(&packed)?.extract_error()?);
            }
            replies
        }
        Err(e) => return Err(e.into()),
    };
    match wait {
        Some(n) => check_acked(replies.last(), n),
        None => Ok(()),
    }
}

/// A cluster redirection or a slot in migration (MOVED, ASK, TRYAGAIN) that the client's own
/// retries did not get past.
fn is_slot_moving(e: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved | ServerErrorKind::Ask | ServerErrorKind::TryAgain
        )
    )
}

/// Did Redis refuse a command to the ACL user (`NOPERM`)?
pub fn is_no_perm(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm)
}

/// Percent-encode for the user-info part of a URL.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The connection URL of a `[runlog-redis]` table (passwords included: never print it).
pub fn connection_url(c: &RedisConfig) -> String {
    if let Some(url) = &c.url {
        return url.clone();
    }
    let host = c.host.as_deref().unwrap_or("127.0.0.1");
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let auth = match (&c.username, &c.password) {
        (Some(u), Some(p)) => format!("{}:{}@", url_encode(u), url_encode(p)),
        (Some(u), None) => format!("{}@", url_encode(u)),
        (None, Some(p)) => format!(":{}@", url_encode(p)),
        (None, None) => String::new(),
    };
    format!(
        "redis://{auth}{host}:{}/{}",
        c.port.unwrap_or(6379),
        c.db.unwrap_or(0)
    )
}

/// Where Redis is, for messages: the URL without user info or query; for a cluster, "cluster"
/// and its seed nodes so.
pub fn describe(c: &RedisConfig) -> String {
    if !c.cluster.is_empty() {
        let nodes: Vec<String> = c.cluster.iter().map(|u| describe_url(u)).collect();
        return format!("cluster {}", nodes.join(","));
    }
    if !c.sentinels.is_empty() {
        let nodes: Vec<String> = c.sentinels.iter().map(|u| describe_url(u)).collect();
        return format!(
            "master {:?} of Sentinels {}",
            c.sentinel_master.as_deref().unwrap_or_default(),
            nodes.join(",")
        );
    }
    describe_url(&connection_url(c))
}

/// A URL without user info or query.
fn describe_url(url: &str) -> String {
    let url = url.to_owned();
    let Some(at) = url.find("://") else {
        return url;
    };
    let (scheme, rest) = url.split_at(at + 3);
    let rest = rest.split('?').next().unwrap_or(rest);
    let rest = match rest.find('@') {
        Some(i) if rest[..i].find('/').is_none() => &rest[i + 1..],
        _ => rest,
    };
    format!("{scheme}{rest}")
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct Target {
    /// The table.
    pub config: RedisConfig,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read/write timeout.
    pub io_timeout: Duration,
    /// PEM CA file for `rediss://`.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) and private key files for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Connect to a Redis that may evict any key (`[runlog-shipper] allow-eviction`); else
    /// [`Redis::connect`] refuses it ([`crate::eviction`]).
    pub allow_eviction: bool,
}

/// A connection to Redis, checked for schema and epoch.
pub struct Redis {
    conn: Conn,
    io_timeout: Duration,
    keys: Keys,
    sha: String,
    /// A pipeline is sent once it holds this many bytes of chunk data.
    pipeline_bytes: usize,
    /// Where it connected, to open more connections.
    target: Target,
    /// On a cluster: more connections, to upload to several masters at once.
    lanes: Vec<Conn>,
    /// Replicas that must acknowledge each pipeline (`WAIT`); 0: none.
    min_replicas: u32,
    /// The `run_id` of the server (`INFO server`), when it is one server: another one means a
    /// failover or a restart, after which writes it acknowledged may be gone.
    pub server_id: Option<String>,
    /// The epoch read at connect or at the last batch.
    pub epoch: String,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.keys.prefix())
            .field("epoch", &self.epoch)
            .finish()
    }
}

/// Which server, holding which data: `<run_id>:<master_replid>` from `INFO server
/// replication`. The run id changes when the process restarts; the replication id when a
/// replica is promoted, and when a master resyncs from another one (a failover and back). Only
/// letters and digits are kept in each part; `None` if either is missing.
pub fn server_id(info: &str) -> Option<String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .filter(|v| is_id_part(v))
    };
    Some(format!(
        "{}:{}",
        field("run_id:")?,
        field("master_replid:")?
    ))
}

/// One part of a [`server_id`]: 1 to 64 letters and digits.
fn is_id_part(v: &str) -> bool {
    !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `s` has the shape [`server_id`] gives (for ids read back from a file).
pub fn is_server_id(s: &str) -> bool {
    s.split_once(':')
        .is_some_and(|(a, b)| is_id_part(a) && is_id_part(b))
}

/// A fresh random token of 32 hex digits.
pub fn random_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for i in 0..2u64 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(i);
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn value_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The URL of the master the Sentinels of `[runlog-redis] sentinels` name `sentinel-master`
/// now, with the table's user, password and database (`rediss://` when the Sentinels' URLs
/// use TLS). Each Sentinel is asked in turn, with the connect and I/O timeouts (a dead or hung
/// one costs at most those); the user info of a Sentinel's URL authenticates to it.
fn sentinel_master_url(
    t: &Target,
    tls: bool,
    certs: Option<&redis::TlsCertificates>,
) -> Result<String, UploadError> {
    let name = t.config.sentinel_master.as_deref().unwrap_or_default();
    let mut why = Vec::new();
    for s in &t.config.sentinels {
        let ask = || -> redis::RedisResult<Option<(String, u16)>> {
            let client = match certs {
                Some(c) => redis::Client::build_with_tls(s.as_str(), c.clone())?,
                None => redis::Client::open(s.as_str())?,
            };
            let mut conn = client.get_connection_with_timeout(t.connect_timeout)?;
            conn.set_read_timeout(Some(t.io_timeout))?;
            conn.set_write_timeout(Some(t.io_timeout))?;
            redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(name)
                .query(&mut conn)
        };
        match ask() {
            Ok(Some((host, port))) => {
                let c = RedisConfig {
                    host: Some(host),
                    port: Some(port),
                    db: t.config.db,
                    username: t.config.username.clone(),
                    password: t.config.password.clone(),
                    ..RedisConfig::default()
                };
                let url = connection_url(&c);
                return Ok(if tls {
                    url.replacen("redis://", "rediss://", 1)
                } else {
                    url
                });
            }
            Ok(None) => why.push(format!("{}: does not know {name:?}", describe_url(s))),
            Err(e) => why.push(format!("{}: {e}", describe_url(s))),
        }
    }
    Err(UploadError::Redis(redis::RedisError::from(
        io::Error::other(format!(
            "no Sentinel told where master {name:?} is ({}); check [runlog-redis] sentinels and \
             sentinel-master",
            why.join("; ")
        )),
    )))
}

/// Does `url` ask for TLS?
pub(crate) fn is_tls_url(url: &str) -> bool {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    scheme.eq_ignore_ascii_case("rediss") || scheme.eq_ignore_ascii_case("valkeys")
}

/// The bytes of a PEM file of the `[runlog-redis]` table, checked to hold what `key` needs
/// (certificates, or a private key), or an error naming the file and the key.
fn read_pem(path: &Path, key: &str) -> Result<Vec<u8>, UploadError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |why: String| {
        UploadError::Config(format!(
            "TLS file {} ([runlog-redis] {key}) {why}",
            path.display()
        ))
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
    if key == "tls-key-file" {
        // The error never shows the file's contents.
        PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            bad(format!(
                "holds no usable PEM private key ({e}); expected the key of tls-cert-file \
                 (-----BEGIN PRIVATE KEY----- or an RSA or EC key), unencrypted"
            ))
        })?;
    } else {
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("holds a bad PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
    }
    Ok(pem)
}

/// What a failed TLS connection checked and presented, and what would change that.
fn tls_hint(t: &Target) -> String {
    let server = match &t.ca_file {
        Some(ca) => format!(
            "the server's certificate must be signed by a CA in {} ([runlog-redis] tls-ca-file)",
            ca.display()
        ),
        None => "the server's certificate must be signed by a CA the system trusts (for a \
                 private CA set [runlog-redis] tls-ca-file)"
            .to_owned(),
    };
    let client = match &t.client_cert {
        Some((cert, _)) => format!(
            "runlog presented the client certificate in {} ([runlog-redis] tls-cert-file), \
             which the server must trust",
            cert.display()
        ),
        None => "runlog presented no client certificate (a server with tls-auth-clients wants \
                 [runlog-redis] tls-cert-file and tls-key-file)"
            .to_owned(),
    };
    format!("{server}; {client}")
}

/// Open a connection with the target's timeouts (and its TLS files for `rediss://`),
/// checking nothing else: what readers such as the `runlog` CLI use.
///
/// The server's certificate is always verified: there is no way to turn that off (the config
/// refuses `#insecure`, and so does this, for a [`RedisConfig`] made in code; the redis
/// crate's `tls-rustls-insecure` feature is not enabled). A TLS connection that fails, or that
/// the server refuses (no client certificate, or one it does not trust, which TLS 1.3 reports
/// only after the handshake), is [`UploadError::Tls`], with what was checked and presented;
/// a TLS file that cannot be read or used is [`UploadError::Config`], naming the file and key.
///
/// A refusal with a known cause (see [`crate::diagnose`]) is [`UploadError::Refused`];
/// `role` says whose ACL rules a `NOPERM` refers to.
pub fn open_connection(t: &Target, role: Role) -> Result<Conn, UploadError> {
    let cluster = !t.config.cluster.is_empty();
    let sentinel = !t.config.sentinels.is_empty();
    let url = if cluster {
        t.config.cluster.join(" ")
    } else if sentinel {
        t.config.sentinels.join(" ")
    } else {
        connection_url(&t.config)
    };
    if url.contains('#') {
        return Err(UploadError::Config(format!(
            "the Redis URL {} has a fragment (`#...`); runlog always verifies the server's TLS \
             certificate and takes no fragment (`#insecure` would turn that off)",
            describe(&t.config)
        )));
    }
    if t.config.tls_cert_file.is_some() != t.config.tls_key_file.is_some() {
        return Err(UploadError::Config(
            "[runlog-redis] tls-cert-file and tls-key-file go together: set both (the PEM client \
             certificate and its private key) or neither"
                .to_owned(),
        ));
    }
    let tls = url.split(' ').any(is_tls_url);
    if !tls {
        let set = [
            ("tls-ca-file", t.ca_file.is_some()),
            ("tls-cert-file", t.client_cert.is_some()),
        ];
        if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
            return Err(UploadError::Config(format!(
                "[runlog-redis] {key} is set, but {} is not a TLS connection: use a \
                 rediss:// url (host/port/db fields always connect without TLS), or remove {key}",
                describe(&t.config)
            )));
        }
    }
    let root_cert = match &t.ca_file {
        Some(ca) => Some(read_pem(ca, "tls-ca-file")?),
        None => None,
    };
    let client_tls = match &t.client_cert {
        Some((cert, key)) => Some(redis::ClientTlsConfig {
            client_cert: read_pem(cert, "tls-cert-file")?,
            client_key: read_pem(key, "tls-key-file")?,
        }),
        None => None,
    };
    let in_tls = |e: redis::RedisError| {
        if tls && e.kind() == redis::ErrorKind::InvalidClientConfig {
            // Made when connecting, from the files: a key that is not the certificate's.
            let files = match &t.client_cert {
                Some((cert, key)) => format!(
                    "; tls-key-file {} must hold the private key of the certificate in \
                     tls-cert-file {}",
                    key.display(),
                    cert.display()
                ),
                None => String::new(),
            };
            UploadError::Config(format!(
                "the TLS settings of [runlog-redis] cannot be used: {e}{files}"
            ))
        } else if let Some(m) = diagnose(&describe(&t.config), &t.config, &e, role) {
            UploadError::Refused(m)
        } else if tls {
            match diagnose_tls_failure(&describe(&t.config), &t.config) {
                Some(m) => UploadError::Refused(m),
                None => UploadError::Tls {
                    source: e,
                    hint: tls_hint(t),
                },
            }
        } else {
            UploadError::Redis(e)
        }
    };
    let certs = (root_cert.is_some() || client_tls.is_some()).then_some(redis::TlsCertificates {
        client_tls,
        root_cert,
    });
    if cluster {
        let conn = cluster_connection(
            &t.config.cluster,
            t.config.username.as_deref(),
            t.config.password.as_deref(),
            certs,
            t.connect_timeout,
            t.io_timeout,
        )
        .map_err(in_tls)?;
        return Ok(Conn::Cluster(Box::new(conn)));
    }
    // With Sentinels: the master they name now (after a failover, the next connection goes
    // to the new one), checked below with ROLE.
    let url = if sentinel {
        sentinel_master_url(t, tls, certs.as_ref())?
    } else {
        url
    };
    let client = if let Some(certs) = certs {
        redis::Client::build_with_tls(url.as_str(), certs).map_err(|e| {
            UploadError::Config(format!(
                "the TLS files of [runlog-redis] (tls-ca-file, tls-cert-file, tls-key-file) \
                 cannot be used: {e}"
            ))
        })?
    } else {
        redis::Client::open(url.as_str())?
    };
    let mut conn = client
        .get_connection_with_timeout(t.connect_timeout)
        .map_err(in_tls)?;
    conn.set_read_timeout(Some(t.io_timeout))?;
    conn.set_write_timeout(Some(t.io_timeout))?;
    if tls {
        // The client's own setup commands already wait for a reply today; the PING makes sure
        // a refusal that TLS 1.3 sends after the handshake is met here whatever the client
        // sends on connect. Any reply, even an error such as NOAUTH, means TLS works.
        if let Err(e) = redis::cmd("PING").query::<Value>(&mut conn) {
            if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                return Err(in_tls(e));
            }
        }
    }
    if sentinel {
        let role: Vec<Value> = redis::cmd("ROLE").query(&mut conn)?;
        let role = role.first().and_then(value_string).unwrap_or_default();
        if role != "master" {
            return Err(UploadError::Redis(redis::RedisError::from(
                io::Error::other(format!(
                    "the Sentinels name {} as master {:?}, but it is a {role} (a failover is \
                     under way)",
                    describe_url(&url),
                    t.config.sentinel_master.as_deref().unwrap_or_default()
                )),
            )));
        }
    }
    Ok(Conn::Single(conn))
}

impl Target {
    /// The target of a `[runlog-redis]` table, with its timeouts and TLS files.
    pub fn from_config(rc: &RedisConfig) -> Target {
        Target {
            connect_timeout: rc.connect_timeout(),
            io_timeout: rc.io_timeout(),
            ca_file: rc.tls_ca_file.clone(),
            client_cert: rc.tls_cert_file.clone().zip(rc.tls_key_file.clone()),
            allow_eviction: false,
            config: rc.clone(),
        }
    }
}

impl Redis {
    /// Connect, check that Redis does not evict runs (unless `t.allow_eviction`), load the
    /// upload script, check the schema and read (or set) the epoch.
    ///
    /// A server it must not ship to for a known cause (too old, a replica, a password or a
    /// permission missing: [`crate::diagnose`]) is [`UploadError::Refused`], before anything
    /// is written.
    pub fn connect(t: &Target, keys: &Keys) -> Result<Redis, UploadError> {
        let mut conn = open_connection(t, Role::Shipper)?;
        let place = describe(&t.config);
        let refused = |e: redis::RedisError| match diagnose(&place, &t.config, &e, Role::Shipper) {
            Some(m) => UploadError::Refused(m),
            None => UploadError::Redis(e),
        };
        // Which server, its version and its role, before anything is written to it.
        let mut server = None;
        if !conn.is_cluster() {
            match redis::cmd("INFO")
                .arg("server")
                .arg("replication")
                .query::<String>(&mut conn)
            {
                Ok(info) => {
                    if let Some(m) = too_old(&place, &info).or_else(|| replica_of(&place, &info)) {
                        return Err(UploadError::Refused(m));
                    }
                    server = server_id(&info);
                }
                Err(e) if is_no_perm(&e) => log::warn!(
                    "the Redis user may not run INFO ({e}): a failover that loses acknowledged \
                     writes will not be noticed; allow +info (spec/redis.md, \"Least privilege\")"
                ),
                Err(e) => return Err(refused(e)),
            }
        }
        crate::eviction::check_eviction(&mut conn, &place, t.allow_eviction)?;
        let mut r = Redis {
            conn,
            io_timeout: t.io_timeout,
            keys: keys.clone(),
            sha: String::new(),
            pipeline_bytes: PIPELINE_BYTES,
            target: t.clone(),
            lanes: Vec::new(),
            min_replicas: 0,
            server_id: server,
            epoch: String::new(),
        };
        r.sha = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(UPLOAD_LUA)
            .query(&mut r.conn)
            .map_err(refused)?;
        let schema_key = keys.schema();
        let v: Vec<Value> = r
            .conn
            .query_pipe(
                redis::pipe()
                    .cmd("SET")
                    .arg(&schema_key)
                    .arg(SCHEMA_VERSION)
                    .arg("NX")
                    .cmd("GET")
                    .arg(&schema_key),
            )
            .map_err(refused)?;
        let found = v.get(1).and_then(value_string);
        if found.as_deref() != Some(SCHEMA_VERSION) {
            return Err(UploadError::Schema {
                key: schema_key,
                found: found.unwrap_or_default(),
            });
        }
        r.epoch = r.current_epoch()?;
        Ok(r)
    }

    /// `<P>:epoch`, set to a new random token first if it is missing.
    pub fn current_epoch(&mut self) -> Result<String, UploadError> {
        let key = self.keys.epoch();
        let v: Vec<Value> = self.conn.query_pipe(
            redis::pipe()
                .cmd("SET")
                .arg(&key)
                .arg(random_token())
                .arg("NX")
                .cmd("GET")
                .arg(&key),
        )?;
        let epoch = v
            .get(1)
            .and_then(value_string)
            .ok_or_else(|| UploadError::Config(format!("Redis key {key} is not a string")))?;
        // It goes into every job's `.shipped` file: an epoch crafted or damaged in Redis would
        // make every upload unrecordable (and repeated forever).
        if !runlog::journal::shipped::is_epoch(&epoch) {
            let shown: String = epoch.chars().take(80).collect();
            return Err(UploadError::Config(format!(
                "Redis key {key} holds {shown:?} ({} bytes), which is not an epoch (1 to 64 \
                 letters and digits, spec/redis.md); delete it (`DEL {key}`) and a shipper sets \
                 a new one (every run still in the journals is then uploaded again)",
                epoch.len()
            )));
        }
        Ok(epoch)
    }

    /// Send a pipeline once it holds `bytes` bytes of chunk data (at least 1; the default is
    /// [`PIPELINE_BYTES`]): fewer round trips, or less memory and smaller replies to wait for.
    pub fn set_pipeline_bytes(&mut self, bytes: usize) {
        self.pipeline_bytes = bytes.max(1);
    }

    /// Wait after each pipeline until `n` replicas acknowledged its writes (`WAIT`, at most
    /// `io-timeout`); fewer is [`UploadError::NotReplicated`]. 0: do not wait.
    pub fn set_min_replicas_acked(&mut self, n: u32) {
        self.min_replicas = n;
    }

    /// `WAIT <n> <half the io-timeout, in ms, at least 1>`, when replicas are waited for:
    /// WAIT answers within its timeout, so the reply arrives before the read times out (a
    /// timeout of 0 would wait forever).
    fn wait_cmd(&self) -> Option<redis::Cmd> {
        (self.min_replicas > 0).then(|| {
            let ms = u64::try_from(self.io_timeout.as_millis() / 2).unwrap_or(u64::MAX);
            let mut c = redis::cmd("WAIT");
            c.arg(self.min_replicas).arg(ms.max(1));
            c
        })
    }

    /// Upload prepared runs in as few round trips as the pipeline size allows. Each run is
    /// made visible by the upload script, atomically; `limits(job)` gives `(max-logs,
    /// max-failed-logs)`. Every pipeline first re-reads the epoch: when it changed, the
    /// uploads of that pipeline still happened (they are idempotent), but the caller must
    /// start over with the new epoch ([`UploadError::EpochChanged`]).
    pub fn upload(
        &mut self,
        runs: &[PreparedRun],
        limits: &dyn Fn(&str) -> (usize, usize),
    ) -> Result<(), UploadError> {
        if self.conn.is_cluster() {
            return self.upload_to_cluster(runs, limits);
        }
        let mut pipe = Pipeline::new(self.keys.epoch());
        for run in runs {
            for (unit, bytes) in self.run_commands(run, limits) {
                for cmd in unit {
                    pipe.p.add_command(cmd).ignore();
                }
                pipe.bytes += bytes;
                if pipe.bytes >= self.pipeline_bytes {
                    self.send(&mut pipe)?;
                }
            }
            pipe.p.add_command(self.jobs_zadd(run)).ignore();
        }
        self.send(&mut pipe)
    }

    /// Steps 1 to 3 of an upload (spec/redis.md): the commands that stage a run's chunks and
    /// make it visible, with the bytes of chunk data each carries. All address keys of the
    /// run's job, so on a cluster they go to one node. A run whose first chunks were staged
    /// already ([`PreparedRun::staged`], [`Redis::stage`]) gets its remaining chunks and the
    /// script, which checks the stage list holds them all.
    ///
    /// Returned as units that go into one pipeline whole (see [`Redis::stage_commands`]).
    fn run_commands(
        &self,
        run: &PreparedRun,
        limits: &dyn Fn(&str) -> (usize, usize),
    ) -> Vec<(Vec<redis::Cmd>, usize)> {
        let jk = self.keys.job(&run.job);
        let stage = jk.stage(&run.id);
        let mut out = self.stage_commands(&run.job, &run.id, &run.chunks, run.staged == 0);
        let (max_ok, max_failed) = limits(&run.job);
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(&self.sha)
            .arg(5)
            .arg(jk.runs())
            .arg(jk.failed())
            .arg(jk.run(&run.id))
            .arg(jk.log(&run.id))
            .arg(&stage)
            .arg(&run.id)
            .arg(run.start_ms)
            .arg(if run.is_failed() { "1" } else { "0" })
            .arg(max_ok)
            .arg(max_failed)
            .arg(run.chunk_count())
            .arg(jk.base());
        for (k, v) in &run.meta {
            cmd.arg(k).arg(v);
        }
        out.push((vec![cmd], 0));
        out
    }

    /// Steps 1 and 2 of an upload for some of a run's chunks, in order, with the bytes of chunk
    /// data each unit carries: with `first`, the stage list is emptied and created with its
    /// expiry in one transaction (`MULTI`, `DEL`, the first `RPUSH`, `PEXPIRE`, `EXEC`), so
    /// that a shipper killed while sending (the rest of a pipeline never written to the
    /// socket) cannot leave a stage list without expiry; later chunks are appended, and the
    /// expiry is set again after the last `RPUSH` (an upload streamed over many pipelines
    /// never outlives it).
    fn stage_commands(
        &self,
        job: &str,
        id: &str,
        chunks: &[Chunk],
        first: bool,
    ) -> Vec<(Vec<redis::Cmd>, usize)> {
        let stage = self.keys.job(job).stage(id);
        let mut out: Vec<(Vec<redis::Cmd>, usize)> = Vec::new();
        if first {
            let mut del = redis::cmd("DEL");
            del.arg(&stage);
            out.push((vec![del], 0));
        }
        let mut i = 0;
        let mut first = first;
        while i < chunks.len() {
            // Only the first push creates the list (with its expiry, below); later pushes, of
            // this pipeline or of later pieces of a streamed run, never do: one evicted
            // meanwhile (a volatile-* maxmemory-policy) stays gone, the upload script finds it
            // short, and no stage list is left without its expiry.
            let mut cmd = redis::cmd(if first { "RPUSH" } else { "RPUSHX" });
            cmd.arg(&stage);
            let mut bytes = 0;
            while i < chunks.len()
                && (bytes == 0
                    || bytes + chunks[i].data.len() <= RPUSH_BYTES.min(self.pipeline_bytes))
            {
                cmd.arg(&chunks[i].data);
                bytes += chunks[i].data.len();
                i += 1;
            }
            let mut exp = redis::cmd("PEXPIRE");
            exp.arg(&stage).arg(STAGE_TTL_MS);
            if first {
                // Created with its expiry at once: a shipper killed while later chunks are on
                // their way must not leave it behind for good (RPUSH keeps the expiry).
                let Some((unit, _)) = out.pop() else { break };
                let mut tx = vec![redis::cmd("MULTI")];
                tx.extend(unit);
                tx.extend([cmd, exp, redis::cmd("EXEC")]);
                out.push((tx, bytes));
                first = false;
            } else if i == chunks.len() {
                out.push((vec![cmd, exp], bytes));
            } else {
                out.push((vec![cmd], bytes));
            }
        }
        out
    }

    /// Push the next chunks of a run that is still being read to its stage list, in a
    /// pipeline of their own (steps 1 and 2 of an upload; `first` for its first chunks): a run
    /// of any size is uploaded a pipeline at a time, and made visible, whole, by the upload
    /// script at the end ([`Redis::upload`] of the [`PreparedRun`] with its remaining
    /// chunks). Until then nothing of it is visible; a shipper that stops before leaves a
    /// stage list that expires.
    pub fn stage(
        &mut self,
        job: &str,
        id: &str,
        chunks: &[Chunk],
        first: bool,
    ) -> Result<(), UploadError> {
        let units = self.stage_commands(job, id, chunks, first);
        self.send_job_commands(units)
    }

    /// Delete the stage list of a run that will not be uploaded now (it changed, or could not
    /// be read, after its first chunks were staged), rather than leave it to expire.
    pub fn discard_stage(&mut self, job: &str, id: &str) -> Result<(), UploadError> {
        let mut del = redis::cmd("DEL");
        del.arg(self.keys.job(job).stage(id));
        self.send_job_commands(vec![(vec![del], 0)])
    }

    /// Send commands on the keys of one job in one pipeline: on one server after the epoch
    /// check, as [`Redis::upload`] does; on a cluster to the job's node, following
    /// redirections.
    fn send_job_commands(
        &mut self,
        units: Vec<(Vec<redis::Cmd>, usize)>,
    ) -> Result<(), UploadError> {
        if self.conn.is_cluster() {
            let cmds: Vec<redis::Cmd> = units.into_iter().flat_map(|(u, _)| u).collect();
            let wait = self.wait_cmd();
            let mut cmds = cmds;
            if let Some(w) = &wait {
                cmds.push(w.clone());
            }
            return send_job_pipeline(
                &mut self.conn,
                &cmds,
                wait.is_some().then_some(self.min_replicas),
            );
        }
        let mut pipe = Pipeline::new(self.keys.epoch());
        for (unit, bytes) in units {
            for cmd in unit {
                pipe.p.add_command(cmd).ignore();
            }
            pipe.bytes += bytes;
        }
        self.send(&mut pipe)
    }

    /// A pipeline is sent once it holds this many bytes of chunk data (`pipeline-size`).
    pub fn pipeline_bytes(&self) -> usize {
        self.pipeline_bytes
    }

    /// Step 4: `ZADD <P>:jobs GT <start_ms> <job>`.
    fn jobs_zadd(&self, run: &PreparedRun) -> redis::Cmd {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.jobs())
            .arg("GT")
            .arg(run.start_ms)
            .arg(&run.job);
        cmd
    }

    /// [`Redis::upload`] on a cluster: the epoch is read before and after; each job's runs go
    /// in pipelines of their own to the node of the job's slot (following MOVED and ASK: the
    /// commands are idempotent, so a pipeline sent again after a redirection changes nothing
    /// it already did); then the jobs index, whose key is in another slot.
    fn upload_to_cluster(
        &mut self,
        runs: &[PreparedRun],
        limits: &dyn Fn(&str) -> (usize, usize),
    ) -> Result<(), UploadError> {
        self.check_epoch()?;
        // Each job's pipelines, in order; the jobs spread over several connections that send
        // at once (each job's slot is on one master, and the masters work in parallel).
        let wait = self.wait_cmd();
        // Runs come oldest first, jobs interleaved: each job's runs are gathered (in their
        // order) into pipelines of up to `pipeline-size` bytes.
        let mut jobs: Vec<(&str, Vec<Vec<redis::Cmd>>)> = Vec::new();
        let mut open: std::collections::HashMap<&str, (usize, usize)> = Default::default();
        for run in runs {
            let (n, bytes) = *open.entry(run.job.as_str()).or_insert_with(|| {
                jobs.push((run.job.as_str(), vec![Vec::new()]));
                (jobs.len() - 1, 0)
            });
            let pipelines = &mut jobs[n].1;
            if bytes >= self.pipeline_bytes {
                pipelines.push(Vec::new());
                open.insert(run.job.as_str(), (n, 0));
            }
            let mut added = 0;
            for (unit, b) in self.run_commands(run, limits) {
                if let Some(p) = pipelines.last_mut() {
                    p.extend(unit);
                }
                added += b;
            }
            if let Some(e) = open.get_mut(run.job.as_str()) {
                e.1 += added;
            }
        }
        if let Some(w) = &wait {
            // Last in each pipeline, to the same node: it waits for that master's replicas.
            for (_, pipelines) in &mut jobs {
                for p in pipelines {
                    p.push(w.clone());
                }
            }
        }
        let lanes = jobs.len().clamp(1, CLUSTER_LANES);
        while self.lanes.len() + 1 < lanes {
            self.lanes
                .push(open_connection(&self.target, Role::Shipper)?);
        }
        let wanted = self.min_replicas;
        let waits = wait.is_some();
        let mut conns: Vec<&mut Conn> = std::iter::once(&mut self.conn)
            .chain(self.lanes.iter_mut())
            .take(lanes)
            .collect();
        let results: Vec<Result<(), UploadError>> = std::thread::scope(|sc| {
            let handles: Vec<_> = conns
                .iter_mut()
                .enumerate()
                .map(|(lane, conn)| {
                    let mine: Vec<&Vec<Vec<redis::Cmd>>> = jobs
                        .iter()
                        .enumerate()
                        .filter(|(n, _)| n % lanes == lane)
                        .map(|(_, (_, p))| p)
                        .collect();
                    sc.spawn(move || {
                        for pipelines in mine {
                            for cmds in pipelines {
                                send_job_pipeline(conn, cmds, waits.then_some(wanted))?;
                            }
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(UploadError::Config(
                            "internal: an upload thread panicked".into(),
                        ))
                    })
                })
                .collect()
        });
        for r in results {
            r?;
        }
        if !runs.is_empty() {
            // One key, so one node: one pipeline, waited for like the runs.
            let mut z = redis::pipe();
            for run in runs {
                z.add_command(self.jobs_zadd(run));
            }
            let wait = self.wait_cmd();
            if let Some(w) = &wait {
                z.add_command(w.clone());
            }
            let replies = self
                .conn
                .req_packed_commands(&z.get_packed_pipeline(), 0, z.len())?;
            if wait.is_some() {
                check_acked(replies.last(), self.min_replicas)?;
            }
        }
        self.check_epoch()
    }

    /// `UploadError::EpochChanged` if `<P>:epoch` is no longer the epoch read before.
    fn check_epoch(&mut self) -> Result<(), UploadError> {
        let epoch: Option<String> = redis::cmd("GET")
            .arg(self.keys.epoch())
            .query(&mut self.conn)?;
        self.same_epoch(epoch.as_deref().unwrap_or_default())
    }

    /// `UploadError::EpochChanged` (with the epoch now set) if `seen` is not the epoch read
    /// before.
    fn same_epoch(&mut self, seen: &str) -> Result<(), UploadError> {
        if seen != self.epoch {
            let new = self.current_epoch()?;
            self.epoch = new.clone();
            return Err(UploadError::EpochChanged { epoch: new });
        }
        Ok(())
    }

    fn send(&mut self, pipe: &mut Pipeline) -> Result<(), UploadError> {
        let mut p = std::mem::replace(pipe, Pipeline::new(self.keys.epoch()));
        if p.is_empty() {
            return Ok(());
        }
        let wait = self.wait_cmd();
        if let Some(w) = &wait {
            p.p.add_command(w.clone());
        }
        // The replies are read here, not by `Pipeline::query`: that would wait `io-timeout`
        // for every reply of a hung server in turn. The whole pipeline gets one deadline, and
        // the first error ends it (the caller drops the connection).
        let io_timeout = self.io_timeout;
        // `WAIT` may take half an io-timeout on top.
        let allowed = io_timeout
            + if wait.is_some() {
                io_timeout / 2
            } else {
                Duration::ZERO
            };
        let Some(conn) = self.conn.single() else {
            return Err(UploadError::Config(
                "internal: a single-server pipeline on a cluster connection".into(),
            ));
        };
        conn.set_write_timeout(Some(io_timeout))?;
        conn.send_packed_command(&p.p.get_packed_pipeline())?;
        let deadline = Instant::now() + allowed;
        let mut epoch = String::new();
        let mut last = None;
        for i in 0..p.p.cmd_iter().count() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(UploadError::Redis(redis::RedisError::from(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply within io-timeout {io_timeout:?}"),
                ))));
            }
            conn.set_read_timeout(Some(left))?;
            let v = conn.recv_response()?.extract_error()?;
            if i == 0 {
                epoch = value_string(&v).unwrap_or_default();
            }
            last = Some(v);
        }
        if wait.is_some() {
            check_acked(last.as_ref(), self.min_replicas)?;
        }
        self.same_epoch(&epoch)
    }

    /// A command on this connection (tests and tools).
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }
}

/// A pipeline that starts with `GET <P>:epoch`.
struct Pipeline {
    p: redis::Pipeline,
    bytes: usize,
}

impl Pipeline {
    fn new(epoch_key: String) -> Pipeline {
        let mut p = redis::pipe();
        p.cmd("GET").arg(epoch_key);
        Pipeline { p, bytes: 0 }
    }

    /// Nothing but the epoch check.
    fn is_empty(&self) -> bool {
        self.p.cmd_iter().count() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_id_is_the_run_id_and_the_replication_id() {
        let info = "# Server\r\nredis_version:7.0.15\r\nrun_id:abc123\r\n\r\n# Replication\r\n\
                    role:master\r\nmaster_replid:def456\r\nmaster_replid2:000\r\n";
        assert_eq!(server_id(info).as_deref(), Some("abc123:def456"));
        // A part missing, or not letters and digits: unknown.
        assert_eq!(server_id("run_id:abc\r\n"), None);
        assert_eq!(server_id("run_id:a b\r\nmaster_replid:x\r\n"), None);
        assert_eq!(server_id(""), None);
    }

    fn target(url: &str, f: impl FnOnce(&mut RedisConfig)) -> Target {
        let mut c = RedisConfig {
            url: Some(url.to_owned()),
            connect_timeout: Some(Duration::from_millis(200)),
            ..RedisConfig::default()
        };
        f(&mut c);
        Target::from_config(&c)
    }

    /// The refusal for `t`: a config error (nothing is tried on the network).
    fn refused(t: &Target) -> String {
        match open_connection(t, Role::Shipper) {
            Err(UploadError::Config(m)) => m,
            Err(e) => panic!("expected a config error, got {e:?}"),
            Ok(_) => panic!("connected"),
        }
    }

    #[test]
    fn a_url_fragment_is_refused_even_from_code_so_verification_stays_on() {
        // 192.0.2.1 (TEST-NET-1) is never reached: the refusal comes first.
        let m = refused(&target("rediss://u:pw@192.0.2.1:6380/0#insecure", |_| {}));
        assert!(
            m.contains("always verifies") && m.contains("rediss://192.0.2.1:6380/0"),
            "{m}"
        );
        assert!(!m.contains("pw"), "{m}");
    }

    #[test]
    fn tls_files_without_tls_or_a_certificate_without_its_key_are_refused() {
        let m = refused(&target("redis://192.0.2.1:6379/0", |c| {
            c.tls_ca_file = Some("/ca.pem".into());
        }));
        assert!(
            m.contains("tls-ca-file is set") && m.contains("rediss://"),
            "{m}"
        );
        let m = refused(&target("redis://192.0.2.1:6379/0", |c| {
            c.tls_cert_file = Some("/c.pem".into());
            c.tls_key_file = Some("/k.pem".into());
        }));
        assert!(m.contains("tls-cert-file is set"), "{m}");
        let m = refused(&target("rediss://192.0.2.1:6379/0", |c| {
            c.tls_cert_file = Some("/c.pem".into());
        }));
        assert!(m.contains("go together"), "{m}");
    }

    #[test]
    fn an_unreadable_or_wrong_tls_file_is_refused_naming_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not PEM at all\n").unwrap();
        // PEM, though not a real certificate: enough to get to the key.
        let pem = dir.path().join("cert.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let m = refused(&target("rediss://192.0.2.1:6380/0", |c| {
            c.tls_ca_file = Some(missing.clone());
        }));
        assert!(
            m.contains(&*missing.to_string_lossy())
                && m.contains("[runlog-redis] tls-ca-file")
                && m.contains("cannot be read"),
            "{m}"
        );
        for key in ["tls-ca-file", "tls-cert-file", "tls-key-file"] {
            let m = refused(&target("rediss://192.0.2.1:6380/0", |c| {
                let (ca, cert, k) = match key {
                    "tls-ca-file" => (Some(junk.clone()), None, None),
                    "tls-cert-file" => (None, Some(junk.clone()), Some(junk.clone())),
                    _ => (None, Some(pem.clone()), Some(junk.clone())),
                };
                c.tls_ca_file = ca;
                c.tls_cert_file = cert;
                c.tls_key_file = k;
            }));
            assert!(
                m.contains(&*junk.to_string_lossy())
                    && m.contains(&format!("] {key})"))
                    && m.contains("holds no"),
                "{key}: {m}"
            );
        }
    }
}
