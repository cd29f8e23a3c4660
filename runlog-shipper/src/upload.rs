//! The Redis side: connecting, the schema and epoch checks, and the atomic, idempotent upload
//! of prepared runs (`spec/redis.md`, *Upload*).

use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use redis::{Connection, Value};
use runlog::RedisConfig;

use crate::prepare::PreparedRun;
use crate::schema::{Keys, SCHEMA_VERSION, STAGE_TTL_MS};

/// A pipeline is sent once it holds this many bytes of chunk data.
pub const PIPELINE_BYTES: usize = 8 << 20;
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
    /// Bad configuration (TLS CA file, URL).
    Config(String),
}

impl fmt::Display for UploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
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
        }
    }
}

impl std::error::Error for UploadError {}

impl From<redis::RedisError> for UploadError {
    fn from(e: redis::RedisError) -> Self {
        UploadError::Redis(e)
    }
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

/// Where Redis is, for messages: the URL without user info or query.
pub fn describe(c: &RedisConfig) -> String {
    let url = connection_url(c);
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
    pub ca_file: Option<std::path::PathBuf>,
}

/// A connection to Redis, checked for schema and epoch.
pub struct Redis {
    conn: Connection,
    io_timeout: Duration,
    keys: Keys,
    sha: String,
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

impl Redis {
    /// Connect, load the upload script, check the schema and read (or set) the epoch.
    pub fn connect(t: &Target, keys: &Keys) -> Result<Redis, UploadError> {
        let url = connection_url(&t.config);
        let client = match &t.ca_file {
            Some(ca) => {
                let pem = std::fs::read(ca).map_err(|e| {
                    UploadError::Config(format!(
                        "TLS CA file {} ([runlog-redis] tls-ca-file) cannot be read: {e}",
                        ca.display()
                    ))
                })?;
                redis::Client::build_with_tls(
                    url.as_str(),
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )?
            }
            None => redis::Client::open(url.as_str())?,
        };
        let conn = client.get_connection_with_timeout(t.connect_timeout)?;
        conn.set_read_timeout(Some(t.io_timeout))?;
        conn.set_write_timeout(Some(t.io_timeout))?;
        let mut r = Redis {
            conn,
            io_timeout: t.io_timeout,
            keys: keys.clone(),
            sha: String::new(),
            epoch: String::new(),
        };
        r.sha = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(UPLOAD_LUA)
            .query(&mut r.conn)?;
        let schema_key = keys.schema();
        let v: Vec<Value> = redis::pipe()
            .cmd("SET")
            .arg(&schema_key)
            .arg(SCHEMA_VERSION)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&schema_key)
            .query(&mut r.conn)?;
        let found = v.first().and_then(value_string);
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
        let v: Vec<Value> = redis::pipe()
            .cmd("SET")
            .arg(&key)
            .arg(random_token())
            .arg("NX")
            .cmd("GET")
            .arg(&key)
            .query(&mut self.conn)?;
        v.get(1)
            .and_then(value_string)
            .ok_or_else(|| UploadError::Config(format!("Redis key {key} is not a string")))
    }

    /// Upload prepared runs in as few round trips as [`PIPELINE_BYTES`] allows. Each run is
    /// made visible by the upload script, atomically; `limits(job)` gives `(max-logs,
    /// max-failed-logs)`. Every pipeline first re-reads the epoch: when it changed, the
    /// uploads of that pipeline still happened (they are idempotent), but the caller must
    /// start over with the new epoch ([`UploadError::EpochChanged`]).
    pub fn upload(
        &mut self,
        runs: &[PreparedRun],
        limits: &dyn Fn(&str) -> (usize, usize),
    ) -> Result<(), UploadError> {
        let mut pipe = Pipeline::new(self.keys.epoch());
        for run in runs {
            let jk = self.keys.job(&run.job);
            let stage = jk.stage(&run.id);
            pipe.p.cmd("DEL").arg(&stage).ignore();
            let mut i = 0;
            let mut first = true;
            while i < run.chunks.len() {
                let mut cmd = redis::cmd("RPUSH");
                cmd.arg(&stage);
                let mut bytes = 0;
                while i < run.chunks.len()
                    && (bytes == 0 || bytes + run.chunks[i].data.len() <= RPUSH_BYTES)
                {
                    cmd.arg(&run.chunks[i].data);
                    bytes += run.chunks[i].data.len();
                    i += 1;
                }
                pipe.p.add_command(cmd).ignore();
                if first {
                    // Expire the stage at once: a shipper killed while later chunks are on
                    // their way must not leave it behind for good (RPUSH keeps the expiry).
                    pipe.p.cmd("PEXPIRE").arg(&stage).arg(STAGE_TTL_MS).ignore();
                    first = false;
                }
                pipe.bytes += bytes;
                if pipe.bytes >= PIPELINE_BYTES && i < run.chunks.len() {
                    self.send(&mut pipe)?;
                }
            }
            if !run.chunks.is_empty() {
                pipe.p.cmd("PEXPIRE").arg(&stage).arg(STAGE_TTL_MS).ignore();
            }
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
                .arg(run.chunks.len())
                .arg(jk.base());
            for (k, v) in &run.meta {
                cmd.arg(k).arg(v);
            }
            pipe.p.add_command(cmd).ignore();
            pipe.p
                .cmd("ZADD")
                .arg(self.keys.jobs())
                .arg("GT")
                .arg(run.start_ms)
                .arg(&run.job)
                .ignore();
            if pipe.bytes >= PIPELINE_BYTES {
                self.send(&mut pipe)?;
            }
        }
        self.send(&mut pipe)
    }

    fn send(&mut self, pipe: &mut Pipeline) -> Result<(), UploadError> {
        let p = std::mem::replace(pipe, Pipeline::new(self.keys.epoch()));
        if p.is_empty() {
            return Ok(());
        }
        // The replies are read here, not by `Pipeline::query`: that would wait `io-timeout`
        // for every reply of a hung server in turn. The whole pipeline gets one deadline, and
        // the first error ends it (the caller drops the connection).
        self.conn.set_write_timeout(Some(self.io_timeout))?;
        self.conn.send_packed_command(&p.p.get_packed_pipeline())?;
        let deadline = Instant::now() + self.io_timeout;
        let mut epoch = String::new();
        for i in 0..p.p.cmd_iter().count() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(UploadError::Redis(redis::RedisError::from(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply within io-timeout {:?}", self.io_timeout),
                ))));
            }
            self.conn.set_read_timeout(Some(left))?;
            let v = self.conn.recv_response()?.extract_error()?;
            if i == 0 {
                epoch = value_string(&v).unwrap_or_default();
            }
        }
        if epoch != self.epoch {
            let new = self.current_epoch()?;
            self.epoch = new.clone();
            return Err(UploadError::EpochChanged { epoch: new });
        }
        Ok(())
    }

    /// A command on this connection (tests and tools).
    pub fn conn(&mut self) -> &mut Connection {
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
