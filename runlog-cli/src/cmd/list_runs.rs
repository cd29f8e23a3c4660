//! `runlog list-runs JOB`.

use runlog::{RunInfo, RunStatus};

use super::no_such_job;
use crate::render::{
    format_duration, format_labels, format_start, format_table, json_array, status_color, Cell,
    JsonObject, Out,
};
use crate::source::{open_journal, read_error};
use crate::{warn, Ctx, Error};

/// How long a run took: until its end; for a running run, until now; for a crashed run,
/// until its last record.
pub(crate) fn duration_ns(r: &RunInfo, now_ns: i64) -> i64 {
    let until = match r.status {
        RunStatus::Running => now_ns,
        RunStatus::Crashed => r.last_ns,
        _ => r.end_ns.unwrap_or(r.last_ns),
    };
    until.saturating_sub(r.start_ns)
}

/// Tell on stderr what is wrong with a run's files.
pub(crate) fn warn_problems(r: &RunInfo) {
    for p in &r.problems {
        warn(&format!("job {:?} run {}: {p}", r.job, r.id));
    }
    if r.dropped > 0 {
        warn(&format!(
            "job {:?} run {}: {} records could not be written to the journal (disk full or \
             not writable) and are missing",
            r.job, r.id, r.dropped
        ));
    }
}

/// The JSON form of a run.
pub(crate) fn run_json(r: &RunInfo, now_ns: i64) -> String {
    let fmt = runlog::time::format_micros;
    let problems = json_array(r.problems.iter().map(|p| {
        JsonObject::new()
            .str("file", &p.path.to_string_lossy())
            .num("offset", p.offset)
            .str("what", &p.what)
            .finish()
    }));
    JsonObject::new()
        .str("job", &r.job)
        .str("id", &r.id)
        .str("status", r.status.as_str())
        .str("start", &fmt(r.start_ns))
        .opt_str("end", r.end_ns.map(fmt).as_deref())
        .str("last", &fmt(r.last_ns))
        .num("duration_ms", duration_ns(r, now_ns) / 1_000_000)
        .num("records", r.records)
        .num("dropped", r.dropped)
        .str("host", &r.host)
        .num("pid", r.pid)
        .str_map("labels", &r.labels)
        .raw("problems", &problems)
        .finish()
}

/// One line per run, oldest first.
pub(crate) fn run(ctx: &Ctx, out: &mut Out, job: &str) -> Result<(), Error> {
    let journal = open_journal(ctx)?;
    let runs = journal.runs(job).map_err(read_error)?;
    if runs.is_empty() {
        return Err(no_such_job(&journal, job));
    }
    let now = runlog::time::now_ns();
    if ctx.json {
        for r in &runs {
            out.line(&run_json(r, now))?;
        }
    } else {
        let style = out.style;
        let rows: Vec<Vec<Cell>> = runs
            .iter()
            .map(|r| {
                vec![
                    Cell::new(&r.id),
                    Cell::colored(r.status.as_str(), status_color(r.status)),
                    Cell::new(format_start(r.start_ns)),
                    Cell::new(format_duration(duration_ns(r, now))),
                    Cell::new(r.records.to_string()),
                    Cell::job_text(style, if r.host.is_empty() { "-" } else { &r.host }),
                    Cell::job_text(style, &format_labels(&r.labels)),
                ]
            })
            .collect();
        out.write_str(&format_table(
            &[
                "RUN", "STATUS", "START", "DURATION", "RECORDS", "HOST", "LABELS",
            ],
            &rows,
            style,
        ))?;
    }
    if runs.iter().any(|r| !r.problems.is_empty() || r.dropped > 0) {
        out.flush()?;
        runs.iter().for_each(warn_problems);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: RunStatus) -> RunInfo {
        RunInfo {
            id: "2026-11-28T12:10:55.123456Z-0123456789ab".into(),
            job: "j".into(),
            status,
            start_ns: 1_000_000_000,
            end_ns: None,
            last_ns: 4_000_000_000,
            records: 3,
            dropped: 0,
            host: "h".into(),
            pid: 1,
            labels: vec![],
            segments: vec![],
            problems: vec![],
        }
    }

    #[test]
    fn a_running_run_lasts_until_now_a_crashed_one_until_its_last_record() {
        assert_eq!(
            duration_ns(&info(RunStatus::Running), 61_000_000_000),
            60_000_000_000
        );
        assert_eq!(
            duration_ns(&info(RunStatus::Crashed), 61_000_000_000),
            3_000_000_000
        );
        let mut ok = info(RunStatus::Ok);
        ok.end_ns = Some(5_500_000_000);
        assert_eq!(duration_ns(&ok, 61_000_000_000), 4_500_000_000);
    }

    #[test]
    fn runs_have_a_json_form() {
        let mut r = info(RunStatus::Ok);
        r.end_ns = Some(2_000_000_000);
        r.labels = vec![("user".into(), "bar".into())];
        let j = run_json(&r, 0);
        assert!(j.starts_with(r#"{"job":"j","id":"2026-11-28T12:10:55.123456Z-0123456789ab","status":"ok","start":"1970-01-01T00:00:01.000000Z","end":"1970-01-01T00:00:02.000000Z""#), "{j}");
        assert!(
            j.ends_with(r#""labels":{"user":"bar"},"problems":[]}"#),
            "{j}"
        );
    }
}
