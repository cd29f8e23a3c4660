//! `runlog logs JOB RUN...`.

use std::fmt::Write as _;

use regex::Regex;
use runlog::{Record, RunInfo, RunStatus};

use super::{no_such_job, shell_quote};
use crate::args::LogsArgs;
use crate::cmd::list_runs::warn_problems;
use crate::render::{format_record, JsonObject, Out};
use crate::runref::{resolve, RefError};
use crate::source::{open_journal, read_error};
use crate::{Ctx, Error};

/// Candidates listed in an "ambiguous" error before "... and N more".
const MAX_CANDIDATES: usize = 20;

/// Which records to print.
struct Filter {
    level: Option<log::Level>,
    grep: Option<Regex>,
}

impl Filter {
    fn keeps(&self, r: &Record) -> bool {
        if self.level.is_some_and(|l| r.level > l) {
            return false;
        }
        match &self.grep {
            None => true,
            Some(re) => {
                re.is_match(&r.message)
                    || re.is_match(&r.target)
                    || r.kvs.iter().any(|(k, v)| re.is_match(&format!("{k}={v}")))
            }
        }
    }
}

/// The message for a reference that names no single run.
pub(crate) fn ref_error(job: &str, runs: &[RunInfo], r: &str, e: RefError) -> Error {
    let list = format!("see `runlog list-runs {}`", shell_quote(job));
    Error::usage(match e {
        RefError::NoRuns => format!("job {job:?} has no runs"),
        RefError::NotFound => {
            format!("job {job:?} has no run matching {r:?} (a run id, a unique prefix of one, last, -1, -2, ...); {list}")
        }
        RefError::OutOfRange { n, have } => {
            format!("run {r:?}: job {job:?} has only {have} run(s), so -{n} does not exist; {list}")
        }
        RefError::BadIndex => format!("run {r:?}: counting starts at -1, the newest run"),
        RefError::NoFailed => format!("job {job:?} has no failed or crashed run; {list}"),
        RefError::Ambiguous(hits) => {
            let mut m = format!("run {r:?} matches {} runs of job {job:?}:", hits.len());
            for &i in hits.iter().take(MAX_CANDIDATES) {
                let _ = write!(m, "\n  {}  {}", runs[i].id, runs[i].status);
            }
            if hits.len() > MAX_CANDIDATES {
                let _ = write!(m, "\n  ... and {} more", hits.len() - MAX_CANDIDATES);
            }
            let _ = write!(m, "\ngive more of the run id; {list}");
            m
        }
    })
}

fn record_json(job: &str, run: &str, r: &Record) -> String {
    let o = JsonObject::new()
        .str("job", job)
        .str("run", run)
        .str("ts", &runlog::time::format_micros(r.ts_ns))
        .str("level", r.level.as_str())
        .str("target", &r.target)
        .str("message", &r.message)
        .str_map("kvs", &r.kvs)
        .opt_str("module_path", r.module_path.as_deref())
        .opt_str("file", r.file.as_deref());
    let o = match r.line {
        Some(l) => o.num("line", l),
        None => o.raw("line", "null"),
    };
    o.bool("truncated", r.truncated).finish()
}

/// Print the records of each run named, in the order named.
pub(crate) fn run(ctx: &Ctx, out: &mut Out, a: &LogsArgs) -> Result<(), Error> {
    let grep = match &a.grep {
        Some(g) => Some(Regex::new(g).map_err(|e| {
            Error::usage(format!(
                "--grep {g:?} is not a valid regular expression: {e}"
            ))
        })?),
        None => None,
    };
    let filter = Filter {
        level: a.level,
        grep,
    };
    let journal = open_journal(ctx)?;
    let runs = journal.runs(&a.job).map_err(read_error)?;
    if runs.is_empty() {
        return Err(no_such_job(&journal, &a.job));
    }
    let keys: Vec<(&str, RunStatus)> = runs.iter().map(|r| (r.id.as_str(), r.status)).collect();
    // Every reference is resolved before anything is printed: a typo in the third is not
    // found after two runs' worth of output.
    let picked = a
        .runs
        .iter()
        .map(|r| resolve(&keys, r).map_err(|e| ref_error(&a.job, &runs, r, e)))
        .collect::<Result<Vec<usize>, Error>>()?;
    let style = out.style;
    for (n, &i) in picked.iter().enumerate() {
        let log = journal.read_run(&a.job, &runs[i].id).map_err(read_error)?;
        if !log.info.problems.is_empty() || log.info.dropped > 0 {
            out.flush()?;
            warn_problems(&log.info);
        }
        if picked.len() > 1 && !ctx.json {
            if n > 0 {
                out.line("")?;
            }
            out.line(&format!(
                "==> {} {} ({}) <==",
                style.text(&a.job),
                log.info.id,
                log.info.status
            ))?;
        }
        for rec in log.records.iter().filter(|r| filter.keeps(r)) {
            if ctx.json {
                out.line(&record_json(&a.job, &log.info.id, rec))?;
            } else {
                out.write_str(&format_record(rec, style))?;
            }
        }
    }
    Ok(())
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
        };
        assert!(f.keeps(&rec(log::Level::Error, "x")));
        assert!(f.keeps(&rec(log::Level::Warn, "x")));
        assert!(!f.keeps(&rec(log::Level::Info, "x")));
    }

    #[test]
    fn grep_looks_at_message_target_and_key_values() {
        let f = |re: &str| Filter {
            level: None,
            grep: Some(Regex::new(re).unwrap()),
        };
        let r = rec(log::Level::Info, "connected to db");
        assert!(f("db$").keeps(&r));
        assert!(f("^app$").keeps(&r));
        assert!(f("user=bar").keeps(&r));
        assert!(!f("nothing").keeps(&r));
    }

    #[test]
    fn records_have_a_json_form() {
        assert_eq!(
            record_json("j", "r", &rec(log::Level::Info, "a \"b\"\n")),
            r#"{"job":"j","run":"r","ts":"1970-01-01T00:00:00.000000Z","level":"INFO","target":"app","message":"a \"b\"\n","kvs":{"user":"bar"},"module_path":null,"file":"src/main.rs","line":7,"truncated":false}"#
        );
    }
}
