//! The library's error type.

use std::fmt;

use crate::config::ConfigError;

/// An error from building or installing a [`crate::RunLogger`] or starting a run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The filter directives are invalid.
    Filters(String),
    /// Another `log` logger is already installed.
    SetLogger(log::SetLoggerError),
    /// A job name must be 1 byte to 64 KiB.
    InvalidJobName {
        /// Length of the name given.
        len: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            Error::Filters(e) => write!(f, "invalid filters: {e}"),
            Error::SetLogger(_) => write!(
                f,
                "a `log` logger is already installed in this process; install the runlog logger \
                 once and give it the other logger with `forward_to`"
            ),
            Error::InvalidJobName { len } => write!(
                f,
                "invalid job name ({len} bytes): a job name must be 1 byte to 64 KiB long"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Config(e) => Some(e),
            Error::SetLogger(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<log::SetLoggerError> for Error {
    fn from(e: log::SetLoggerError) -> Self {
        Error::SetLogger(e)
    }
}
