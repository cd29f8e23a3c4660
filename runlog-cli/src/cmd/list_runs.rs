//! `runlog list-runs JOB`.

use runlog::{RunInfo, RunStatus};

use super::shell_quote;
use crate::args::{LabelArg, ListRunsArgs, StatusArg};
use crate::redis_store::Window;
use crate::render::{
    format_duration, format_labels, format_table, json_array, status_color, Cell, JsonObject, Out,
    MAX_CELL_WIDTH,
};
use crate::source::{Run, Store};
use crate::when::Range;
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
pub(crate) fn run_json(run: &Run, now_ns: i64) -> String {
    run_object(run, now_ns).version().finish()
}

/// The fields of a run's JSON form, without the version (`why` adds its own after them).
pub(crate) fn run_object(run: &Run, now_ns: i64) -> JsonObject {
    let r = &run.info;
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
        .str("status", r.shown_status().as_str())
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
        .str("source", run.origin.as_str())
}

/// Runs that pass the label filters (every `key=value` must be a label of the run).
pub(crate) fn with_labels(runs: Vec<Run>, labels: &[LabelArg]) -> Vec<Run> {
    runs.into_iter()
        .filter(|r| {
            labels.iter().all(|l| {
                r.info
                    .labels
                    .iter()
                    .any(|(k, v)| *k == l.key && *v == l.value)
            })
        })
        .collect()
}

/// The runs of a job for a command: an error naming the store if the job has none, and
/// one naming the filter if the label filters leave none.
pub(crate) fn job_runs(
    store: &mut Store,
    job: &str,
    labels: &[LabelArg],
) -> Result<Vec<Run>, Error> {
    let runs = store.runs(job)?;
    if runs.is_empty() {
        return Err(store.no_such_job(job));
    }
    let runs = with_labels(runs, labels);
    if runs.is_empty() {
        let want: Vec<String> = labels
            .iter()
            .map(|l| format!("{}={}", l.key, l.value))
            .collect();
        return Err(Error::not_found(format!(
            "job {job:?} has no run labelled {}; see `runlog list-runs {}`",
            want.join(" and "),
            shell_quote(job)
        )));
    }
    Ok(runs)
}

/// The part of a job's runs in Redis that can hold the runs `a` lists, selected in Redis: the
/// `failed` index when only failed, crashed (or running: never in Redis) runs are wanted, the
/// scores (start, ms) around `--since`/`--until`, and `--limit` when no label filter (whose
/// values only the run hashes hold) can leave out runs of the window.
fn window(a: &ListRunsArgs, range: Range) -> Window {
    let ms = |ns: i64| ns.div_euclid(1_000_000);
    Window {
        failed_only: !a.status.is_empty()
            && a.status.iter().all(|s| {
                matches!(
                    s,
                    StatusArg::Failed | StatusArg::Crashed | StatusArg::Running
                )
            }),
        min_ms: range.since.map(ms),
        // `until` is exclusive.
        max_ms: range.until.map(|u| ms(u.saturating_sub(1))),
        newest: limit(a).filter(|_| a.filter.labels.is_empty()),
    }
}

/// `--limit`, where 0 (as for `list-jobs`) means every run.
fn limit(a: &ListRunsArgs) -> Option<usize> {
    a.limit.filter(|n| *n > 0)
}

/// One line per run, oldest first.
pub(crate) fn run(ctx: &Ctx, out: &mut Out, a: &ListRunsArgs) -> Result<(), Error> {
    let now = runlog::time::now_ns();
    let range = Range::parse(a.since.as_deref(), a.until.as_deref(), now, &ctx.zone)
        .map_err(Error::usage)?;
    let mut store = Store::open(ctx)?;
    let wanted = |r: &Run| {
        (a.status.is_empty() || a.status.iter().any(|s| s.status() == r.info.shown_status()))
            && range.contains(r.info.start_ns)
    };
    let w = window(a, range);
    let (mut runs, cut) = store.runs_in(&a.job, w)?;
    // Redis picked by coarser criteria (scores are ms; `failed` also holds crashed runs): if
    // its newest N hold a run the filters drop, older runs may be wanted, so read them all.
    // And an empty window says nothing of whether the job exists.
    let refetch = cut && runs.iter().any(|r| r.redis.is_some() && !wanted(r));
    if refetch || (runs.is_empty() && w != Window::default()) {
        runs = store.runs(&a.job)?;
    }
    if runs.is_empty() {
        return Err(store.no_such_job(&a.job));
    }
    let mut runs: Vec<Run> = with_labels(runs, &a.filter.labels)
        .into_iter()
        .filter(|r| wanted(r))
        .collect();
    if let Some(n) = limit(a) {
        let drop = runs.len().saturating_sub(n);
        runs.drain(..drop);
    }
    if ctx.json {
        for r in &runs {
            out.line(&run_json(r, now))?;
        }
    } else {
        let style = out.style;
        let rows: Vec<Vec<Cell>> = runs
            .iter()
            .map(|r| {
                let r = &r.info;
                vec![
                    Cell::new(&r.id),
                    Cell::colored(r.shown_status().as_str(), status_color(r.shown_status())),
                    Cell::new(ctx.zone.format_seconds(r.start_ns)),
                    Cell::new(format_duration(duration_ns(r, now))),
                    Cell::new(r.records.to_string()),
                    Cell::job_text(if r.host.is_empty() { "-" } else { &r.host }),
                    Cell::job_text(&format_labels(&r.labels)),
                ]
            })
            .collect();
        out.write_str(&format_table(
            &[
                "RUN", "STATUS", "START", "DURATION", "RECORDS", "HOST", "LABELS",
            ],
            &rows,
            style,
            (ctx.tty && !a.wide).then_some(MAX_CELL_WIDTH),
        ))?;
    }
    if runs
        .iter()
        .any(|r| !r.info.problems.is_empty() || r.info.dropped > 0)
    {
        out.flush()?;
        runs.iter().for_each(|r| warn_problems(&r.info));
    }
    out.flush()?;
    store.note_waiting();
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

    fn list_runs(args: &[&str]) -> ListRunsArgs {
        use clap::Parser as _;
        let a = crate::args::Args::try_parse_from(["runlog", "list-runs", "j"].iter().chain(args))
            .unwrap();
        match a.command {
            crate::args::Command::ListRuns(l) => l,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn redis_picks_from_the_failed_index_by_scores_around_the_range_and_limits_without_labels() {
        let range = |since, until| Range { since, until };
        let w = window(&list_runs(&[]), Range::default());
        assert_eq!(w, Window::default());
        let w = window(
            &list_runs(&["--status", "failed,running", "--limit", "3"]),
            range(Some(1_500_000), Some(3_000_000)),
        );
        assert_eq!(
            w,
            Window {
                failed_only: true,
                min_ms: Some(1),
                // Until 3 ms exclusive: the last nanosecond in is in 2 ms.
                max_ms: Some(2),
                newest: Some(3),
            }
        );
        let w = window(
            &list_runs(&["--status", "crashed,ok", "--limit", "3", "--label", "a=b"]),
            range(Some(-1), None),
        );
        assert_eq!((w.failed_only, w.min_ms, w.newest), (false, Some(-1), None));
    }

    #[test]
    fn runs_have_a_json_form() {
        let mut r = info(RunStatus::Ok);
        r.end_ns = Some(2_000_000_000);
        r.labels = vec![("user".into(), "bar".into())];
        let j = run_json(
            &Run {
                info: r,
                origin: crate::source::Origin::Local,
                redis: None,
            },
            0,
        );
        assert!(j.starts_with(r#"{"job":"j","id":"2026-11-28T12:10:55.123456Z-0123456789ab","status":"ok","start":"1970-01-01T00:00:01.000000Z","end":"1970-01-01T00:00:02.000000Z""#), "{j}");
        assert!(
            j.ends_with(r#""labels":{"user":"bar"},"problems":[],"source":"local","v":1}"#),
            "{j}"
        );
    }
}
