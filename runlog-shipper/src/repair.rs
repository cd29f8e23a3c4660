//! Uploading again the shipped runs Redis lost (`spec/redis.md`, *Redis configuration*): a
//! Redis that evicts keys (or a key deleted by hand) can leave a run in its job's `runs` index
//! without its hash or chunks, while `.shipped` says it is there. The shipper checks its
//! shipped runs in turn, a bounded batch per rescan interval, and uploads those again from the
//! journal. A run no longer in `runs` was trimmed: it is never uploaded again.

use std::path::PathBuf;

use redis::Value;
use runlog::journal::layout::decode_job;
use runlog::journal::reader::{being_deleted, list_run_segments, read_run_segments};
use runlog::journal::shipped::read_shipped;

use crate::confirm::drop_from_shipped;
use crate::prepare::prepare_run;
use crate::schema::{ChunkBuilder, Keys};
use crate::ship::{job_name_hint, Journal};
use crate::upload::{is_no_perm, Redis, UploadError};

/// Shipped runs the daemon checks per rescan interval.
pub const REPAIR_BATCH: usize = 64;

/// The repair script. KEYS: runs, failed, run:<R>, log:<R>. ARGV: run id. When the run is
/// still in `runs` but its hash is gone or its list does not hold the chunks its index lists,
/// it is removed (from `runs` and `failed`, its keys deleted) so that the upload script
/// writes it anew; returns 1 then, else 0 (whole, or trimmed meanwhile: left alone).
const REPAIR_LUA: &str = r#"
local runs, failed, meta, logk, id = KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1]
if not redis.call('ZSCORE', runs, id) then return 0 end
local index = redis.call('HGET', meta, 'chunks')
if index then
  local n = 0
  for _ in string.gmatch(index, '\n') do n = n + 1 end
  if n == redis.call('LLEN', logk) then return 0 end
end
redis.call('ZREM', runs, id)
redis.call('ZREM', failed, id)
redis.call('DEL', meta, logk)
return 1
"#;

/// A shipped run the journal still holds.
#[derive(Debug)]
struct Shipped {
    dir: PathBuf,
    id: String,
    segs: Vec<(u32, PathBuf)>,
}

/// Where the checks are in the journal's shipped runs, from one batch to the next.
#[derive(Debug)]
pub struct Repair {
    keys: Keys,
    /// The last run checked.
    cursor: Option<(PathBuf, String)>,
    /// The Redis user may not check (`NOPERM`): said once, then not tried again.
    refused: bool,
}

/// Is a run listed in `runs` incomplete, by its `ZSCORE runs`, `HGET run: chunks` and
/// `LLEN log:` replies?
fn incomplete(score: &Value, index: &Value, len: &Value) -> bool {
    if matches!(score, Value::Nil) {
        return false;
    }
    let chunks = match index {
        Value::BulkString(b) => b.iter().filter(|&&c| c == b'\n').count(),
        Value::SimpleString(s) => s.matches('\n').count(),
        _ => return true,
    };
    !matches!(len, Value::Int(n) if usize::try_from(*n).ok() == Some(chunks))
}

impl Repair {
    /// Checks of runs under `keys`.
    pub fn new(keys: Keys) -> Repair {
        Repair {
            keys,
            cursor: None,
            refused: false,
        }
    }

    /// The shipped runs (under the current epoch) the journal still holds, in order.
    fn shipped_runs(journal: &Journal, epoch: &str) -> Vec<Shipped> {
        let mut out = Vec::new();
        for dir in journal.job_dirs().unwrap_or_default() {
            let Ok(Some(s)) = read_shipped(&dir) else {
                continue;
            };
            if s.epoch != epoch {
                continue;
            }
            let Ok(mut present) = list_run_segments(&dir) else {
                continue;
            };
            for id in s.runs {
                match present.remove(&id) {
                    Some(segs) if !being_deleted(&segs) => out.push(Shipped {
                        dir: dir.clone(),
                        id,
                        segs,
                    }),
                    _ => {}
                }
            }
        }
        out
    }

    /// Check up to `max` shipped runs, after the ones the last call checked (wrapping
    /// around), and upload again from the journal those Redis lists without their hash or
    /// chunks. Returns the runs uploaded again.
    pub fn check(
        &mut self,
        journal: &Journal,
        redis: &mut Redis,
        max: usize,
    ) -> Result<u64, UploadError> {
        if self.refused {
            return Ok(0);
        }
        let all = Self::shipped_runs(journal, &redis.epoch);
        let from = self.cursor.as_ref().map_or(0, |(d, id)| {
            all.partition_point(|s| (&s.dir, &s.id) <= (d, id))
        });
        let batch: Vec<&Shipped> = all
            .iter()
            .cycle()
            .skip(from)
            .take(max.min(all.len()))
            .collect();
        let Some(last) = batch.last() else {
            return Ok(0);
        };
        self.cursor = Some((last.dir.clone(), last.id.clone()));
        // The job of each: its directory's name, or (a long name cut) its BEGIN frame.
        let jobs: Vec<Option<String>> = batch.iter().map(|s| job_of(s)).collect();
        let mut p = redis::pipe();
        for (s, job) in batch.iter().zip(&jobs) {
            let jk = self.keys.job(job.as_deref().unwrap_or_default());
            p.cmd("ZSCORE").arg(jk.runs()).arg(&s.id);
            p.cmd("HGET").arg(jk.run(&s.id)).arg("chunks");
            p.cmd("LLEN").arg(jk.log(&s.id));
        }
        let replies: Vec<Value> = match redis.conn().query_pipe(&p) {
            Ok(r) => r,
            Err(e) if is_no_perm(&e) => {
                self.refused = true;
                log::warn!(
                    "the Redis user may not check shipped runs for eviction ({e}); runs Redis \
                     evicts are not uploaded again: allow +hget (spec/redis.md, \"Least \
                     privilege\")"
                );
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let mut repaired = 0;
        for ((s, job), r) in batch.iter().zip(&jobs).zip(replies.chunks(3)) {
            let (Some(job), [score, index, len]) = (job, r) else {
                continue;
            };
            if incomplete(score, index, len) && self.upload_again(journal, redis, s, job)? {
                repaired += 1;
            }
        }
        Ok(repaired)
    }

    /// Upload `s` again: dropped from `.shipped` first (a shipper that dies on the way then
    /// uploads it as a run not shipped yet), removed from Redis by the repair script (only if
    /// it is still listed and incomplete), uploaded, and recorded as shipped again.
    fn upload_again(
        &self,
        journal: &Journal,
        redis: &mut Redis,
        s: &Shipped,
        job: &str,
    ) -> Result<bool, UploadError> {
        let hint = job_name_hint(&s.dir);
        let run = ChunkBuilder::new()
            .map_err(crate::prepare::PrepareError::Io)
            .and_then(|mut b| prepare_run(&hint, &s.id, &s.segs, &mut b));
        let run = match run {
            Ok(run) if run.job == job => run,
            Ok(_) => return Ok(false),
            Err(e) => {
                log::error!(
                    "run {} of job {job:?} is missing from Redis (evicted or deleted), and it \
                     cannot be read from the journal to upload it again: {e}",
                    s.id
                );
                return Ok(false);
            }
        };
        log::warn!(
            "run {} of job {job:?} is missing from Redis (evicted or deleted) although it was \
             shipped: uploading it again from the journal (spec/redis.md, \"Redis \
             configuration\")",
            s.id
        );
        if !drop_from_shipped(&s.dir, &s.id) {
            return Ok(false);
        }
        let sha: String = redis::cmd("SCRIPT")
            .arg("LOAD")
            .arg(REPAIR_LUA)
            .query(redis.conn())?;
        let jk = self.keys.job(job);
        let removed: i64 = redis::cmd("EVALSHA")
            .arg(sha)
            .arg(4)
            .arg(jk.runs())
            .arg(jk.failed())
            .arg(jk.run(&s.id))
            .arg(jk.log(&s.id))
            .arg(&s.id)
            .query(redis.conn())?;
        if removed == 1 {
            redis.upload(std::slice::from_ref(&run), &|j| journal.limits(j))?;
        }
        // Whole after all, or trimmed meanwhile: as shipped as before.
        let epoch = redis.epoch.clone();
        journal.record_shipped(&s.dir, job, &epoch, &[s.id.as_str()]);
        Ok(removed == 1)
    }
}

/// The job of a shipped run: its directory's name, or for a cut name the BEGIN frame's.
fn job_of(s: &Shipped) -> Option<String> {
    let enc = s.dir.file_name()?.to_string_lossy().into_owned();
    if let Some(job) = decode_job(&enc) {
        return Some(job);
    }
    read_run_segments(&enc, &s.id, &s.segs, false)
        .ok()
        .map(|l| l.info.job)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn a_listed_run_is_incomplete_without_its_hash_or_with_another_number_of_chunks() {
        let index = bulk("1 2 10\n3 4 10\n");
        // Whole; not listed (trimmed: never touched); no records and no list.
        assert!(!incomplete(&Value::Int(5), &index, &Value::Int(2)));
        assert!(!incomplete(&Value::Nil, &Value::Nil, &Value::Int(0)));
        assert!(!incomplete(&bulk("5"), &bulk(""), &Value::Int(0)));
        // Hash gone; list gone; list short.
        assert!(incomplete(&bulk("5"), &Value::Nil, &Value::Int(2)));
        assert!(incomplete(&bulk("5"), &index, &Value::Int(0)));
        assert!(incomplete(&bulk("5"), &index, &Value::Int(1)));
    }
}
