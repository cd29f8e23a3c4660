//! Reading runs from Redis, as `spec/redis.md` lays them out (schema 1).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;

use redis::Value;
use runlog::journal::layout::is_run_id;
use runlog::journal::payload::RecordRef;
use runlog::{Problem, RedisConfig, RunInfo, RunStatus};
use runlog_shipper::conn::Conn;
use runlog_shipper::diagnose::{
    diagnose, parse_version, too_old, too_old_version, Role, MIN_VERSION,
};
use runlog_shipper::schema::{
    decode_raw_chunk_refs, decompress_chunk, parse_chunk_index, ChunkError, IndexEntry, JobKeys,
    Keys, SCHEMA_VERSION,
};
use runlog_shipper::upload::{describe, is_no_perm, open_connection, Target, UploadError};

use crate::when::Range;

/// Chunks fetched per round trip (each at most ~64 KiB before compression).
const CHUNKS_PER_FETCH: usize = 64;

/// A run as Redis holds it.
#[derive(Clone, Debug)]
pub(crate) struct RedisRun {
    /// Its metadata, as a journal run's.
    pub(crate) info: RunInfo,
    /// The chunk index.
    pub(crate) chunks: Vec<IndexEntry>,
}

/// Which runs of a job to read: a part of its index that Redis selects, so that a listing
/// of a few runs does not fetch every run's metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// Only failed and crashed runs (`<P>:{<J>}:failed` instead of `runs`).
    pub(crate) failed_only: bool,
    /// Only runs whose score (start, ms) is at least this.
    pub(crate) min_ms: Option<i64>,
    /// Only runs whose score is at most this.
    pub(crate) max_ms: Option<i64>,
    /// Only the newest this many of those.
    pub(crate) newest: Option<usize>,
}

/// Why reading Redis failed.
#[derive(Debug)]
pub(crate) enum RedisError {
    /// Connecting or a command failed: the store is unreachable, or refuses this client (a
    /// password, a permission, TLS, not Redis, too old: the message names the fix).
    Redis(String),
    /// Redis holds something that is not schema 1.
    Data(String),
}

/// A connection to the Redis runs are shipped to.
pub(crate) struct RedisStore {
    conn: Conn,
    keys: Keys,
    /// Where it is, for messages (no password).
    pub(crate) place: String,
    /// The table it was opened with, for diagnoses.
    config: RedisConfig,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("place", &self.place)
            .finish()
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn status_of(s: &str) -> Option<RunStatus> {
    Some(match s {
        "ok" => RunStatus::Ok,
        "failed" => RunStatus::Failed,
        "crashed" => RunStatus::Crashed,
        _ => return None,
    })
}

impl RedisStore {
    /// Connect and check the schema version under the prefix.
    pub(crate) fn connect(rc: &RedisConfig) -> Result<RedisStore, RedisError> {
        let place = describe(rc);
        let t = Target::from_config(rc);
        let mut conn = open_connection(&t, Role::Reader).map_err(|e| match e {
            UploadError::Refused(m) => RedisError::Redis(m),
            e => RedisError::Redis(format!("cannot connect to Redis at {place}: {e}")),
        })?;
        let keys = Keys::new(rc.prefix_or_default());
        // A server too old for the schema answers some reads and refuses others: it is
        // refused here, whatever the command, so that `--source auto` reads the journal alone.
        // `HELLO 2` (which keeps the protocol) tells the version to any user, whatever its ACL
        // rules; a Redis before 6.0 does not know it.
        if !conn.is_cluster() {
            match redis::cmd("HELLO").arg(2).query::<Value>(&mut conn) {
                Ok(hello) => {
                    let v = hello_version(&hello).and_then(|v| parse_version(&v));
                    if let Some(m) = v.and_then(|v| too_old_version(&place, &v)) {
                        return Err(RedisError::Redis(m));
                    }
                }
                Err(e)
                    if e.to_string()
                        .to_ascii_lowercase()
                        .contains("unknown command") =>
                {
                    return Err(RedisError::Redis(format!(
                        "Redis at {place} does not know HELLO, so it is older than Redis 6.0; \
                         runlog needs Redis {}.{} or later (spec/redis.md): upgrade it, or use \
                         another server",
                        MIN_VERSION.0, MIN_VERSION.1
                    )))
                }
                Err(e) => return Err(classify(&mut conn, rc, &place, e, "HELLO")),
            }
        }
        let schema: Option<String> = redis::cmd("GET")
            .arg(keys.schema())
            .query(&mut conn)
            .map_err(|e| classify(&mut conn, rc, &place, e, &keys.schema()))?;
        if let Some(s) = schema {
            if s != SCHEMA_VERSION {
                return Err(RedisError::Data(format!(
                    "Redis at {place}: key {} says runlog schema {s:?}, this runlog reads schema \
                     {SCHEMA_VERSION}; upgrade runlog or use another prefix ([runlog-redis] prefix)",
                    keys.schema()
                )));
            }
        }
        Ok(RedisStore {
            conn,
            keys,
            place,
            config: rc.clone(),
        })
    }

    fn err(&mut self, e: redis::RedisError, keys: &str) -> RedisError {
        classify(&mut self.conn, &self.config, &self.place, e, keys)
    }

    /// The most recently active jobs in `<P>:jobs`, newest first, with their scores (the
    /// start of each job's newest uploaded run, ms): the first `n`, or all with `None`. One
    /// command whose reply is as long as what it returns, however many jobs Redis holds.
    pub(crate) fn recent_jobs(
        &mut self,
        n: Option<usize>,
    ) -> Result<Vec<(String, i64)>, RedisError> {
        if n == Some(0) {
            return Ok(Vec::new());
        }
        // `ZRANGE .. REV` (Redis 6.2, which the schema requires) rather than ZREVRANGE: one
        // command for the reader's ACL (spec/redis.md).
        let last = n.map_or(-1, |n| i64::try_from(n - 1).unwrap_or(i64::MAX));
        let key = self.keys.jobs();
        let jobs: Vec<(Vec<u8>, f64)> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(0)
            .arg(last)
            .arg("REV")
            .arg("WITHSCORES")
            .query(&mut self.conn)
            .map_err(|e| self.err(e, &key))?;
        Ok(jobs
            .into_iter()
            .map(|(n, ms)| (String::from_utf8_lossy(&n).into_owned(), ms as i64))
            .collect())
    }

    /// The run ids of each job, oldest first, in one round trip.
    pub(crate) fn run_ids(&mut self, jobs: &[String]) -> Result<Vec<Vec<String>>, RedisError> {
        // An empty pipeline is an error to the client.
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        for j in jobs {
            p.cmd("ZRANGE").arg(self.keys.job(j).runs()).arg(0).arg(-1);
        }
        let what = format!("a key {}:{{<job>}}:runs", self.keys.prefix());
        self.conn.query_pipe(&p).map_err(|e| self.err(e, &what))
    }

    /// The status to show (`damaged` when the hash counts `problems`) and start of runs
    /// (`None` where the run was trimmed meanwhile).
    pub(crate) fn run_heads(
        &mut self,
        runs: &[(String, String)],
    ) -> Result<Vec<Option<(RunStatus, i64)>>, RedisError> {
        if runs.is_empty() {
            return Ok(Vec::new());
        }
        let mut p = redis::pipe();
        for (job, id) in runs {
            p.cmd("HMGET")
                .arg(self.keys.job(job).run(id))
                .arg("status")
                .arg("start")
                .arg("problems");
        }
        let what = format!("a key {}:{{<job>}}:run:<id>", self.keys.prefix());
        let rows: Vec<Vec<Option<String>>> =
            self.conn.query_pipe(&p).map_err(|e| self.err(e, &what))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let status = r.first()?.as_deref().and_then(status_of)?;
                let start = r.get(1)?.as_deref()?.parse().ok()?;
                let damaged = r
                    .get(2)
                    .and_then(|p| p.as_deref()?.parse::<u64>().ok())
                    .is_some_and(|n| n > 0);
                Some((status.shown(damaged), start))
            })
            .collect())
    }

    /// The ids of a job's runs that `w` selects with their scores, oldest first, in one
    /// command.
    fn window_ids(&mut self, job: &str, w: Window) -> Result<Vec<(String, f64)>, RedisError> {
        let jk = self.keys.job(job);
        let key = if w.failed_only {
            jk.failed()
        } else {
            jk.runs()
        };
        if w.newest == Some(0) {
            return Ok(Vec::new());
        }
        let bound =
            |ms: Option<i64>, open: &str| ms.map_or_else(|| open.to_owned(), |m| m.to_string());
        let mut c = redis::cmd("ZRANGE");
        c.arg(&key)
            .arg(bound(w.max_ms, "+inf"))
            .arg(bound(w.min_ms, "-inf"))
            .arg("BYSCORE")
            .arg("REV");
        if let Some(n) = w.newest {
            c.arg("LIMIT").arg(0).arg(n);
        }
        c.arg("WITHSCORES");
        let mut ids: Vec<(String, f64)> = c.query(&mut self.conn).map_err(|e| self.err(e, &key))?;
        ids.reverse();
        Ok(ids)
    }

    /// The runs of a job in Redis that `w` selects (all with the default), oldest first;
    /// whether `w.newest` cut the selection (Redis may hold more runs in the window); and the
    /// ids of runs its index lists whose hash is missing (evicted or deleted).
    pub(crate) fn runs_in(
        &mut self,
        job: &str,
        w: Window,
    ) -> Result<(Vec<RedisRun>, bool, Vec<String>), RedisError> {
        let jk = self.keys.job(job);
        let listed = self.window_ids(job, w)?;
        let cut = w.newest.is_some_and(|n| listed.len() >= n);
        if listed.is_empty() {
            return Ok((Vec::new(), cut, Vec::new()));
        }
        let mut p = redis::pipe();
        for (id, _) in &listed {
            p.cmd("HGETALL").arg(jk.run(id));
        }
        let what = format!("a key {}run:<id>", jk.base());
        let hashes: Vec<HashMap<String, Value>> =
            self.conn.query_pipe(&p).map_err(|e| self.err(e, &what))?;
        let mut out = Vec::with_capacity(listed.len());
        let mut missing = Vec::new();
        for ((id, score), h) in listed.iter().zip(hashes) {
            // In `runs` without its hash: trimmed since ZRANGE (normal), unless it is still
            // in `runs` (evicted or deleted). A member that is no run id is no run of
            // runlog's: left out, as before (it may be huge and crafted).
            if h.is_empty() {
                let runs = jk.runs();
                let listed = is_run_id(id)
                    && match still_listed(&mut self.conn, &runs, id, *score as i64) {
                        Ok(l) => l,
                        Err(e) => return Err(self.err(e, &runs)),
                    };
                if listed {
                    missing.push(id.clone());
                }
                continue;
            }
            out.push(self.parse_run(&jk, job, id, &h)?);
        }
        Ok((out, cut, missing))
    }

    fn parse_run(
        &self,
        jk: &JobKeys,
        job: &str,
        id: &str,
        h: &HashMap<String, Value>,
    ) -> Result<RedisRun, RedisError> {
        let key = jk.run(id);
        let bad = |what: &str| {
            RedisError::Data(format!(
                "Redis at {}: run hash {key} has {what}; it was not written by a schema \
                 {SCHEMA_VERSION} shipper",
                self.place
            ))
        };
        let get = |f: &str| h.get(f).and_then(text);
        let num = |f: &str| -> Result<i64, RedisError> {
            get(f)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(&format!("no valid {f:?} field")))
        };
        let status = get("status")
            .as_deref()
            .and_then(status_of)
            .ok_or_else(|| bad("no valid \"status\" field"))?;
        let v = get("v");
        if v.as_deref() != Some(SCHEMA_VERSION) {
            return Err(bad(&format!("schema version {v:?} in its \"v\" field")));
        }
        let start_ns = num("start")?;
        let mut labels: Vec<(String, String)> = h
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("label:")?.to_owned(), text(v)?)))
            .collect();
        labels.sort();
        let problems = match get("problems").and_then(|p| p.parse::<u64>().ok()) {
            Some(n) if n > 0 => vec![Problem {
                path: PathBuf::from(format!("redis:{key}")),
                offset: 0,
                what: format!(
                    "the journal this run was shipped from was damaged in {n} place(s); \
                     what could not be read there is missing, and a record with target \
                     runlog::damage marks each corrupt place (`runlog journal verify` on \
                     that host names the places)"
                ),
            }],
            _ => Vec::new(),
        };
        let chunks = parse_chunk_index(&get("chunks").unwrap_or_default())
            .map_err(|e| bad(&format!("a bad chunk index ({e})")))?;
        Ok(RedisRun {
            info: RunInfo {
                id: id.to_owned(),
                job: get("job").unwrap_or_else(|| job.to_owned()),
                status,
                start_ns,
                end_ns: get("end").and_then(|v| v.parse().ok()),
                last_ns: num("last").unwrap_or(start_ns),
                records: num("records")? as u64,
                dropped: num("dropped").unwrap_or(0) as u64,
                host: get("host").unwrap_or_default(),
                pid: num("pid").unwrap_or(0) as u32,
                labels,
                segments: Vec::new(),
                problems,
            },
            chunks,
        })
    }

    /// Feed the records of a run to `f`, oldest first, fetching only chunks that can hold
    /// records in `range`, and from chunk `from_chunk` on. Stops early when `f` says so.
    ///
    /// A second thread fetches and decompresses the chunks ahead of the one being decoded and
    /// printed. A chunk is decoded whole before any of its records is handed to `f`, so a
    /// damaged chunk shows none of them.
    pub(crate) fn records(
        &mut self,
        run: &RedisRun,
        range: Range,
        from_chunk: usize,
        f: &mut dyn FnMut(&RecordRef<'_>) -> Result<bool, crate::Error>,
    ) -> Result<(), crate::Error> {
        let jk = self.keys.job(&run.info.job);
        let (log, runs) = (jk.log(&run.info.id), jk.runs());
        let score = run.info.start_ns.div_euclid(1_000_000);
        let wanted: Vec<usize> = (from_chunk..run.chunks.len())
            .filter(|&i| range.overlaps(run.chunks[i].first_ns, run.chunks[i].last_ns))
            .collect();
        // Contiguous stretches of wanted chunks, fetched CHUNKS_PER_FETCH at a time.
        let mut fetches = Vec::new();
        let mut i = 0;
        while i < wanted.len() {
            let start = wanted[i];
            let mut end = start;
            while i + 1 < wanted.len()
                && wanted[i + 1] == end + 1
                && end - start + 1 < CHUNKS_PER_FETCH
            {
                i += 1;
                end += 1;
            }
            i += 1;
            fetches.push((start, end));
        }
        let (conn, place, config) = (&mut self.conn, self.place.as_str(), &self.config);
        let (log, run_id, job) = (log.as_str(), run.info.id.as_str(), run.info.job.as_str());
        let runs = runs.as_str();
        std::thread::scope(|scope| {
            // (chunk number, its records' bytes) in order, or why not; a few fetches ahead.
            let (tx, rx) =
                mpsc::sync_channel::<Result<(usize, Vec<u8>), crate::Error>>(2 * CHUNKS_PER_FETCH);
            let fetcher = move || {
                for (start, end) in fetches {
                    let chunks: Vec<Vec<u8>> = match redis::cmd("LRANGE")
                        .arg(log)
                        .arg(start)
                        .arg(end)
                        .query(conn)
                    {
                        Ok(c) => c,
                        Err(e) => {
                            let _ = tx.send(Err(match classify(conn, config, place, e, log) {
                                RedisError::Redis(m) => crate::Error::Unreachable(m),
                                RedisError::Data(m) => crate::Error::failed(m),
                            }));
                            return;
                        }
                    };
                    if chunks.len() != end - start + 1 {
                        // Trimmed while reading (what was printed stays printed), unless it is
                        // still in `runs`: then its chunks were evicted or deleted.
                        let _ = tx.send(Err(match still_listed(conn, runs, run_id, score) {
                            Ok(false) => crate::Error::not_found(format!(
                                "run {run_id} of job {job:?} was removed from Redis (trimmed) \
                                 while it was being read"
                            )),
                            Ok(true) => crate::Error::failed(format!(
                                "run {run_id} of job {job:?} is {}: its index {runs} lists it, \
                                 but chunks {start} to {end} of {log} are gone, so its records \
                                 cannot be shown from Redis",
                                crate::source::MISSING_FROM_REDIS
                            )),
                            Err(e) => match classify(conn, config, place, e, runs) {
                                RedisError::Redis(m) => crate::Error::Unreachable(m),
                                RedisError::Data(m) => crate::Error::failed(m),
                            },
                        }));
                        return;
                    }
                    for (n, c) in chunks.iter().enumerate() {
                        let raw =
                            decompress_chunk(c).map_err(|e| damaged(place, start + n, log, e));
                        let failed = raw.is_err();
                        // The reader is gone (it stopped early or failed): so is the point.
                        if tx.send(raw.map(|r| (start + n, r))).is_err() || failed {
                            return;
                        }
                    }
                }
            };
            std::thread::Builder::new()
                .name("runlog-fetch".into())
                .spawn_scoped(scope, fetcher)
                .map_err(|e| crate::Error::failed(format!("cannot start a thread: {e}")))?;
            for msg in rx {
                let (n, raw) = msg?;
                // Decoded whole first: a damaged chunk shows none of its records.
                // (A record takes 20 bytes at least; most take about 100.)
                let recs = decode_raw_chunk_refs(&raw).map_err(|e| damaged(place, n, log, e))?;
                for r in &recs {
                    if range.contains(r.ts_ns) && !f(r)? {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }
}

/// The `version` field of a `HELLO` reply (a flat array of names and values in RESP2).
fn hello_version(v: &Value) -> Option<String> {
    let Value::Array(items) = v else {
        return None;
    };
    items
        .chunks(2)
        .find(|kv| text(&kv[0]).as_deref() == Some("version"))
        .and_then(|kv| kv.get(1).and_then(text))
}

/// Whether run `id`, whose score is `ms`, is still in the job's `runs` index: asked when its
/// hash or chunks are missing, to tell a run trimmed meanwhile (normal) from one evicted or
/// deleted. (`ZRANGE .. BYSCORE`: the reader's ACL has no `ZSCORE`.)
fn still_listed(conn: &mut Conn, runs: &str, id: &str, ms: i64) -> redis::RedisResult<bool> {
    let ids: Vec<String> = redis::cmd("ZRANGE")
        .arg(runs)
        .arg(ms)
        .arg(ms)
        .arg("BYSCORE")
        .query(conn)?;
    Ok(ids.iter().any(|i| i == id))
}

/// A failed command on `conn` as the store being unusable (exit 4: unreachable, a timeout, or
/// a refusal: a password, a permission, TLS, not Redis, a Redis too old for the schema, each
/// named with its fix) or as data under `keys` that is not schema 1 (exit 1: a key of another
/// type, a reply of the wrong shape; only then is deleting the key advised).
fn classify(
    conn: &mut Conn,
    rc: &RedisConfig,
    place: &str,
    e: redis::RedisError,
    keys: &str,
) -> RedisError {
    use redis::{ErrorKind, ServerErrorKind};
    if is_no_perm(&e) {
        return RedisError::Redis(format!(
            "Redis at {place} does not let this user read {keys} ({e}); the Redis user of \
             [runlog-redis] needs the reader's rules of spec/redis.md, \"Least privilege\""
        ));
    }
    if let Some(m) = diagnose(place, rc, &e, Role::Reader) {
        return RedisError::Redis(m);
    }
    let foreign = match e.kind() {
        // A reply that does not convert: Redis answered (`diagnose` ruled out a server that
        // is not Redis).
        ErrorKind::UnexpectedReturnType | ErrorKind::Parse => true,
        ErrorKind::Extension => {
            e.code() == Some("WRONGTYPE") || e.to_string().contains("WRONGTYPE")
        }
        _ => false,
    };
    if foreign {
        return RedisError::Data(format!(
            "Redis at {place}: {keys} holds data that is not runlog schema {SCHEMA_VERSION} \
             ({e}); it was not written by a runlog shipper: delete the key or use another prefix \
             ([runlog-redis] prefix)"
        ));
    }
    // A command refused ("ERR syntax error" for `ZRANGE .. REV` before 6.2, "unknown
    // command"): a server too old for the schema says so in `INFO` (which the reader's ACL may
    // not allow: then the error is all there is).
    if e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError) {
        if let Ok(info) = redis::cmd("INFO").arg("server").query::<String>(conn) {
            if let Some(m) = too_old(place, &info) {
                return RedisError::Redis(m);
            }
        }
    }
    RedisError::Redis(format!("Redis at {place} failed: {e}"))
}

/// The error for a chunk that does not decode.
fn damaged(place: &str, n: usize, log: &str, e: ChunkError) -> crate::Error {
    crate::Error::failed(format!(
        "Redis at {place}: chunk {n} of {log} is damaged: {e}"
    ))
}
