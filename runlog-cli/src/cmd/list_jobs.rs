//! `runlog list-jobs`.

use crate::render::{format_start, format_table, status_color, Cell, JsonObject, Out};
use crate::source::{open_journal, read_error};
use crate::{warn, Ctx, Error};

/// One line per job: name, runs, start and status of the newest run.
pub(crate) fn run(ctx: &Ctx, out: &mut Out) -> Result<(), Error> {
    let journal = open_journal(ctx)?;
    let jobs = journal.jobs().map_err(read_error)?;
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
                .opt_str("last_status", job.last_status.map(|s| s.as_str()));
            out.line(&o.finish())?;
        }
        return Ok(());
    }
    let style = out.style;
    let rows: Vec<Vec<Cell>> = jobs
        .iter()
        .map(|job| {
            vec![
                Cell::job_text(style, &job.name),
                Cell::new(job.runs.to_string()),
                Cell::new(job.last_start_ns.map_or_else(|| "-".into(), format_start)),
                match job.last_status {
                    Some(s) => Cell::colored(s.as_str(), status_color(s)),
                    None => Cell::new("-"),
                },
            ]
        })
        .collect();
    out.write_str(&format_table(
        &["JOB", "RUNS", "LAST START", "STATUS"],
        &rows,
        style,
    ))?;
    if jobs.is_empty() {
        out.flush()?;
        warn(&format!(
            "no runs in journal {} yet",
            journal.dir().display()
        ));
    }
    Ok(())
}
