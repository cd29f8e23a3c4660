//! Where runs are read from: the local journal, found the way the library finds it.

use std::io;
use std::path::PathBuf;

use runlog::{Config, ConfigOverrides, ConfigSource, Journal, ReadError};

use crate::{Ctx, Error};

/// The journal directory: `--journal-dir`, else the config (`RUNLOG_JOURNAL_DIR`, the config
/// file, the built-in default), resolved exactly as the library does.
///
/// `--journal-dir` is applied after the config is resolved rather than passed as a
/// [`ConfigOverrides`] value: those are the program's defaults, below the config file and
/// `RUNLOG_*` variables, while an option typed on the command line must win over both.
fn journal_dir(ctx: &Ctx) -> Result<PathBuf, Error> {
    let source = match &ctx.config {
        Some(f) => ConfigSource::File(f.clone()),
        None => ConfigSource::Search,
    };
    if let Some(d) = &ctx.journal_dir {
        // An explicit --config is still checked, so a typo in it does not go unnoticed.
        if ctx.config.is_some() {
            Config::load(&source, &ConfigOverrides::default()).map_err(config_error)?;
        }
        return Ok(d.clone());
    }
    Ok(Config::load(&source, &ConfigOverrides::default())
        .map_err(config_error)?
        .journal_dir)
}

fn config_error(e: runlog::ConfigError) -> Error {
    Error::usage(e.to_string())
}

/// Open the journal to read.
pub(crate) fn open_journal(ctx: &Ctx) -> Result<Journal, Error> {
    let dir = journal_dir(ctx)?;
    match Journal::open(&dir) {
        Ok(j) => Ok(j),
        Err(ReadError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            Err(Error::usage(format!(
                "journal dir {} does not exist: no runs were recorded there yet, or set \
                 --journal-dir / RUNLOG_JOURNAL_DIR (or journal-dir in the config file)",
                dir.display()
            )))
        }
        Err(e) => Err(read_error(e)),
    }
}

/// A library read error as a command error: a missing job or run is a usage error (exit 2),
/// anything else a failure (exit 1).
pub(crate) fn read_error(e: ReadError) -> Error {
    match e {
        ReadError::NoSuchJob { .. } | ReadError::NoSuchRun { .. } => Error::usage(e.to_string()),
        e => Error::failed(format!("cannot read the journal: {e}")),
    }
}
