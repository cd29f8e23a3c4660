//! `runlog why JOB`: the last failed or crashed run, its error and the records before it.

use runlog::journal::payload::failure_rank;
use runlog::{Record, RunStatus};

use super::shell_quote;
use crate::args::WhyArgs;
use crate::cmd::list_runs::{duration_ns, job_runs, run_object, warn_problems};
use crate::cmd::logs::Printer;
use crate::render::{format_duration, format_labels, status_color, term_escape, Out};
use crate::source::Store;
use crate::when::Range;
use crate::{Ctx, Error};

/// Where the failure shows in a run's records: the last record of the highest
/// [`failure_rank`] (an `Err` the run ended with, else a panic's message, else any ERROR
/// record; only ERROR records count), else none (a crashed run that logged no error: it died
/// after its last record).
fn failure_at(records: &[Record]) -> Option<usize> {
    // The shipper's rule for the run hash's `error`, so that both name the same record.
    let mut best: Option<(u8, usize)> = None;
    for (i, r) in records.iter().enumerate() {
        let rank = failure_rank(r.level, &r.target, &r.message);
        if rank > 0 && best.is_none_or(|(b, _)| rank >= b) {
            best = Some((rank, i));
        }
    }
    best.map(|(_, i)| i)
}

/// Longest summary, in characters.
const MAX_SUMMARY: usize = 300;

/// The failure record's message on one line, as the summary: a panic's location and message
/// (`thread 'main' panicked at src/main.rs:10:5: bad input`), an error with its causes.
fn summary(records: &[Record], at: Option<usize>) -> Option<String> {
    let r = &records[at?];
    let one_line = r
        .message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(match one_line.char_indices().nth(MAX_SUMMARY) {
        Some((cut, _)) => format!("{}...", &one_line[..cut]),
        None => one_line,
    })
}

/// Print the last failed or crashed run.
pub(crate) fn run(ctx: &Ctx, out: &mut Out, a: &WhyArgs) -> Result<(), Error> {
    let mut store = Store::open(ctx)?;
    let runs = job_runs(&mut store, &a.job, &a.filter.labels)?;
    let Some(run) = runs
        .iter()
        .rev()
        .find(|r| matches!(r.info.status, RunStatus::Failed | RunStatus::Crashed))
    else {
        let last = &runs[runs.len() - 1].info;
        return Err(Error::not_found(format!(
            "job {:?} has no failed or crashed run among its {} run(s) (the last, {}, is {}); \
             see `runlog list-runs {}`",
            a.job,
            runs.len(),
            last.id,
            last.status,
            shell_quote(&a.job)
        )));
    };
    let mut records = Vec::new();
    store.records(run, Range::default(), 0, &mut |r| {
        records.push(r.to_record());
        Ok(true)
    })?;
    let at = failure_at(&records);
    // The N records before the failure, and the failure with everything after it (a panic's
    // message and backtrace; for a crash, nothing: it died after its last record).
    let from = at.unwrap_or(records.len()).saturating_sub(a.lines);
    let shown = &records[from..];
    let p = Printer {
        job: &a.job,
        json: ctx.json,
        prefix: false,
    };
    let info = &run.info;
    // One line, whichever source holds the run: the shipper's `error` is a whole message (a
    // panic's is its location, then the message, on two lines).
    // From the records, not the shipper's `error` field, so that a run reads the same
    // whichever source holds it.
    let error = summary(&records, at);
    let shown_status = info.shown_status();
    let what = match (shown_status, info.status) {
        (RunStatus::Crashed, _) => {
            Some("the process died without ending the run: killed, or its host went down")
        }
        (RunStatus::Damaged, RunStatus::Crashed) => {
            Some("part of its journal cannot be read; the process died without ending the run")
        }
        (RunStatus::Damaged, _) => Some("part of its journal cannot be read; the run ended failed"),
        _ => None,
    };
    let before = at.unwrap_or(records.len()) - from;
    if ctx.json {
        // What `runlog exec` recorded of how the command ended.
        let kv = |k: &str| {
            at.and_then(|i| {
                records[i]
                    .kvs
                    .iter()
                    .find(|(key, _)| key == k)
                    .and_then(|(_, v)| v.parse::<i64>().ok())
            })
        };
        let o = run_object(run, runlog::time::now_ns())
            .opt_str("error", error.as_deref())
            .opt_num("exit_status", kv("exit_status"))
            .opt_num("signal", kv("signal"))
            .opt_str("status_note", what)
            .num("records_before", before as u64)
            .version();
        out.line(&o.finish())?;
        for r in shown {
            p.print(out, &info.id, &r.borrowed())?;
        }
        return Ok(());
    }
    let style = out.style;
    let mut status = String::new();
    style.paint(
        &mut status,
        status_color(shown_status),
        shown_status.as_str(),
    );
    let what = what.map_or_else(String::new, |w| format!(" ({w})"));
    let now = runlog::time::now_ns();
    // Escaped in a pipe too: the header stays one line per field.
    out.line(&format!("job:      {}", term_escape(&a.job)))?;
    out.line(&format!("run:      {}", info.id))?;
    out.line(&format!("status:   {status}{what}"))?;
    out.line(&format!(
        "started:  {}  after {}, {} records, host {} pid {}",
        ctx.zone.format_micros(info.start_ns),
        format_duration(duration_ns(info, now)),
        info.records,
        style.text(if info.host.is_empty() {
            "-"
        } else {
            &info.host
        }),
        info.pid
    ))?;
    if !info.labels.is_empty() {
        out.line(&format!(
            "labels:   {}",
            style.text(&format_labels(&info.labels))
        ))?;
    }
    match &error {
        Some(e) => out.line(&format!("error:    {}", style.text(e)))?,
        None => out.line("error:    none recorded")?,
    }
    out.line("")?;
    match at {
        Some(_) => out.line(&format!(
            "-- {before} record(s) before the failure, then the failure --"
        ))?,
        None => out.line(&format!("-- the last {before} record(s) --"))?,
    }
    for r in shown {
        p.print(out, &info.id, &r.borrowed())?;
    }
    out.line("")?;
    out.line(&format!(
        "-- all of it: runlog logs {} {}",
        shell_quote(&a.job),
        info.id
    ))?;
    if !info.problems.is_empty() || info.dropped > 0 {
        out.flush()?;
        warn_problems(info);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(level: log::Level, target: &str, message: &str) -> Record {
        Record {
            ts_ns: 0,
            level,
            target: target.into(),
            module_path: None,
            file: None,
            line: None,
            kvs: vec![],
            message: message.into(),
            truncated: false,
        }
    }

    #[test]
    fn the_failure_is_the_panic_or_error_the_guard_wrote_else_the_last_error() {
        use log::Level::*;
        let panic = vec![
            rec(Error, "app", "first error"),
            rec(Info, "app", "go on"),
            rec(Error, "runlog::panic", "thread 'main' panicked at x\nboom"),
            rec(Error, "runlog::panic", "stack backtrace:\n..."),
        ];
        assert_eq!(failure_at(&panic), Some(2));
        assert_eq!(
            summary(&panic, failure_at(&panic)).as_deref(),
            Some("thread 'main' panicked at x boom")
        );
        let long = vec![rec(Error, "runlog::error", &"x".repeat(400))];
        assert_eq!(summary(&long, Some(0)).unwrap().chars().count(), 303);
        let errors = vec![
            rec(Error, "app", "first"),
            rec(Error, "app", "second"),
            rec(Info, "app", "x"),
        ];
        assert_eq!(failure_at(&errors), Some(1));
        assert_eq!(failure_at(&[rec(Info, "app", "x")]), None);
    }
}
