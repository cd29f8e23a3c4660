//! `runlog list-jobs`.

use crate::args::ListJobsArgs;
use crate::render::{format_table, status_color, Cell, JsonObject, Out, MAX_CELL_WIDTH};
use crate::source::Store;
use crate::{note, warn, Ctx, Error};

/// One line per job, most recently active first: name, start and status of the newest run,
/// runs kept. At most `--limit` jobs (0: all); a note on stderr tells when there are more.
pub(crate) fn run(ctx: &Ctx, out: &mut Out, a: &ListJobsArgs) -> Result<(), Error> {
    let mut store = Store::open(ctx)?;
    let limit = (a.limit > 0).then_some(a.limit);
    let (jobs, more) = store.jobs(limit)?;
    if ctx.json {
        for job in &jobs {
            let o = JsonObject::new()
                .str("job", &job.name)
                .num("runs", job.runs as u64)
                .opt_str(
                    "last_start",
                    job.last_start_ns
                        .map(runlog::time::format_micros)
                        .as_deref(),
                )
                .opt_str("last_status", job.last_status.map(|s| s.as_str()))
                .version();
            out.line(&o.finish())?;
        }
    } else {
        let style = out.style;
        let rows: Vec<Vec<Cell>> = jobs
            .iter()
            .map(|job| {
                vec![
                    Cell::job_text(&job.name),
                    Cell::new(
                        job.last_start_ns
                            .map_or_else(|| "-".into(), |ns| ctx.zone.format_seconds(ns)),
                    ),
                    match job.last_status {
                        Some(s) => Cell::colored(s.as_str(), status_color(s)),
                        None => Cell::new("-"),
                    },
                    Cell::new(job.runs.to_string()),
                ]
            })
            .collect();
        out.write_str(&format_table(
            &["JOB", "LAST START", "STATUS", "RUNS"],
            &rows,
            style,
            (ctx.tty && !a.wide).then_some(MAX_CELL_WIDTH),
        ))?;
    }
    if more {
        out.flush()?;
        note(&format!(
            "showing the {} most recently active jobs; there are more (--limit 0 shows all)",
            jobs.len()
        ));
    }
    if jobs.is_empty() {
        out.flush()?;
        warn(&format!("no runs in {} yet", store.describe()));
    }
    out.flush()?;
    store.note_waiting();
    Ok(())
}
