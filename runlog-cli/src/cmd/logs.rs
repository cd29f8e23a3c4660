//! `runlog logs JOB RUN...`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use regex::Regex;
use runlog::journal::payload::RecordRef;
use runlog::{Record, RunStatus};

use super::shell_quote;
use crate::args::{LogsArgs, RecordFilterArgs};
use crate::cmd::list_runs::{job_runs, warn_problems};
use crate::grep::Grep;
use crate::render::{JsonObject, Out};
use crate::runref::{resolve, RefError, RunKey};
use crate::source::{Run, Store};
use crate::when::Range;
use crate::zone::Zone;
use crate::{Ctx, Error};

/// Candidates listed in an "ambiguous" error before "... and N more".
const MAX_CANDIDATES: usize = 20;

/// How often `--follow` looks for new records.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// Which records to print.
pub(crate) struct Filter {
    level: Option<log::Level>,
    grep: Option<Grep>,
    /// Record times.
    pub(crate) range: Range,
}

impl Filter {
    /// Resolve `--level`, `--grep`, `--since` and `--until`.
    pub(crate) fn parse(a: &RecordFilterArgs, zone: &Zone) -> Result<Filter, Error> {
        let grep = match &a.grep {
            Some(g) => Some(Grep::new(Regex::new(g).map_err(|e| {
                Error::usage(format!(
                    "--grep {g:?} is not a valid regular expression: {e}"
                ))
            })?)),
            None => None,
        };
        let range = Range::parse(
            a.since.as_deref(),
            a.until.as_deref(),
            runlog::time::now_ns(),
            zone,
        )
        .map_err(Error::usage)?;
        Ok(Filter {
            level: a.level,
            grep,
            range,
        })
    }

    /// Does every record pass (so counts from the run's metadata hold)?
    fn keeps_all(&self) -> bool {
        self.level.is_none() && self.grep.is_none() && self.range.is_all()
    }

    /// Can the record with this undecoded payload pass? (False only if it certainly does
    /// not: it is then not decoded.)
    fn payload_may_pass(&self, p: &[u8]) -> bool {
        use runlog::journal::payload::{record_payload_level, record_payload_ts};
        let level_ok = match (self.level, record_payload_level(p)) {
            (Some(max), Some(l)) => l <= max,
            _ => true,
        };
        let time_ok = record_payload_ts(p).is_none_or(|ts| self.range.contains(ts));
        level_ok && time_ok && self.grep.as_ref().is_none_or(|g| g.payload_may_match(p))
    }

    fn keeps(&self, r: &RecordRef<'_>) -> bool {
        if self.level.is_some_and(|l| r.level > l) || !self.range.contains(r.ts_ns) {
            return false;
        }
        match &self.grep {
            None => true,
            Some(g) => {
                g.is_match(r.message)
                    || g.is_match(r.target)
                    || r.kvs.iter().any(|(k, v)| g.kv_matches(k, v))
            }
        }
    }
}

/// The message for a reference that names no single run: ambiguity is a usage error (2),
/// the rest "not found" (3). Times in it are shown in `zone`.
pub(crate) fn ref_error(job: &str, runs: &[Run], r: &str, e: RefError, zone: &Zone) -> Error {
    let list = format!("see `runlog list-runs {}`", shell_quote(job));
    let typed = r;
    // A long reference is shown by its head and tail, not echoed whole.
    let short;
    let r = if r.chars().count() > 80 {
        let head: String = r.chars().take(40).collect();
        let tail: String = {
            let t: Vec<char> = r.chars().rev().take(20).collect();
            t.into_iter().rev().collect()
        };
        short = format!("{head}...{tail}");
        short.as_str()
    } else {
        typed
    };
    match e {
        RefError::NoRuns => Error::not_found(format!("job {job:?} has no runs")),
        RefError::NotFound => Error::not_found(format!(
            "job {job:?} has no run matching {r:?} (a run id, a start time like \
             2026-11-28T03:00 or as list-runs prints it, last, -1, -2, ..., last-failed); {list}"
        )),
        RefError::NoneStarted { local } => {
            let how = if local && !zone.is_utc() {
                format!(
                    " (read as local time, {}: add Z for UTC, or an offset like +01:00)",
                    zone.name()
                )
            } else {
                String::new()
            };
            Error::not_found(format!(
                "job {job:?} has no run matching {r:?}: none started then{how}; {list}"
            ))
        }
        RefError::OutOfRange { have, .. } => Error::not_found(format!(
            "run {r:?}: job {job:?} has only {have} run(s), so {} does not exist; {list}",
            r.trim()
        )),
        RefError::Malformed(why) => Error::usage(format!(
            "run {r:?} is not a run reference: {why} (a run id, a unique prefix of one, last, \
             -1, -2, ..., last-failed); {list}"
        )),
        RefError::BadIndex => {
            Error::usage(format!("run {r:?}: counting starts at -1, the newest run"))
        }
        RefError::NoFailed => {
            Error::not_found(format!("job {job:?} has no failed or crashed run; {list}"))
        }
        RefError::Ambiguous(hits) => {
            let mut m = format!(
                "run {r:?} matches {} runs of job {job:?} (id, start, status):",
                hits.len()
            );
            for &i in hits.iter().take(MAX_CANDIDATES) {
                let info = &runs[i].info;
                let _ = write!(
                    m,
                    "\n  {}  {}  {}",
                    info.id,
                    zone.format_micros(info.start_ns),
                    info.status
                );
            }
            if hits.len() > MAX_CANDIDATES {
                let _ = write!(m, "\n  ... and {} more", hits.len() - MAX_CANDIDATES);
            }
            let _ = write!(
                m,
                "\nname one by its id (or a longer prefix of it, or its start to the \
                 microsecond); {list}"
            );
            Error::usage(m)
        }
    }
}

/// Resolve run references among `runs` (oldest first), all before anything is printed: a
/// typo in the third is not found after two runs' worth of output.
pub(crate) fn pick(
    job: &str,
    runs: &[Run],
    refs: &[String],
    zone: &Zone,
) -> Result<Vec<usize>, Error> {
    let keys: Vec<RunKey<'_>> = runs
        .iter()
        .map(|r| (r.info.id.as_str(), r.info.start_ns, r.info.status))
        .collect();
    refs.iter()
        .map(|r| resolve(&keys, r, zone).map_err(|e| ref_error(job, runs, r, e, zone)))
        .collect()
}

/// The JSON form of a record.
pub(crate) fn record_json(job: &str, run: &str, r: &RecordRef<'_>) -> String {
    let o = JsonObject::new()
        .str("timestamp", &runlog::time::format_micros(r.ts_ns))
        .str("level", r.level.as_str())
        .str("target", r.target)
        .str("message", r.message)
        .str_pairs("fields", r.kvs)
        .str("run", run)
        .str("job", job)
        .opt_str("module_path", r.module_path)
        .opt_str("file", r.file);
    let o = match r.line {
        Some(l) => o.num("line", l),
        None => o.raw("line", "null"),
    };
    o.bool("truncated", r.truncated).version().finish()
}

/// Writes records of one job as text or JSON lines, each line starting with its run id
/// when several runs are printed.
pub(crate) struct Printer<'a> {
    pub(crate) job: &'a str,
    pub(crate) json: bool,
    pub(crate) prefix: bool,
}

impl Printer<'_> {
    pub(crate) fn print(&self, out: &mut Out, run: &str, r: &RecordRef<'_>) -> Result<(), Error> {
        if self.json {
            out.line(&record_json(self.job, run, r))?;
        } else if self.prefix {
            out.record_prefixed(run, r)?;
        } else {
            out.record(r)?;
        }
        Ok(())
    }
}

/// `--head` / `--tail` of one run.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Limit {
    pub(crate) head: Option<usize>,
    pub(crate) tail: Option<usize>,
}

/// Print the records of `run` that pass `filter`, within `limit`.
pub(crate) fn print_run(
    store: &mut Store,
    out: &mut Out,
    p: &Printer<'_>,
    run: &Run,
    filter: &Filter,
    limit: Limit,
) -> Result<(), Error> {
    let id = run.info.id.as_str();
    if let Some(n) = limit.tail {
        let skip = if filter.keeps_all() {
            run.records().saturating_sub(n as u64)
        } else {
            0
        };
        let mut last: VecDeque<Record> = VecDeque::with_capacity(n.min(1 << 16));
        if n > 0 {
            let pre = |p: &[u8]| filter.payload_may_pass(p);
            store.records_where(run, filter.range, skip, &pre, &mut |r| {
                if filter.keeps(r) {
                    if last.len() == n {
                        last.pop_front();
                    }
                    last.push_back(r.to_record());
                }
                Ok(true)
            })?;
        }
        for r in &last {
            p.print(out, id, &r.borrowed())?;
        }
        return Ok(());
    }
    let mut left = limit.head.unwrap_or(usize::MAX);
    if left == 0 {
        return Ok(());
    }
    let pre = |p: &[u8]| filter.payload_may_pass(p);
    store.records_where(run, filter.range, 0, &pre, &mut |r| {
        if filter.keeps(r) {
            p.print(out, id, r)?;
            left -= 1;
        }
        Ok(left > 0)
    })
}

/// `logs --exit-status`: a run printed ended failed or crashed.
pub(crate) const EXIT_RUN_FAILED: u8 = 5;

/// `--follow`: print what the run has, then what it adds, until it ends; the status it ended
/// with (`None` if it was cancelled or removed meanwhile).
fn follow(
    store: &mut Store,
    out: &mut Out,
    p: &Printer<'_>,
    run: &Run,
    filter: &Filter,
    tail: Option<usize>,
) -> Result<Option<RunStatus>, Error> {
    let (job, id) = (run.info.job.as_str(), run.info.id.as_str());
    let mut log = store.reread_local(job, id)?;
    let kept: Vec<RecordRef<'_>> = log
        .records
        .iter()
        .map(Record::borrowed)
        .filter(|r| filter.keeps(r))
        .collect();
    let from = tail.map_or(0, |n| kept.len().saturating_sub(n));
    for r in &kept[from..] {
        p.print(out, id, r)?;
    }
    let mut seen = log.records.len();
    while log.info.status == RunStatus::Running {
        out.flush()?;
        std::thread::sleep(FOLLOW_POLL);
        log = match store.reread_local(job, id) {
            Ok(l) => l,
            Err(Error::NotFound(_)) => {
                out.flush()?;
                crate::warn(&format!(
                    "run {id} of job {job:?} is gone: it was cancelled (or removed) while \
                     being followed"
                ));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        for r in log.records.iter().skip(seen).map(Record::borrowed) {
            if filter.keeps(&r) {
                p.print(out, id, &r)?;
            }
        }
        seen = seen.max(log.records.len());
    }
    Ok(Some(log.info.status))
}

/// Print the records of each run named, in the order named; the exit status (0, or
/// [`EXIT_RUN_FAILED`] with `--exit-status`).
pub(crate) fn run(ctx: &Ctx, out: &mut Out, a: &LogsArgs) -> Result<u8, Error> {
    let filter = Filter::parse(&a.records, &ctx.zone)?;
    let refs = if a.runs.is_empty() {
        vec!["last".to_owned()]
    } else {
        a.runs.clone()
    };
    if a.follow && refs.len() > 1 {
        return Err(Error::usage("--follow follows one run: name one RUN"));
    }
    let mut store = Store::open(ctx)?;
    let runs = job_runs(&mut store, &a.job, &a.filter.labels)?;
    let picked = pick(&a.job, &runs, &refs, &ctx.zone)?;
    let p = Printer {
        job: &a.job,
        json: ctx.json,
        prefix: picked.len() > 1,
    };
    let mut failed = false;
    for &i in &picked {
        let run = &runs[i];
        if !run.info.problems.is_empty() || run.info.dropped > 0 {
            out.flush()?;
            warn_problems(&run.info);
        }
        let ended = if a.follow && run.info.status == RunStatus::Running {
            follow(&mut store, out, &p, run, &filter, a.tail)?
        } else {
            let limit = Limit {
                head: a.head,
                tail: a.tail,
            };
            print_run(&mut store, out, &p, run, &filter, limit)?;
            Some(run.info.status)
        };
        if a.follow {
            if let Some(status) = ended {
                // After the records, out of the way of a pipe: how the followed run ended.
                out.flush()?;
                let _ = writeln!(std::io::stderr().lock(), "-- run ended: {status} --");
            }
        }
        failed |= matches!(ended, Some(RunStatus::Failed | RunStatus::Crashed));
    }
    Ok(if a.exit_status && failed {
        EXIT_RUN_FAILED
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: log::Level, message: &str) -> Record {
        Record {
            ts_ns: 0,
            level,
            target: "app".into(),
            module_path: None,
            file: Some("src/main.rs".into()),
            line: Some(7),
            kvs: vec![("user".into(), "bar".into())],
            message: message.into(),
            truncated: false,
        }
    }

    #[test]
    fn level_keeps_that_level_and_more_severe() {
        let f = Filter {
            level: Some(log::Level::Warn),
            grep: None,
            range: Range::default(),
        };
        assert!(f.keeps(&rec(log::Level::Error, "x").borrowed()));
        assert!(f.keeps(&rec(log::Level::Warn, "x").borrowed()));
        assert!(!f.keeps(&rec(log::Level::Info, "x").borrowed()));
    }

    #[test]
    fn grep_looks_at_message_target_and_key_values() {
        let f = |re: &str| Filter {
            level: None,
            grep: Some(Grep::new(Regex::new(re).unwrap())),
            range: Range::default(),
        };
        let r = rec(log::Level::Info, "connected to db");
        let r = r.borrowed();
        assert!(f("db$").keeps(&r));
        assert!(f("^app$").keeps(&r));
        assert!(f("user=bar").keeps(&r));
        assert!(!f("nothing").keeps(&r));
    }

    #[test]
    fn a_plain_word_matches_as_the_regular_expression_would() {
        let r = rec(log::Level::Info, "request timed out: timeout after 5 s");
        let payload = runlog::journal::payload::encode_record(&r);
        let r = r.borrowed();
        for (p, want) in [
            ("timeout", true),
            ("timeouts", false),
            ("user=bar", true),
            ("user=", true),
            ("=bar", true),
            ("r=b", true),
            ("ser", true),
            ("app", true),
            ("Timeout", false),
            ("", true),
        ] {
            for grep in [
                Grep::new(Regex::new(p).unwrap()),
                Grep::regex_only(Regex::new(p).unwrap()),
            ] {
                let f = Filter {
                    level: None,
                    grep: Some(grep),
                    range: Range::default(),
                };
                assert_eq!(f.keeps(&r), want, "{p:?}");
                // What the payload test lets through includes every record that passes.
                assert!(f.payload_may_pass(&payload) || !want, "{p:?}");
            }
        }
        let f = Filter {
            level: Some(log::Level::Warn),
            grep: None,
            range: Range::default(),
        };
        assert!(!f.payload_may_pass(&payload));
    }

    #[test]
    fn records_have_a_json_form() {
        assert_eq!(
            record_json("j", "r", &rec(log::Level::Info, "a \"b\"\n").borrowed()),
            r#"{"timestamp":"1970-01-01T00:00:00.000000Z","level":"INFO","target":"app","message":"a \"b\"\n","fields":{"user":"bar"},"run":"r","job":"j","module_path":null,"file":"src/main.rs","line":7,"truncated":false,"v":1}"#
        );
    }
}
