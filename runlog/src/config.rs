//! Configuration: a TOML file, `RUNLOG_*` environment variables and values set in code,
//! resolved once into a [`Config`]. `spec/config.md` is the normative description.
//!
//! Precedence, lowest first: built-in defaults, values set in code ([`ConfigOverrides`], the
//! `RunLogger` builder), the one config file found, `RUNLOG_*` environment variables.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use log::LevelFilter;

mod ini;
use serde::Deserialize;

const DEFAULT_MAX_LOGS: usize = 10;
const DEFAULT_LEVEL: LevelFilter = LevelFilter::Debug;
const DEFAULT_SEGMENT_SIZE: u64 = 2 << 20;
const MIN_SEGMENT_SIZE: u64 = 64 << 10;
const MAX_SEGMENT_SIZE: u64 = 1 << 30;
/// Same bound as `RunLogger::runlog` puts on a job name.
const MAX_JOB_NAME: usize = 64 << 10;
const SYSTEM_CONFIG: &str = "/etc/runlog/config.toml";
/// The prefix of every Redis key runlog writes when `[runlog-redis] prefix` is not set (keys are
/// `<prefix>:...`).
pub const DEFAULT_REDIS_PREFIX: &str = "runlog";
/// Longest `[runlog-redis] prefix`, in bytes.
const MAX_REDIS_PREFIX: usize = 256;
/// Longest timeout or interval accepted for the Redis and shipper durations.
const MAX_SHIPPER_DURATION: Duration = Duration::from_secs(24 * 3600);
const LOCAL_CONFIG: &str = ".runlog.toml";
/// The original Python runlog's config file, INI, in the current dir and in `$HOME`.
const SEED_CONFIG: &str = ".runlog.conf";

const FSYNC_FORMS: &str =
    "`never`, `commit`, `always` or an interval like `250ms`, `1s`, `2m` (units ns, us, ms, s, m, h)";
const LEVEL_FORMS: &str = "one of off, error, warn, info, debug, trace (any case)";
const DURATION_FORMS: &str =
    "a duration like `5s` or `250ms` (an integer and a unit: ns, us, ms, s, m, h)";
const SIZE_FORMS: &str =
    "an integer number of bytes, or a string like `\"2GiB\"` (an integer and a unit: B, KiB, \
     MiB, GiB, TiB)";
const REDIS_SCHEMES: [&str; 7] = [
    "redis",
    "rediss",
    "redis+unix",
    "unix",
    "valkey",
    "valkeys",
    "valkey+unix",
];

/// When the journal is made durable against a machine crash or power loss (`fsync`).
///
/// A record is in the kernel's page cache once its log call returns, so it survives the
/// process being killed under every policy; the policy only matters when the machine goes
/// down. Parsed from `never`, `commit`, `always` or an interval such as `250ms`, `1s` or `2m`;
/// [`Display`](fmt::Display) writes the same forms back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FsyncPolicy {
    /// Never sync; the kernel writes pages back when it likes.
    Never,
    /// Sync a run's data when the run ends (commit, failure or cancel). The default.
    #[default]
    Commit,
    /// Sync after every record (slow: a syscall per record).
    Always,
    /// Sync while records are written, at most once per interval, and when the run ends.
    /// The interval is never zero when parsed (use `always` instead).
    Interval(Duration),
}

/// Duration units, largest first: suffix and length in nanoseconds.
const UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Why a duration string did not parse.
#[derive(Debug, PartialEq, Eq)]
enum DurationError {
    /// Not `<integer><unit>`.
    Malformed,
    /// Zero.
    Zero,
    /// More than a `Duration` holds.
    TooLong,
}

/// Parse `<integer><unit>` (whitespace around and between allowed; unit `ns`, `us`, `ms`, `s`,
/// `m` or `h`, any case) into a duration longer than zero.
fn parse_duration(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(DurationError::Malformed);
    }
    let n: u128 = t[..digits].parse().map_err(|_| DurationError::TooLong)?;
    let unit = t[digits..].trim_start().to_ascii_lowercase();
    let &(_, unit_ns) = UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .ok_or(DurationError::Malformed)?;
    if n == 0 {
        return Err(DurationError::Zero);
    }
    let ns = n.checked_mul(unit_ns).ok_or(DurationError::TooLong)?;
    let secs = u64::try_from(ns / 1_000_000_000).map_err(|_| DurationError::TooLong)?;
    Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// A duration in the largest unit that divides it exactly (`1500ms`, `2m`), which
/// [`parse_duration`] parses back to the same value.
fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let (unit, len) = UNITS
        .iter()
        .find(|(_, len)| ns.is_multiple_of(*len))
        .copied()
        .unwrap_or(("ns", 1));
    format!("{}{unit}", ns / len)
}

impl FromStr for FsyncPolicy {
    type Err = String;

    /// Parse `never`, `commit`, `always` (any case) or an interval `<integer><unit>` with unit
    /// `ns`, `us`, `ms`, `s`, `m` or `h`. The error names the value and the accepted forms.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "never" => return Ok(FsyncPolicy::Never),
            "commit" => return Ok(FsyncPolicy::Commit),
            "always" => return Ok(FsyncPolicy::Always),
            _ => {}
        }
        parse_duration(s)
            .map(FsyncPolicy::Interval)
            .map_err(|e| match e {
                DurationError::Malformed => {
                    format!("invalid fsync policy {s:?}: expected {FSYNC_FORMS}")
                }
                DurationError::Zero => format!(
                    "invalid fsync policy {s:?}: an interval must be longer than zero (use \
                     `always` to sync after every record)"
                ),
                DurationError::TooLong => {
                    format!("invalid fsync policy {s:?}: the interval is too long")
                }
            })
    }
}

impl fmt::Display for FsyncPolicy {
    /// `never`, `commit`, `always`, or the interval in the largest unit that divides it
    /// exactly (`1500ms`, `2m`), which parses back to the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Commit => f.write_str("commit"),
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Interval(d) => f.write_str(&format_duration(*d)),
        }
    }
}

/// The `[runlog-redis]` table: where `runlog-shipper` and the CLI find Redis. Parsed and
/// checked here, used by those programs. Either `url`, or the separate connection fields, or
/// `cluster` (the seed nodes of a Redis Cluster).
///
/// Its presence also turns on shipping for retention: runs are kept until shipped (see
/// [`Config::max_logs`]).
///
/// `Debug` hides the password, including one inside `url`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisConfig {
    /// A connection URL: `redis://[user[:password]@]host[:port][/db]`, `rediss://` for TLS,
    /// `redis+unix:///path` for a socket.
    pub url: Option<String>,
    /// Host name or address (when `url` is not given).
    pub host: Option<String>,
    /// TCP port (1-65535).
    pub port: Option<u16>,
    /// Database number.
    pub db: Option<u32>,
    /// Seed nodes of a Redis Cluster (`redis://host:port` or `rediss://host:port` each; any
    /// reachable one tells the client the rest). Empty: not a cluster.
    pub cluster: Vec<String>,
    /// Sentinels that know where the master named [`RedisConfig::sentinel_master`] is
    /// (`redis://host:26379` each). Empty: no Sentinel.
    pub sentinels: Vec<String>,
    /// The master's name in the Sentinels' configuration (with `sentinels`).
    pub sentinel_master: Option<String>,
    /// ACL user name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Prefix of every key runlog writes in Redis (keys are `<prefix>:...`): 1 to 256 bytes,
    /// without `{` or `}`. See [`RedisConfig::prefix_or_default`].
    pub prefix: Option<String>,
    /// A file of PEM CA certificates to trust for TLS (`rediss://`, `valkeys://`), instead of
    /// the system's. Resolved: relative to the config file's directory (from a file) or the
    /// current directory (from `RUNLOG_REDIS_TLS_CA_FILE`), `~` expanded. Not checked to exist
    /// here; only for TLS connections (a URL without TLS refuses to connect with it set).
    pub tls_ca_file: Option<PathBuf>,
    /// A file with the PEM client certificate (chain) that runlog presents to a server that
    /// asks for one (mutual TLS, `tls-auth-clients yes`). Set together with
    /// [`RedisConfig::tls_key_file`] or not at all; resolved like `tls_ca_file`.
    pub tls_cert_file: Option<PathBuf>,
    /// A file with the PEM private key of [`RedisConfig::tls_cert_file`]. Only its path is
    /// held here (and printed by `Debug`), never the key.
    pub tls_key_file: Option<PathBuf>,
    /// How long to wait for a connection (and its handshake), if set; the method
    /// [`RedisConfig::connect_timeout()`] applies the default.
    pub connect_timeout: Option<Duration>,
    /// How long to wait for one command's reply, if set; the method
    /// [`RedisConfig::io_timeout()`] applies the default.
    pub io_timeout: Option<Duration>,
}

impl RedisConfig {
    /// Default connect timeout: 5 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default I/O timeout: 10 s.
    pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(10);

    /// The key prefix: `prefix`, else [`DEFAULT_REDIS_PREFIX`] (`runlog`).
    pub fn prefix_or_default(&self) -> &str {
        self.prefix.as_deref().unwrap_or(DEFAULT_REDIS_PREFIX)
    }

    /// The connect timeout: the `connect_timeout` field, else
    /// [`RedisConfig::DEFAULT_CONNECT_TIMEOUT`].
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
            .unwrap_or(Self::DEFAULT_CONNECT_TIMEOUT)
    }

    /// The I/O timeout: the `io_timeout` field, else [`RedisConfig::DEFAULT_IO_TIMEOUT`].
    pub fn io_timeout(&self) -> Duration {
        self.io_timeout.unwrap_or(Self::DEFAULT_IO_TIMEOUT)
    }
}

/// The `[runlog-shipper]` table: settings of `runlog-shipper`. Always present in a [`Config`],
/// with the defaults for what is not set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipperConfig {
    /// Largest total size, in bytes, of the segment files in the journal: above it the shipper
    /// deletes the oldest unshipped runs (default 1 GiB, at least 1 MiB).
    pub disk_budget: u64,
    /// How often the shipper rescans the journal even without a file-system event (default
    /// 5 s, at least 10 ms).
    pub rescan_interval: Duration,
    /// How many bytes of chunk data the shipper sends to Redis in one round trip (default
    /// 8 MiB, 1 KiB to 512 MiB).
    pub pipeline_size: u64,
    /// Replicas that must acknowledge an upload (Redis `WAIT`) before its runs count as
    /// shipped (default 0: the master's reply is enough; at most 64).
    pub min_replicas_acked: u32,
    /// Ship to a Redis whose `maxmemory-policy` may evict any key (`allkeys-*`), which can
    /// silently lose shipped runs (default false: such a server is refused).
    pub allow_eviction: bool,
}

impl ShipperConfig {
    /// Default [`ShipperConfig::disk_budget`]: 1 GiB.
    pub const DEFAULT_DISK_BUDGET: u64 = 1 << 30;
    /// Smallest [`ShipperConfig::disk_budget`]: 1 MiB.
    pub const MIN_DISK_BUDGET: u64 = 1 << 20;
    /// Default [`ShipperConfig::rescan_interval`]: 5 s.
    pub const DEFAULT_RESCAN_INTERVAL: Duration = Duration::from_secs(5);
    /// Shortest [`ShipperConfig::rescan_interval`]: 10 ms.
    pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_millis(10);
    /// Default [`ShipperConfig::pipeline_size`]: 8 MiB.
    pub const DEFAULT_PIPELINE_SIZE: u64 = 8 << 20;
    /// Smallest [`ShipperConfig::pipeline_size`]: 1 KiB.
    pub const MIN_PIPELINE_SIZE: u64 = 1 << 10;
    /// Largest [`ShipperConfig::pipeline_size`]: 512 MiB (Redis's largest bulk string).
    pub const MAX_PIPELINE_SIZE: u64 = 512 << 20;
    /// Largest [`ShipperConfig::min_replicas_acked`].
    pub const MAX_MIN_REPLICAS_ACKED: u32 = 64;
}

impl Default for ShipperConfig {
    fn default() -> Self {
        ShipperConfig {
            disk_budget: Self::DEFAULT_DISK_BUDGET,
            rescan_interval: Self::DEFAULT_RESCAN_INTERVAL,
            pipeline_size: Self::DEFAULT_PIPELINE_SIZE,
            min_replicas_acked: 0,
            allow_eviction: false,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("host", &self.host)
            .field("port", &self.port)
            .field("db", &self.db)
            .field(
                "cluster",
                &self
                    .cluster
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field(
                "sentinels",
                &self
                    .sentinels
                    .iter()
                    .map(|u| redact_url(u))
                    .collect::<Vec<_>>(),
            )
            .field("sentinel_master", &self.sentinel_master)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .field("tls_ca_file", &self.tls_ca_file)
            .field("tls_cert_file", &self.tls_cert_file)
            .field("tls_key_file", &self.tls_key_file)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .finish()
    }
}

/// `url` with the password of its user info and any `pass`/`password` query value replaced
/// by `***`.
fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_at = scheme_end + 3;
    let rest = &url[rest_at..];
    let mut out = url[..rest_at].to_owned();
    // The user info ends at the last `@`, not at the first `/`, `?` or `#`: a password may hold
    // those unescaped (the URL is then invalid, but the password must not be shown).
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push_str(&rest[at..]);
        }
        None => out.push_str(rest),
    }
    let Some(q) = out[rest_at..].find('?').map(|q| rest_at + q) else {
        return out;
    };
    let params: Vec<String> = out[q + 1..]
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
            _ => p.to_owned(),
        })
        .collect();
    out.truncate(q + 1);
    out.push_str(&params.join("&"));
    out
}

/// Retention of one job: a `[runlog.jobs."job name"]` table. Unset fields fall back to the
/// global values (see [`Config::max_logs_for`] and [`Config::max_failed_logs_for`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct JobConfig {
    /// Ok runs kept for this job (`max-logs`).
    pub max_logs: Option<usize>,
    /// Failed and crashed runs kept for this job (`max-failed-logs`).
    pub max_failed_logs: Option<usize>,
}

/// Which config file to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ConfigSource {
    /// The first file that exists of `$RUNLOG_CONFIG` (which must exist when set),
    /// `./.runlog.toml`, `./.runlog.conf`, `$XDG_CONFIG_HOME/runlog/config.toml` (default
    /// `~/.config`), `~/.runlog.conf` and `/etc/runlog/config.toml`. A file whose name ends in
    /// `.conf` or `.ini` is read as INI (the original Python runlog's `.runlog.conf`).
    #[default]
    Search,
    /// Exactly this file (a `--config` option); it must exist. Relative to the current dir.
    File(PathBuf),
    /// No file; defaults, code and `RUNLOG_*` variables only.
    None,
}

/// Values a program sets in code (the `RunLogger` builder). They replace the built-in
/// defaults and are overridden by the config file and by `RUNLOG_*` variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// Journal directory; a relative path is relative to the current dir.
    pub journal_dir: Option<PathBuf>,
    /// Ok runs kept per job.
    pub max_logs: Option<usize>,
    /// Failed and crashed runs kept per job.
    pub max_failed_logs: Option<usize>,
    /// When the journal is synced.
    pub fsync: Option<FsyncPolicy>,
    /// Default level of a run.
    pub level: Option<LevelFilter>,
    /// `env_logger`-style target filters.
    pub filters: Option<String>,
    /// Largest segment file size in bytes.
    pub segment_size: Option<u64>,
}

/// The resolved configuration: built-in defaults, then code, then the config file, then
/// `RUNLOG_*` environment variables. Every value has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Where runs are journaled (absolute unless the current dir was unknown).
    pub journal_dir: PathBuf,
    /// The group that shares the journal among several users (`journal-group`): the journal
    /// directory is made setgid and group-writable, and what runlog creates in it is
    /// group-readable and writable. `None`: the journal is private to its user.
    pub journal_group: Option<String>,
    /// Ok runs kept per job (default 10). While shipping is on (`redis` is set, or a shipper
    /// created `<journal>/shipper/`), older runs not shipped yet are kept too, until shipped.
    pub max_logs: usize,
    /// Failed and crashed runs kept per job (default: `max_logs`; shipping as for `max_logs`).
    pub max_failed_logs: usize,
    /// When the journal is synced (default [`FsyncPolicy::Commit`]).
    pub fsync: FsyncPolicy,
    /// Default level of a run (default `Debug`).
    pub level: LevelFilter,
    /// `env_logger`-style directives (`info,myapp=debug,hyper=warn`); empty for none.
    pub filters: String,
    /// Largest segment file size in bytes (default 2 MiB; 64 KiB to 1 GiB).
    pub segment_size: u64,
    /// Per-job retention, by job name.
    pub jobs: BTreeMap<String, JobConfig>,
    /// The `[runlog-redis]` table, or `RUNLOG_REDIS_URL` / `RUNLOG_REDIS_PREFIX` /
    /// `RUNLOG_REDIS_TLS_{CA,CERT,KEY}_FILE`. Set means shipping is on (see
    /// [`Config::max_logs`]).
    pub redis: Option<RedisConfig>,
    /// The `[runlog-shipper]` table with `RUNLOG_SHIPPER_*` applied (defaults when absent).
    pub shipper: ShipperConfig,
    /// The config file that was read, if any.
    pub source: Option<PathBuf>,
}

/// An invalid configuration. Each message names the file, key, variable or builder setting
/// and says what would be accepted.
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A config file that was named explicitly does not exist.
    NotFound {
        /// The file.
        path: PathBuf,
        /// What named it: `$RUNLOG_CONFIG` or `--config`.
        named_by: &'static str,
    },
    /// A config file exists but cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A config file is not valid TOML, has an unknown key or table, or a value of the
    /// wrong type.
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A key of a config file has an invalid value.
    InvalidKey {
        /// The file.
        path: PathBuf,
        /// The key, dotted: `runlog.fsync`.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A `RUNLOG_*` environment variable has an invalid value.
    InvalidEnv {
        /// The variable.
        var: &'static str,
        /// Its value (lossily converted to UTF-8).
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
    /// A value set in code ([`ConfigOverrides`], the builder) is invalid.
    InvalidCode {
        /// The setting (a [`ConfigOverrides`] field).
        setting: &'static str,
        /// The value.
        value: String,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotFound { path, named_by } => {
                write!(
                    f,
                    "config file {} (named by {named_by}) does not exist; ",
                    path.display()
                )?;
                if named_by.starts_with('$') {
                    write!(
                        f,
                        "create it, fix {named_by}, or unset {named_by} to search the usual places"
                    )
                } else {
                    write!(f, "create it or fix the path")
                }
            }
            ConfigError::Read { path, source } => write!(
                f,
                "cannot read config file {}: {source}; make it a readable UTF-8 file",
                path.display()
            ),
            ConfigError::Parse { path, message } => {
                write!(f, "config file {}: {message}", path.display())
            }
            ConfigError::InvalidKey {
                path,
                key,
                value,
                reason,
            } => write!(
                f,
                "config file {}: invalid `{key}` = {}: {}",
                path.display(),
                clip(value),
                clip_to(reason, MAX_REASON)
            ),
            ConfigError::InvalidEnv { var, value, reason } => write!(
                f,
                "environment variable {var}={} is invalid: {}; fix or unset it",
                clip(&format!("{value:?}")),
                clip_to(reason, MAX_REASON)
            ),
            ConfigError::InvalidCode {
                setting,
                value,
                reason,
            } => write!(
                f,
                "invalid {setting} {} set in code: {}",
                clip(value),
                clip_to(reason, MAX_REASON)
            ),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The file as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    runlog: Option<RawRunlog>,
    runlog_redis: Option<RawRedis>,
    runlog_shipper: Option<RawShipper>,
}

/// The `[runlog-redis]` table as written; checked and resolved by [`redis_from_file`].
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRedis {
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    db: Option<u32>,
    cluster: Option<Vec<String>>,
    sentinels: Option<Vec<String>>,
    sentinel_master: Option<String>,
    username: Option<String>,
    password: Option<String>,
    prefix: Option<String>,
    tls_ca_file: Option<PathBuf>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    connect_timeout: Option<toml::Value>,
    io_timeout: Option<toml::Value>,
}

/// The `[runlog-shipper]` table as written; checked by [`shipper_from_file`].
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawShipper {
    disk_budget: Option<toml::Value>,
    rescan_interval: Option<toml::Value>,
    pipeline_size: Option<toml::Value>,
    min_replicas_acked: Option<toml::Value>,
    allow_eviction: Option<toml::Value>,
}

/// The `[runlog]` table as written; strings are checked in [`Layer::from_file`] so that
/// errors can name the key.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRunlog {
    max_logs: Option<usize>,
    max_failed_logs: Option<usize>,
    journal_dir: Option<PathBuf>,
    journal_group: Option<String>,
    fsync: Option<String>,
    level: Option<String>,
    filters: Option<String>,
    segment_size: Option<u64>,
    jobs: Option<BTreeMap<String, JobConfig>>,
}

/// The settings one source (code, file or environment) gives, checked; `journal_dir` is
/// already resolved against that source's base directory.
#[derive(Default)]
struct Layer {
    journal_dir: Option<PathBuf>,
    journal_group: Option<String>,
    max_logs: Option<usize>,
    max_failed_logs: Option<usize>,
    fsync: Option<FsyncPolicy>,
    level: Option<LevelFilter>,
    filters: Option<String>,
    segment_size: Option<u64>,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// A variable's value; empty counts as unset.
fn var(env: Env<'_>, name: &str) -> Option<OsString> {
    env(name).filter(|v| !v.is_empty())
}

/// An absolute directory from a variable such as `HOME`; relative values are ignored, as the
/// XDG base directory spec asks.
fn abs_dir(env: Env<'_>, name: &str) -> Option<PathBuf> {
    var(env, name)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `~` or `~/...` expanded with `$HOME`, then a relative path joined to `base`.
fn resolve_path(p: &Path, base: &Path, env: Env<'_>) -> Result<PathBuf, String> {
    if p.as_os_str().is_empty() {
        return Err("expected a path, got an empty string".to_owned());
    }
    if let Ok(rest) = p.strip_prefix("~") {
        let home = abs_dir(env, "HOME").ok_or_else(|| {
            "a path starting with `~` needs $HOME (set to an absolute path); give an absolute \
             path instead"
                .to_owned()
        })?;
        return Ok(if rest.as_os_str().is_empty() {
            home
        } else {
            home.join(rest)
        });
    }
    Ok(base.join(p))
}

/// Check `env_logger`-style directives (the parser runs use); the error names the bad item.
fn check_filters(s: &str) -> Result<(), String> {
    crate::filter::Directives::parse(s).map(|_| ())
}

/// A group name as `groupadd` accepts it; whether it exists is checked where the journal is
/// opened.
fn check_group(g: &str) -> Result<(), String> {
    let ok = !g.is_empty()
        && g.len() <= 256
        && !g.starts_with('-')
        && g.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'$'));
    if ok {
        Ok(())
    } else {
        Err(
            "expected the name of a group (letters, digits, `_`, `-`, `.`, `$`; not starting with `-`), e.g. \"runlog\""
                .to_owned(),
        )
    }
}

fn check_segment_size(n: u64) -> Result<(), String> {
    if (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&n) {
        Ok(())
    } else {
        Err(format!(
            "expected a size in bytes from {MIN_SEGMENT_SIZE} (64 KiB) to {MAX_SEGMENT_SIZE} \
             (1 GiB); the default is {DEFAULT_SEGMENT_SIZE} (2 MiB)"
        ))
    }
}

fn parse_level(s: &str) -> Result<LevelFilter, String> {
    LevelFilter::from_str(s.trim()).map_err(|_| format!("expected {LEVEL_FORMS}"))
}

/// A list of node URLs as written, passwords hidden, for messages.
fn shown_urls(nodes: &[String]) -> String {
    format!(
        "{:?}",
        nodes.iter().map(|u| redact_url(u)).collect::<Vec<_>>()
    )
}

/// Check the seed nodes of `cluster`: one or more `redis://` or `rediss://` URLs of database 0.
fn check_cluster_nodes(nodes: &[String]) -> Result<(), String> {
    check_node_urls(nodes, "a Redis Cluster", "7000")
}

/// Check `sentinels`: one or more `redis://` or `rediss://` URLs of Sentinels.
fn check_sentinels(nodes: &[String]) -> Result<(), String> {
    check_node_urls(nodes, "a Sentinel", "26379")
}

/// One or more TCP URLs of nodes of `what` (database 0), `port` for the example.
fn check_node_urls(nodes: &[String], what: &str, port: &str) -> Result<(), String> {
    if nodes.is_empty() {
        return Err(format!(
            "expected one or more node URLs, e.g. [\"redis://10.0.0.1:{port}\", \
             \"redis://10.0.0.2:{port}\"]"
        ));
    }
    let tls_of = |n: &str| {
        let scheme = n
            .split_once("://")
            .map_or("", |(s, _)| s)
            .to_ascii_lowercase();
        matches!(scheme.as_str(), "rediss" | "valkeys")
    };
    if nodes.iter().any(|n| tls_of(n) != tls_of(&nodes[0])) {
        return Err(
            "the nodes mix TLS (rediss://) and plain (redis://) URLs; use one for all".to_owned(),
        );
    }
    for n in nodes {
        let (scheme, rest) = n.split_once("://").unwrap_or(("", ""));
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "redis" | "rediss" | "valkey" | "valkeys") {
            return Err(format!(
                "node {:?}: expected a URL like `redis://host:{port}` (schemes: redis, rediss, \
                 valkey, valkeys; {what} is reached over TCP)",
                redact_url(n)
            ));
        }
        let path = rest.split(['?', '#']).next().unwrap_or("");
        let db = path.split_once('/').map_or("", |(_, d)| d);
        if !db.is_empty() && db != "0" {
            return Err(format!(
                "node {:?}: {what} has only database 0",
                redact_url(n)
            ));
        }
    }
    Ok(())
}

fn check_redis_url(url: &str) -> Result<(), String> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if REDIS_SCHEMES.contains(&s.as_str()) => {}
        _ => {
            return Err(format!(
                "expected a URL like `redis://host:6379/0` (schemes: {})",
                REDIS_SCHEMES.join(", ")
            ))
        }
    }
    // The Redis client reads `#insecure` as "do not verify the server's certificate";
    // runlog always verifies it, so no fragment is taken (a `#` in a password must be
    // written `%23`).
    if url.contains('#') {
        return Err(
            "a URL fragment (`#...`) is not accepted: runlog always verifies the server's TLS \
             certificate (`#insecure` would turn that off); to trust a private CA set \
             `tls-ca-file`, and write a `#` in a password as `%23`"
                .to_owned(),
        );
    }
    Ok(())
}

impl Layer {
    fn from_code(code: &ConfigOverrides, cwd: &Path, env: Env<'_>) -> Result<Layer, ConfigError> {
        let bad = |setting: &'static str, value: String, reason: String| ConfigError::InvalidCode {
            setting,
            value,
            reason,
        };
        let journal_dir = match &code.journal_dir {
            Some(p) => Some(
                resolve_path(p, cwd, env)
                    .map_err(|r| bad("journal_dir", format!("{:?}", p.display()), r))?,
            ),
            None => None,
        };
        if let Some(FsyncPolicy::Interval(d)) = code.fsync {
            if d.is_zero() {
                return Err(bad(
                    "fsync",
                    "Interval(0)".to_owned(),
                    "an interval must be longer than zero (use FsyncPolicy::Always)".to_owned(),
                ));
            }
        }
        if let Some(f) = &code.filters {
            check_filters(f).map_err(|r| bad("filters", format!("{f:?}"), r))?;
        }
        if let Some(n) = code.segment_size {
            check_segment_size(n).map_err(|r| bad("segment_size", n.to_string(), r))?;
        }
        Ok(Layer {
            journal_dir,
            journal_group: None,
            max_logs: code.max_logs,
            max_failed_logs: code.max_failed_logs,
            fsync: code.fsync,
            level: code.level,
            filters: code.filters.clone(),
            segment_size: code.segment_size,
        })
    }

    fn from_file(raw: RawRunlog, path: &Path, env: Env<'_>) -> Result<Layer, ConfigError> {
        let bad = |key: &str, value: String, reason: String| ConfigError::InvalidKey {
            path: path.to_owned(),
            key: format!("runlog.{key}"),
            value,
            reason,
        };
        let base = path.parent().unwrap_or(Path::new("/"));
        let journal_dir = match raw.journal_dir {
            Some(p) => Some(
                resolve_path(&p, base, env)
                    .map_err(|r| bad("journal-dir", format!("{:?}", p.display()), r))?,
            ),
            None => None,
        };
        let fsync =
            match raw.fsync {
                Some(s) => Some(s.parse::<FsyncPolicy>().map_err(|_| {
                    bad("fsync", format!("{s:?}"), format!("expected {FSYNC_FORMS}"))
                })?),
                None => None,
            };
        let level = match raw.level {
            Some(s) => Some(parse_level(&s).map_err(|r| bad("level", format!("{s:?}"), r))?),
            None => None,
        };
        if let Some(f) = &raw.filters {
            check_filters(f).map_err(|r| bad("filters", format!("{f:?}"), r))?;
        }
        if let Some(n) = raw.segment_size {
            check_segment_size(n).map_err(|r| bad("segment-size", n.to_string(), r))?;
        }
        if let Some(g) = &raw.journal_group {
            check_group(g).map_err(|r| bad("journal-group", format!("{g:?}"), r))?;
        }
        Ok(Layer {
            journal_dir,
            journal_group: raw.journal_group,
            max_logs: raw.max_logs,
            max_failed_logs: raw.max_failed_logs,
            fsync,
            level,
            filters: raw.filters,
            segment_size: raw.segment_size,
        })
    }

    fn from_env(env: Env<'_>, cwd: &Path) -> Result<Layer, ConfigError> {
        let journal_dir = match var(env, "RUNLOG_JOURNAL_DIR") {
            Some(v) => Some(resolve_path(Path::new(&v), cwd, env).map_err(|reason| {
                ConfigError::InvalidEnv {
                    var: "RUNLOG_JOURNAL_DIR",
                    value: v.to_string_lossy().into_owned(),
                    reason,
                }
            })?),
            None => None,
        };
        let count = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| "expected a whole number of runs, 0 or more".to_owned())
        };
        let size = |s: &str| {
            let n = s.trim().parse::<u64>().map_err(|_| {
                format!(
                    "expected a size in bytes from {MIN_SEGMENT_SIZE} to {MAX_SEGMENT_SIZE}, \
                     written as digits"
                )
            })?;
            check_segment_size(n).map(|()| n)
        };
        let filters = |s: &str| check_filters(s).map(|()| s.to_owned());
        let fsync = |s: &str| {
            s.parse::<FsyncPolicy>()
                .map_err(|_| format!("expected {FSYNC_FORMS}"))
        };
        let group = |s: &str| check_group(s).map(|()| s.to_owned());
        Ok(Layer {
            journal_dir,
            journal_group: env_value(env, "RUNLOG_JOURNAL_GROUP", group)?,
            max_logs: env_value(env, "RUNLOG_MAX_LOGS", count)?,
            max_failed_logs: env_value(env, "RUNLOG_MAX_FAILED_LOGS", count)?,
            fsync: env_value(env, "RUNLOG_FSYNC", fsync)?,
            level: env_value(env, "RUNLOG_LEVEL", parse_level)?,
            filters: env_value(env, "RUNLOG_FILTERS", filters)?,
            segment_size: env_value(env, "RUNLOG_SEGMENT_SIZE", size)?,
        })
    }

    /// `self` over `below`: each setting `self` gives wins.
    fn over(self, below: Layer) -> Layer {
        Layer {
            journal_dir: self.journal_dir.or(below.journal_dir),
            journal_group: self.journal_group.or(below.journal_group),
            max_logs: self.max_logs.or(below.max_logs),
            max_failed_logs: self.max_failed_logs.or(below.max_failed_logs),
            fsync: self.fsync.or(below.fsync),
            level: self.level.or(below.level),
            filters: self.filters.or(below.filters),
            segment_size: self.segment_size.or(below.segment_size),
        }
    }
}

/// A `RUNLOG_*` variable parsed with `parse`; unset or empty is `None`.
fn env_value<T>(
    env: Env<'_>,
    name: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ConfigError> {
    let Some(v) = var(env, name) else {
        return Ok(None);
    };
    let bad = |reason: String| ConfigError::InvalidEnv {
        var: name,
        value: v.to_string_lossy().into_owned(),
        reason,
    };
    let s = v
        .to_str()
        .ok_or_else(|| bad("expected UTF-8 text".to_owned()))?;
    parse(s).map(Some).map_err(bad)
}

/// A TOML value as written, for messages.
fn shown(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn check_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() || p.len() > MAX_REDIS_PREFIX {
        return Err(format!(
            "expected 1 to {MAX_REDIS_PREFIX} bytes (keys are `<prefix>:...`; the default is \
             `{DEFAULT_REDIS_PREFIX}`)"
        ));
    }
    if p.contains(['{', '}']) {
        return Err(
            "a prefix must not contain `{` or `}`: they would make Redis Cluster hash tags of \
             runlog's keys"
                .to_owned(),
        );
    }
    Ok(())
}

/// A Redis timeout: a duration string greater than zero, at most 24 h.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if d <= MAX_SHIPPER_DURATION => Ok(d),
        Err(DurationError::Zero) => Err(format!(
            "a timeout must be longer than zero; expected {DURATION_FORMS}, at most 24h"
        )),
        _ => Err(format!(
            "expected {DURATION_FORMS}, greater than zero and at most 24h"
        )),
    }
}

/// The shipper's rescan interval: 10 ms to 24 h.
fn parse_rescan_interval(s: &str) -> Result<Duration, String> {
    match parse_duration(s) {
        Ok(d) if (ShipperConfig::MIN_RESCAN_INTERVAL..=MAX_SHIPPER_DURATION).contains(&d) => Ok(d),
        _ => Err(format!(
            "expected {DURATION_FORMS}, from 10ms to 24h (the default is {})",
            format_duration(ShipperConfig::DEFAULT_RESCAN_INTERVAL)
        )),
    }
}

/// A duration key of a file: a string parsed with `parse`.
fn duration_value(
    v: &toml::Value,
    parse: fn(&str) -> Result<Duration, String>,
) -> Result<Duration, String> {
    match v {
        toml::Value::String(s) => parse(s),
        toml::Value::Integer(_) | toml::Value::Float(_) => Err(format!(
            "write the unit: expected a string, {DURATION_FORMS}"
        )),
        _ => Err(format!("expected a string, {DURATION_FORMS}")),
    }
}

/// A size written as a string: digits, optionally followed by a unit `B`, `KiB`, `MiB`, `GiB`
/// or `TiB` (any case, whitespace allowed before it).
fn parse_size(s: &str) -> Result<u64, String> {
    let bad = || format!("expected {SIZE_FORMS}");
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err(bad());
    }
    let unit: u64 = match t[digits..].trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let too_large = || format!("the size is too large; expected {SIZE_FORMS}");
    let n: u64 = t[..digits].parse().map_err(|_| too_large())?;
    n.checked_mul(unit).ok_or_else(too_large)
}

fn check_disk_budget(n: u64) -> Result<u64, String> {
    if n < ShipperConfig::MIN_DISK_BUDGET {
        Err(format!(
            "expected at least 1 MiB ({} bytes): {SIZE_FORMS}; the default is 1GiB",
            ShipperConfig::MIN_DISK_BUDGET
        ))
    } else {
        Ok(n)
    }
}

fn parse_min_replicas_acked(s: &str) -> Result<u32, String> {
    s.trim()
        .parse::<u32>()
        .ok()
        .filter(|n| *n <= ShipperConfig::MAX_MIN_REPLICAS_ACKED)
        .ok_or_else(|| {
            format!(
                "expected a number of replicas from 0 to {}",
                ShipperConfig::MAX_MIN_REPLICAS_ACKED
            )
        })
}

fn parse_allow_eviction(s: &str) -> Result<bool, String> {
    match s.trim() {
        t if t.eq_ignore_ascii_case("true") => Ok(true),
        t if t.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(
            "expected true or false (true ships to a Redis that may evict runs; see \
                  spec/redis.md, \"Redis configuration\")"
                .to_owned(),
        ),
    }
}

fn check_pipeline_size(n: u64) -> Result<u64, String> {
    if (ShipperConfig::MIN_PIPELINE_SIZE..=ShipperConfig::MAX_PIPELINE_SIZE).contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "expected 1 KiB ({}) to 512 MiB ({}) bytes: {SIZE_FORMS}; the default is 8MiB",
            ShipperConfig::MIN_PIPELINE_SIZE,
            ShipperConfig::MAX_PIPELINE_SIZE
        ))
    }
}

/// A size of a file (`disk-budget`, `pipeline-size`): an integer or a string with a unit,
/// then `check`ed.
fn size_value(v: &toml::Value, check: fn(u64) -> Result<u64, String>) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) => {
            let n = u64::try_from(*i).map_err(|_| format!("expected {SIZE_FORMS}"))?;
            check(n)
        }
        toml::Value::String(s) => check(parse_size(s)?),
        _ => Err(format!("expected {SIZE_FORMS}")),
    }
}

/// Check and resolve `[runlog-redis]`.
fn redis_from_file(r: RawRedis, path: &Path, env: Env<'_>) -> Result<RedisConfig, ConfigError> {
    let bad = |key: &str, value: String, reason: String| ConfigError::InvalidKey {
        path: path.to_owned(),
        key: format!("runlog-redis.{key}"),
        value,
        reason,
    };
    if let Some(url) = &r.url {
        check_redis_url(url)
            .map_err(|reason| bad("url", format!("{:?}", redact_url(url)), reason))?;
        let separate = [
            ("host", r.host.is_some()),
            ("port", r.port.is_some()),
            ("db", r.db.is_some()),
            ("username", r.username.is_some()),
            ("password", r.password.is_some()),
        ];
        if let Some((key, _)) = separate.iter().find(|(_, set)| *set) {
            return Err(bad(
                "url",
                format!("{:?}", redact_url(url)),
                format!(
                    "`url` and `{key}` are both set; give either `url` or \
                     host/port/db/username/password"
                ),
            ));
        }
    }
    if let Some(nodes) = &r.cluster {
        let shown = || shown_urls(nodes);
        check_cluster_nodes(nodes).map_err(|reason| bad("cluster", shown(), reason))?;
        let single = [
            ("url", r.url.is_some()),
            ("host", r.host.is_some()),
            ("port", r.port.is_some()),
            ("db", r.db.is_some()),
        ];
        if let Some((key, _)) = single.iter().find(|(_, set)| *set) {
            return Err(bad(
                "cluster",
                shown(),
                format!(
                    "`cluster` and `{key}` are both set; give either the cluster's nodes or \
                     one server"
                ),
            ));
        }
    }
    if let Some(nodes) = &r.sentinels {
        let shown = || shown_urls(nodes);
        check_sentinels(nodes).map_err(|reason| bad("sentinels", shown(), reason))?;
        let other = [
            ("url", r.url.is_some()),
            ("host", r.host.is_some()),
            ("port", r.port.is_some()),
            ("cluster", r.cluster.is_some()),
        ];
        if let Some((key, _)) = other.iter().find(|(_, set)| *set) {
            return Err(bad(
                "sentinels",
                shown(),
                format!(
                    "`sentinels` and `{key}` are both set; the Sentinels tell where the master \
                     is (give its name as `sentinel-master`)"
                ),
            ));
        }
        if r.sentinel_master
            .as_deref()
            .is_none_or(|m| m.trim().is_empty())
        {
            return Err(bad(
                "sentinels",
                shown(),
                "`sentinel-master` is missing: the name the Sentinels know the master by \
                 (`sentinel monitor <name> ...` in their config)"
                    .to_owned(),
            ));
        }
    } else if let Some(m) = &r.sentinel_master {
        return Err(bad(
            "sentinel-master",
            format!("{m:?}"),
            "`sentinels` is missing: the Sentinels' URLs, e.g. [\"redis://10.0.0.1:26379\"]"
                .to_owned(),
        ));
    }
    if let Some(h) = &r.host {
        if h.trim().is_empty() {
            return Err(bad(
                "host",
                format!("{h:?}"),
                "expected a host name or address".to_owned(),
            ));
        }
    }
    if r.port == Some(0) {
        return Err(bad(
            "port",
            "0".to_owned(),
            "expected a port from 1 to 65535".to_owned(),
        ));
    }
    if let Some(p) = &r.prefix {
        check_prefix(p).map_err(|reason| bad("prefix", format!("{p:?}"), reason))?;
    }
    let base = path.parent().unwrap_or(Path::new("/"));
    let file = |key: &str, p: &Option<PathBuf>| match p {
        Some(p) => resolve_path(p, base, env)
            .map(Some)
            .map_err(|reason| bad(key, format!("{:?}", p.display()), reason)),
        None => Ok(None),
    };
    let tls_ca_file = file("tls-ca-file", &r.tls_ca_file)?;
    let tls_cert_file = file("tls-cert-file", &r.tls_cert_file)?;
    let tls_key_file = file("tls-key-file", &r.tls_key_file)?;
    let timeout = |key: &str, v: &Option<toml::Value>| match v {
        Some(v) => duration_value(v, parse_timeout)
            .map(Some)
            .map_err(|reason| bad(key, shown(v), reason)),
        None => Ok(None),
    };
    let connect_timeout = timeout("connect-timeout", &r.connect_timeout)?;
    let io_timeout = timeout("io-timeout", &r.io_timeout)?;
    Ok(RedisConfig {
        url: r.url,
        host: r.host,
        port: r.port,
        db: r.db,
        cluster: r.cluster.unwrap_or_default(),
        sentinels: r.sentinels.unwrap_or_default(),
        sentinel_master: r.sentinel_master,
        username: r.username,
        password: r.password,
        prefix: r.prefix,
        tls_ca_file,
        tls_cert_file,
        tls_key_file,
        connect_timeout,
        io_timeout,
    })
}

/// The `[runlog-redis]` table with `RUNLOG_REDIS_URL` (or `RUNLOG_REDIS_CLUSTER`),
/// `RUNLOG_REDIS_PREFIX` and `RUNLOG_REDIS_TLS_{CA,CERT,KEY}_FILE` applied (any of them makes a
/// table if the file has none). A URL or cluster from the environment replaces every
/// connection field of the file; the prefix, TLS files and timeouts stay. `file` is the config
/// file the table came from, for errors.
fn redis_with_env(
    from_file: Option<RedisConfig>,
    env: Env<'_>,
    cwd: &Path,
    file: Option<&Path>,
) -> Result<Option<RedisConfig>, ConfigError> {
    let url = env_value(env, "RUNLOG_REDIS_URL", |s| {
        check_redis_url(s).map(|()| s.to_owned())
    })
    .map_err(|e| match e {
        ConfigError::InvalidEnv { var, value, reason } => ConfigError::InvalidEnv {
            var,
            value: redact_url(&value),
            reason,
        },
        e => e,
    })?;
    let cluster = env_value(env, "RUNLOG_REDIS_CLUSTER", |s| {
        let nodes: Vec<String> = s
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect();
        check_cluster_nodes(&nodes).map(|()| nodes)
    })
    .map_err(|e| match e {
        ConfigError::InvalidEnv { var, value, reason } => ConfigError::InvalidEnv {
            var,
            value: value
                .split(',')
                .map(redact_url)
                .collect::<Vec<_>>()
                .join(","),
            reason,
        },
        e => e,
    })?;
    if url.is_some() && cluster.is_some() {
        return Err(ConfigError::InvalidEnv {
            var: "RUNLOG_REDIS_CLUSTER",
            value: cluster
                .unwrap_or_default()
                .iter()
                .map(|u| redact_url(u))
                .collect::<Vec<_>>()
                .join(","),
            reason: "RUNLOG_REDIS_URL is set too; set one of them".to_owned(),
        });
    }
    let prefix = env_value(env, "RUNLOG_REDIS_PREFIX", |s| {
        check_prefix(s).map(|()| s.to_owned())
    })?;
    let path_var = |name: &'static str| match var(env, name) {
        Some(v) => resolve_path(Path::new(&v), cwd, env)
            .map(Some)
            .map_err(|reason| ConfigError::InvalidEnv {
                var: name,
                value: v.to_string_lossy().into_owned(),
                reason,
            }),
        None => Ok(None),
    };
    let tls_ca_file = path_var(CA_VAR)?;
    let tls_cert_file = path_var(CERT_VAR)?;
    let tls_key_file = path_var(KEY_VAR)?;
    let from_env = (tls_cert_file.is_some(), tls_key_file.is_some());
    if url.is_none()
        && cluster.is_none()
        && prefix.is_none()
        && tls_ca_file.is_none()
        && tls_cert_file.is_none()
        && tls_key_file.is_none()
    {
        check_client_cert(from_file.as_ref(), file, from_env)?;
        return Ok(from_file);
    }
    let mut r = from_file.unwrap_or_default();
    if url.is_some() || cluster.is_some() {
        r = RedisConfig {
            url,
            cluster: cluster.unwrap_or_default(),
            prefix: r.prefix,
            tls_ca_file: r.tls_ca_file,
            tls_cert_file: r.tls_cert_file,
            tls_key_file: r.tls_key_file,
            connect_timeout: r.connect_timeout,
            io_timeout: r.io_timeout,
            ..RedisConfig::default()
        };
    }
    if prefix.is_some() {
        r.prefix = prefix;
    }
    if tls_ca_file.is_some() {
        r.tls_ca_file = tls_ca_file;
    }
    if tls_cert_file.is_some() {
        r.tls_cert_file = tls_cert_file;
    }
    if tls_key_file.is_some() {
        r.tls_key_file = tls_key_file;
    }
    check_client_cert(Some(&r), file, from_env)?;
    Ok(Some(r))
}

const CA_VAR: &str = "RUNLOG_REDIS_TLS_CA_FILE";
const CERT_VAR: &str = "RUNLOG_REDIS_TLS_CERT_FILE";
const KEY_VAR: &str = "RUNLOG_REDIS_TLS_KEY_FILE";

/// A client certificate without its key (or a key without its certificate) is an error naming
/// the one that is set, where it was set (`from_env`: whether the environment set the
/// certificate, the key), and the one that is missing.
fn check_client_cert(
    r: Option<&RedisConfig>,
    file: Option<&Path>,
    from_env: (bool, bool),
) -> Result<(), ConfigError> {
    let Some(r) = r else { return Ok(()) };
    let (set, set_key, set_var, missing_key, missing_var, by_env) =
        match (&r.tls_cert_file, &r.tls_key_file) {
            (Some(c), None) => (
                c,
                "tls-cert-file",
                CERT_VAR,
                "tls-key-file",
                KEY_VAR,
                from_env.0,
            ),
            (None, Some(k)) => (
                k,
                "tls-key-file",
                KEY_VAR,
                "tls-cert-file",
                CERT_VAR,
                from_env.1,
            ),
            _ => return Ok(()),
        };
    let reason = format!(
        "`{set_key}` is set without `{missing_key}`: a client certificate (mutual TLS) needs \
         both the PEM certificate and its PEM private key; set `{missing_key}` ({missing_var}) \
         too, or neither"
    );
    let value = format!("{:?}", set.display());
    match (by_env, file) {
        (false, Some(path)) => Err(ConfigError::InvalidKey {
            path: path.to_owned(),
            key: format!("runlog-redis.{set_key}"),
            value,
            reason,
        }),
        _ => Err(ConfigError::InvalidEnv {
            var: set_var,
            value: set.to_string_lossy().into_owned(),
            reason,
        }),
    }
}

/// Check `[runlog-shipper]`; unset keys get the defaults.
fn shipper_from_file(r: RawShipper, path: &Path) -> Result<ShipperConfig, ConfigError> {
    let bad = |key: &str, v: &toml::Value, reason: String| ConfigError::InvalidKey {
        path: path.to_owned(),
        key: format!("runlog-shipper.{key}"),
        value: shown(v),
        reason,
    };
    let mut c = ShipperConfig::default();
    if let Some(v) = &r.disk_budget {
        c.disk_budget =
            size_value(v, check_disk_budget).map_err(|reason| bad("disk-budget", v, reason))?;
    }
    if let Some(v) = &r.rescan_interval {
        c.rescan_interval = duration_value(v, parse_rescan_interval)
            .map_err(|reason| bad("rescan-interval", v, reason))?;
    }
    if let Some(v) = &r.pipeline_size {
        c.pipeline_size =
            size_value(v, check_pipeline_size).map_err(|reason| bad("pipeline-size", v, reason))?;
    }
    if let Some(v) = &r.min_replicas_acked {
        c.min_replicas_acked = match v {
            toml::Value::Integer(i) => parse_min_replicas_acked(&i.to_string()),
            _ => parse_min_replicas_acked(""),
        }
        .map_err(|reason| bad("min-replicas-acked", v, reason))?;
    }
    if let Some(v) = &r.allow_eviction {
        c.allow_eviction = match v {
            toml::Value::Boolean(b) => Ok(*b),
            _ => parse_allow_eviction(""),
        }
        .map_err(|reason| bad("allow-eviction", v, reason))?;
    }
    Ok(c)
}

/// `[runlog-shipper]` with `RUNLOG_SHIPPER_DISK_BUDGET`, `RUNLOG_SHIPPER_RESCAN_INTERVAL` and
/// `RUNLOG_SHIPPER_PIPELINE_SIZE` applied.
fn shipper_with_env(mut c: ShipperConfig, env: Env<'_>) -> Result<ShipperConfig, ConfigError> {
    if let Some(n) = env_value(env, "RUNLOG_SHIPPER_DISK_BUDGET", |s| {
        parse_size(s).and_then(check_disk_budget)
    })? {
        c.disk_budget = n;
    }
    if let Some(d) = env_value(env, "RUNLOG_SHIPPER_RESCAN_INTERVAL", parse_rescan_interval)? {
        c.rescan_interval = d;
    }
    if let Some(n) = env_value(env, "RUNLOG_SHIPPER_PIPELINE_SIZE", |s| {
        parse_size(s).and_then(check_pipeline_size)
    })? {
        c.pipeline_size = n;
    }
    if let Some(n) = env_value(
        env,
        "RUNLOG_SHIPPER_MIN_REPLICAS_ACKED",
        parse_min_replicas_acked,
    )? {
        c.min_replicas_acked = n;
    }
    if let Some(b) = env_value(env, "RUNLOG_SHIPPER_ALLOW_EVICTION", parse_allow_eviction)? {
        c.allow_eviction = b;
    }
    Ok(c)
}

/// Turn a `toml` error into one line naming the table, line and column, with a hint for an
/// unknown key or table: "unknown key `max-log` in [runlog] at line 3, column 1; expected ...".
/// Longest text from a config file (a value, a key, a parser message quoting them) that a
/// message repeats whole; a longer one keeps its head and tail (a 10 MB value in a config
/// file makes a short error, not a 10 MB one).
const MAX_SHOWN: usize = 512;

/// Longest reason (what is wrong and what is accepted, written by this module but possibly
/// quoting a value) a message repeats whole.
const MAX_REASON: usize = 1000;

/// `s`, or its head and tail around a note of how much was cut when it is over
/// [`MAX_SHOWN`] bytes.
fn clip(s: &str) -> std::borrow::Cow<'_, str> {
    clip_to(s, MAX_SHOWN)
}

/// [`clip`] with another limit.
fn clip_to(s: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if s.len() <= max {
        return s.into();
    }
    let floor = |mut i: usize| {
        while !s.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let head = floor(max / 2);
    let mut tail = floor(s.len() - max / 2);
    if tail < head {
        tail = head;
    }
    format!("{}…[{} bytes cut]…{}", &s[..head], tail - head, &s[tail..]).into()
}

fn describe_toml_error(e: &toml::de::Error, text: &str) -> String {
    let mut msg = clip(e.message().trim()).into_owned();
    // serde names Rust types; say what they mean in a config file.
    for (rust, plain) in [
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected u64", "expected a whole number, 0 or more"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u16", "expected a whole number from 0 to 65535"),
    ] {
        if let Some(head) = msg.strip_suffix(rust) {
            msg = format!("{head}{plain}");
        }
    }
    let unknown_key = msg
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(key, rest)| {
            (
                key.to_owned(),
                rest.trim_start_matches(',').trim().to_owned(),
            )
        });
    let Some(span) = e.span() else {
        return msg;
    };
    let start = span.start.min(text.len());
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_no = text[..start].matches('\n').count() + 1;
    let column = text[line_start..start].chars().count() + 1;
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = text[line_start..line_end].trim();
    let at = format!("line {line_no}, column {column}");
    let header_name = |l: &str| {
        let l = l.trim_start_matches('[');
        l[..l.find(']').unwrap_or(l.len())].trim().to_owned()
    };
    // The table the error is in: the header on the error's line, else the last one before.
    let (in_header, table) = if line.starts_with('[') {
        (true, Some(header_name(line)))
    } else {
        let before = text[..line_start].lines().rev().map(str::trim);
        (
            false,
            before.clone().find(|l| l.starts_with('[')).map(header_name),
        )
    };
    let Some((key, expected)) = unknown_key else {
        // The key whose value is wrong: what stands before the `=` of the error's line.
        let key = match line.split_once('=') {
            Some((k, _)) if !in_header && !k.trim().is_empty() => {
                format!("`{}` at ", clip(k.trim()))
            }
            _ => String::new(),
        };
        return match table {
            Some(t) => format!("{key}{at} (in [{}]): {msg}", clip(&t)),
            None => format!("{key}{at}: {msg}"),
        };
    };
    let shown_key = clip(&key);
    const HINT: &str = "fix its spelling or remove it (spec/config.md lists every key)";
    match table {
        Some(t) if in_header && t.trim_matches('"').starts_with(key.as_str()) => {
            format!("unknown table `[{}]` at {at}; {expected}; {HINT}", clip(&t))
        }
        Some(t) if in_header => format!(
            "unknown key `{shown_key}` in table header `[{}]` at {at}; {expected}; {HINT}",
            clip(&t)
        ),
        Some(t) => format!(
            "unknown key `{shown_key}` in [{}] at {at}; {expected}; {HINT}",
            clip(&t)
        ),
        None => format!("unknown key `{shown_key}` at {at}; {expected}; {HINT}"),
    }
}

/// Parse a config file's text, as INI when its name ends in `.conf` or `.ini`, else as TOML;
/// `path` is only used in messages.
fn parse_file(text: &str, path: &Path) -> Result<RawFile, ConfigError> {
    if ini::is_ini(path) {
        return ini::parse(text, path);
    }
    toml::from_str::<RawFile>(text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: describe_toml_error(&e, text),
    })
}

/// Whether a config file exists; a path that cannot be checked is an error (rather than a
/// silently skipped config).
fn exists(path: &Path) -> Result<bool, ConfigError> {
    match fs::metadata(path) {
        Ok(_) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(ConfigError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The config file to read, if any.
fn find_file(
    source: &ConfigSource,
    env: Env<'_>,
    cwd: &Path,
    system: &Path,
) -> Result<Option<PathBuf>, ConfigError> {
    let named = |path: PathBuf, named_by| {
        if exists(&path)? {
            Ok(Some(path))
        } else {
            Err(ConfigError::NotFound { path, named_by })
        }
    };
    match source {
        ConfigSource::None => Ok(None),
        ConfigSource::File(p) => named(cwd.join(p), "--config"),
        ConfigSource::Search => {
            if let Some(p) = var(env, "RUNLOG_CONFIG") {
                return named(cwd.join(p), "$RUNLOG_CONFIG");
            }
            let home = abs_dir(env, "HOME");
            let config_home = abs_dir(env, "XDG_CONFIG_HOME")
                .or_else(|| home.as_ref().map(|h| h.join(".config")));
            let candidates = [
                Some(cwd.join(LOCAL_CONFIG)),
                Some(cwd.join(SEED_CONFIG)),
                config_home.map(|d| d.join("runlog").join("config.toml")),
                home.map(|h| h.join(SEED_CONFIG)),
                Some(system.to_owned()),
            ];
            for c in candidates.into_iter().flatten() {
                if exists(&c)? {
                    return Ok(Some(c));
                }
            }
            Ok(None)
        }
    }
}

/// `$XDG_STATE_HOME/runlog`, else `$HOME/.local/state/runlog`, else `/tmp/runlog-<uid>`.
fn default_journal_dir(env: Env<'_>) -> PathBuf {
    if let Some(d) = abs_dir(env, "XDG_STATE_HOME") {
        return d.join("runlog");
    }
    if let Some(h) = abs_dir(env, "HOME") {
        return h.join(".local").join("state").join("runlog");
    }
    use std::os::unix::fs::MetadataExt;
    let uid =
        fs::metadata("/proc/self").map_or_else(|_| "unknown".to_owned(), |m| m.uid().to_string());
    PathBuf::from(format!("/tmp/runlog-{uid}"))
}

/// Resolve every layer into a [`Config`]. `file` is the path and text of the config file.
fn resolve(
    file: Option<(&Path, &str)>,
    code: &ConfigOverrides,
    env: Env<'_>,
    overrides_from_env: bool,
    cwd: &Path,
) -> Result<Config, ConfigError> {
    let code_layer = Layer::from_code(code, cwd, env)?;
    let (file_layer, jobs, redis, shipper) = match file {
        Some((path, text)) => {
            let raw = parse_file(text, path)?;
            let runlog = raw.runlog.unwrap_or_default();
            let jobs = runlog.jobs.clone().unwrap_or_default();
            if let Some(name) = jobs.keys().find(|n| n.is_empty() || n.len() > MAX_JOB_NAME) {
                return Err(ConfigError::InvalidKey {
                    path: path.to_owned(),
                    key: "runlog.jobs".to_owned(),
                    value: format!("{:?}", name.chars().take(40).collect::<String>()),
                    reason: "a job name must be 1 byte to 64 KiB long".to_owned(),
                });
            }
            let redis = match raw.runlog_redis {
                Some(r) => Some(redis_from_file(r, path, env)?),
                None => None,
            };
            let shipper = match raw.runlog_shipper {
                Some(r) => shipper_from_file(r, path)?,
                None => ShipperConfig::default(),
            };
            (Layer::from_file(runlog, path, env)?, jobs, redis, shipper)
        }
        None => (
            Layer::default(),
            BTreeMap::new(),
            None,
            ShipperConfig::default(),
        ),
    };
    let (env_layer, redis, shipper) = if overrides_from_env {
        (
            Layer::from_env(env, cwd)?,
            redis_with_env(redis, env, cwd, file.map(|(path, _)| path))?,
            shipper_with_env(shipper, env)?,
        )
    } else {
        check_client_cert(redis.as_ref(), file.map(|(path, _)| path), (false, false))?;
        (Layer::default(), redis, shipper)
    };
    let l = env_layer.over(file_layer.over(code_layer));
    let max_logs = l.max_logs.unwrap_or(DEFAULT_MAX_LOGS);
    Ok(Config {
        journal_dir: l.journal_dir.unwrap_or_else(|| default_journal_dir(env)),
        journal_group: l.journal_group,
        max_logs,
        max_failed_logs: l.max_failed_logs.unwrap_or(max_logs),
        fsync: l.fsync.unwrap_or_default(),
        level: l.level.unwrap_or(DEFAULT_LEVEL),
        filters: l.filters.unwrap_or_default(),
        segment_size: l.segment_size.unwrap_or(DEFAULT_SEGMENT_SIZE),
        jobs,
        redis,
        shipper,
        source: file.map(|(p, _)| p.to_owned()),
    })
}

/// [`Config::load_with_env`] with a replaceable system config path, for tests.
fn load_from(
    source: &ConfigSource,
    code: &ConfigOverrides,
    env: Env<'_>,
    cwd: &Path,
    system: &Path,
) -> Result<Config, ConfigError> {
    match find_file(source, env, cwd, system)? {
        Some(path) => {
            let text = fs::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            resolve(Some((&path, &text)), code, env, true, cwd)
        }
        None => resolve(None, code, env, true, cwd),
    }
}

impl Config {
    /// Resolve the configuration from the process environment and current directory; see
    /// [`Config::load_with_env`].
    pub fn load(source: &ConfigSource, code: &ConfigOverrides) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Config::load_with_env(source, code, &|k| std::env::var_os(k), &cwd)
    }

    /// Resolve the configuration: find and read at most one config file (per `source`), then
    /// apply, lowest first, the built-in defaults, `code`, the file and the `RUNLOG_*`
    /// variables. `env` looks up an environment variable (an empty value counts as unset) and
    /// `cwd` is the directory relative paths outside the file are resolved against.
    pub fn load_with_env(
        source: &ConfigSource,
        code: &ConfigOverrides,
        env: &dyn Fn(&str) -> Option<OsString>,
        cwd: &Path,
    ) -> Result<Config, ConfigError> {
        load_from(source, code, env, cwd, Path::new(SYSTEM_CONFIG))
    }

    /// Parse `text` as the config file at `origin` and apply the built-in defaults, without
    /// code values or `RUNLOG_*` variables. The default journal dir still comes from `$HOME`
    /// or `$XDG_STATE_HOME`; a relative `origin` is taken from the current directory.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        let origin = cwd.join(origin);
        let env = |k: &str| match k {
            "HOME" | "XDG_STATE_HOME" => std::env::var_os(k),
            _ => None,
        };
        resolve(
            Some((&origin, text)),
            &ConfigOverrides::default(),
            &env,
            false,
            &cwd,
        )
    }

    /// Ok runs kept for `job`: its `max-logs`, else the global one.
    pub fn max_logs_for(&self, job: &str) -> usize {
        self.jobs
            .get(job)
            .and_then(|j| j.max_logs)
            .unwrap_or(self.max_logs)
    }

    /// Failed and crashed runs kept for `job`: its `max-failed-logs`, else its own
    /// `max-logs`, else the global `max-failed-logs`.
    pub fn max_failed_logs_for(&self, job: &str) -> usize {
        let job = self.jobs.get(job);
        job.and_then(|j| j.max_failed_logs.or(j.max_logs))
            .unwrap_or(self.max_failed_logs)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// An environment holding exactly `pairs`.
    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    /// A temp dir standing for the machine: `home/`, `cwd/` and a system config path that
    /// does not exist unless a test writes it.
    struct World {
        dir: tempfile::TempDir,
    }

    impl World {
        fn new() -> World {
            let dir = tempfile::tempdir().unwrap();
            fs::create_dir_all(dir.path().join("home")).unwrap();
            fs::create_dir_all(dir.path().join("cwd")).unwrap();
            World { dir }
        }
        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }
        fn home(&self) -> String {
            self.path("home").to_str().unwrap().to_owned()
        }
        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let p = self.path(rel);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(&p, text).unwrap();
            p
        }
        fn load(
            &self,
            source: &ConfigSource,
            code: &ConfigOverrides,
            env: &[(&str, &str)],
        ) -> Result<Config, ConfigError> {
            load_from(
                source,
                code,
                &env_of(env),
                &self.path("cwd"),
                &self.path("etc/runlog/config.toml"),
            )
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        resolve(
            Some((Path::new("/cfg/dir/config.toml"), text)),
            &ConfigOverrides::default(),
            &env_of(&[("HOME", "/home/u")]),
            false,
            Path::new("/work"),
        )
    }

    // spec/config.md: `journal-group` is a group name (letters, digits, `_`, `-`, `.`, `$`), and
    // `RUNLOG_JOURNAL_GROUP` sets it over the file.
    #[test]
    fn journal_group_comes_from_the_file_or_runlog_journal_group_and_must_be_a_group_name() {
        let w = World::new();
        let home = w.home();
        let file = w.write("c.toml", "[runlog]\njournal-group = \"run.log_ops-1\"\n");
        let src = ConfigSource::File(file);
        let none = ConfigOverrides::default();
        let c = w.load(&src, &none, &[("HOME", &home)]).unwrap();
        assert_eq!(c.journal_group.as_deref(), Some("run.log_ops-1"));
        let c = w
            .load(
                &src,
                &none,
                &[("HOME", &home), ("RUNLOG_JOURNAL_GROUP", "ops")],
            )
            .unwrap();
        assert_eq!(c.journal_group.as_deref(), Some("ops"), "the variable wins");
        let c = w
            .load(
                &src,
                &none,
                &[("HOME", &home), ("RUNLOG_JOURNAL_GROUP", "host$")],
            )
            .unwrap();
        assert_eq!(
            c.journal_group.as_deref(),
            Some("host$"),
            "a machine account's group"
        );
        for bad in ["has space", "-lead", "a/b", "é"] {
            let e = w
                .load(
                    &src,
                    &none,
                    &[("HOME", &home), ("RUNLOG_JOURNAL_GROUP", bad)],
                )
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("RUNLOG_JOURNAL_GROUP") && e.contains("name of a group"),
                "{bad:?}: {e}"
            );
        }
        let bad = w.write("bad.toml", "[runlog]\njournal-group = \"a b\"\n");
        let e = w
            .load(&ConfigSource::File(bad), &none, &[("HOME", &home)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("journal-group"), "{e}");
    }

    #[test]
    fn defaults_with_no_file() {
        let w = World::new();
        let home = w.home();
        let c = w
            .load(
                &ConfigSource::Search,
                &ConfigOverrides::default(),
                &[("HOME", &home)],
            )
            .unwrap();
        assert_eq!(
            c,
            Config {
                journal_dir: w.path("home/.local/state/runlog"),
                journal_group: None,
                max_logs: 10,
                max_failed_logs: 10,
                fsync: FsyncPolicy::Commit,
                level: LevelFilter::Debug,
                filters: String::new(),
                segment_size: 2_097_152,
                jobs: BTreeMap::new(),
                redis: None,
                shipper: ShipperConfig {
                    disk_budget: 1 << 30,
                    rescan_interval: Duration::from_secs(5),
                    pipeline_size: 8 << 20,
                    min_replicas_acked: 0,
                    allow_eviction: false,
                },
                source: None,
            }
        );
    }

    #[test]
    fn default_journal_dir_prefers_xdg_state_home_then_home_then_tmp() {
        let env = env_of(&[("XDG_STATE_HOME", "/state"), ("HOME", "/home/u")]);
        assert_eq!(default_journal_dir(&env), Path::new("/state/runlog"));
        let env = env_of(&[("XDG_STATE_HOME", "relative"), ("HOME", "/home/u")]);
        assert_eq!(
            default_journal_dir(&env),
            Path::new("/home/u/.local/state/runlog")
        );
        let dir = default_journal_dir(&env_of(&[]));
        let name = dir.to_str().unwrap();
        assert!(name.starts_with("/tmp/runlog-"), "{name}");
        assert_ne!(name, "/tmp/runlog-");
    }

    #[test]
    fn every_key_of_a_file_is_parsed() {
        let c = parse(
            r#"
            [runlog]
            max-logs = 5
            max-failed-logs = 20
            journal-dir = "/var/lib/runlog"
            fsync = "250ms"
            level = "INFO"
            filters = "info,myapp=debug,hyper=warn"
            segment-size = 1_048_576

            [runlog.jobs."nightly report"]
            max-logs = 3

            [runlog.jobs.backup]
            max-failed-logs = 50

            [runlog-redis]
            host = "redis.internal"
            port = 6380
            db = 2
            username = "runlog"
            password = "s3cret"
            prefix = "rl"
            tls-ca-file = "certs/ca.pem"
            tls-cert-file = "certs/client.pem"
            tls-key-file = "/secrets/client.key"
            connect-timeout = "250ms"
            io-timeout = "1m"

            [runlog-shipper]
            disk-budget = "2GiB"
            rescan-interval = "500ms"
            pipeline-size = "64KiB"
            "#,
        )
        .unwrap();
        assert_eq!(c.max_logs, 5);
        assert_eq!(c.max_failed_logs, 20);
        assert_eq!(c.journal_dir, Path::new("/var/lib/runlog"));
        assert_eq!(c.fsync, FsyncPolicy::Interval(Duration::from_millis(250)));
        assert_eq!(c.level, LevelFilter::Info);
        assert_eq!(c.filters, "info,myapp=debug,hyper=warn");
        assert_eq!(c.segment_size, 1 << 20);
        assert_eq!(c.source.as_deref(), Some(Path::new("/cfg/dir/config.toml")));
        assert_eq!(
            c.jobs["nightly report"],
            JobConfig {
                max_logs: Some(3),
                max_failed_logs: None
            }
        );
        assert_eq!(c.jobs["backup"].max_failed_logs, Some(50));
        assert_eq!(
            c.redis,
            Some(RedisConfig {
                url: None,
                host: Some("redis.internal".into()),
                port: Some(6380),
                db: Some(2),
                cluster: Vec::new(),
                sentinels: Vec::new(),
                sentinel_master: None,
                username: Some("runlog".into()),
                password: Some("s3cret".into()),
                prefix: Some("rl".into()),
                tls_ca_file: Some("/cfg/dir/certs/ca.pem".into()),
                tls_cert_file: Some("/cfg/dir/certs/client.pem".into()),
                tls_key_file: Some("/secrets/client.key".into()),
                connect_timeout: Some(Duration::from_millis(250)),
                io_timeout: Some(Duration::from_secs(60)),
            })
        );
        assert_eq!(
            c.shipper,
            ShipperConfig {
                disk_budget: 2 << 30,
                rescan_interval: Duration::from_millis(500),
                pipeline_size: 64 << 10,
                min_replicas_acked: 0,
                allow_eviction: false,
            }
        );
        let c = parse("[runlog-redis]\nurl = \"rediss://u:p@h:6379/1\"\n").unwrap();
        assert_eq!(
            c.redis.unwrap().url.as_deref(),
            Some("rediss://u:p@h:6379/1")
        );
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let c = parse("# nothing\n").unwrap();
        assert_eq!(c.max_logs, 10);
        assert_eq!(c.journal_dir, Path::new("/home/u/.local/state/runlog"));
        assert_eq!(c.redis, None);
    }

    #[test]
    fn a_relative_journal_dir_in_a_file_is_relative_to_the_file() {
        let c = parse("[runlog]\njournal-dir = \"journal\"\n").unwrap();
        assert_eq!(c.journal_dir, Path::new("/cfg/dir/journal"));
        let c = parse("[runlog]\njournal-dir = \"~/j\"\n").unwrap();
        assert_eq!(c.journal_dir, Path::new("/home/u/j"));
    }

    #[test]
    fn relative_journal_dirs_from_env_and_code_are_relative_to_cwd() {
        let w = World::new();
        let code = ConfigOverrides {
            journal_dir: Some("from-code".into()),
            ..Default::default()
        };
        let c = w.load(&ConfigSource::None, &code, &[]).unwrap();
        assert_eq!(c.journal_dir, w.path("cwd/from-code"));
        let c = w
            .load(
                &ConfigSource::None,
                &code,
                &[("RUNLOG_JOURNAL_DIR", "from-env")],
            )
            .unwrap();
        assert_eq!(c.journal_dir, w.path("cwd/from-env"));
    }

    #[test]
    fn an_unknown_key_names_the_key_the_table_and_the_file() {
        let e = parse("[runlog]\nmax-logs = 3\nmax-log = 3\n").unwrap_err();
        assert!(matches!(e, ConfigError::Parse { .. }), "{e:?}");
        let m = e.to_string();
        assert!(m.contains("/cfg/dir/config.toml"), "{m}");
        assert!(
            m.contains("unknown key `max-log` in [runlog] at line 3"),
            "{m}"
        );
        assert!(m.contains("line 3"), "{m}");

        let m = parse("[runlog-redis]\nurl = \"redis://h\"\npasword = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("unknown key `pasword`") && m.contains("[runlog-redis]"),
            "{m}"
        );

        let m = parse("[runlog.jobs.a]\nmax-log = 1\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("unknown key `max-log`") && m.contains("[runlog.jobs.a]"),
            "{m}"
        );
    }

    #[test]
    fn an_unknown_table_is_an_error() {
        let m = parse("[runlogg]\nmax-logs = 3\n").unwrap_err().to_string();
        assert!(m.contains("unknown table `[runlogg]`"), "{m}");
        assert!(m.contains("/cfg/dir/config.toml"), "{m}");
        let m = parse("max-logs = 3\n").unwrap_err().to_string();
        assert!(m.contains("unknown key `max-logs`"), "{m}");
        let m = parse("[runlog.job.x]\nmax-logs = 3\n")
            .unwrap_err()
            .to_string();
        assert!(m.contains("`job`"), "{m}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_error_that_names_its_key() {
        let m = parse("[runlog]\nmax-logs = \"ten\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("`max-logs` at line 2, column 12 (in [runlog])"),
            "{m}"
        );
        let m = parse("[runlog.jobs]\nnightly = 3\n")
            .unwrap_err()
            .to_string();
        assert!(m.contains("`nightly` at line 2"), "{m}");
        let m = parse("[runlog]\nmax-logs = 1\nmax-logs = 2\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("`max-logs` at line 3") && m.contains("duplicate"),
            "{m}"
        );
    }

    #[test]
    fn a_huge_value_or_key_in_a_config_file_is_not_echoed_whole_in_its_error() {
        let huge = "a".repeat(10 << 20);
        for text in [
            format!("[runlog]\nlevel = \"{huge}\"\n"),
            format!("[runlog]\nmax-logs = \"{huge}\"\n"),
            format!("[runlog]\n{huge} = 1\n"),
            format!("[runlog-redis]\nprefix = \"{huge}\"\n"),
            format!("[runlog]\nfilters = \"{huge}=nope\"\n"),
        ] {
            let m = parse(&text).unwrap_err().to_string();
            assert!(m.len() < 2000, "{} bytes: {}", m.len(), &m[..300]);
            assert!(m.contains("bytes cut]"), "{m}");
        }
    }

    #[test]
    fn wrong_types_and_bad_values_name_the_key() {
        let m = parse("[runlog]\nmax-logs = -1\n").unwrap_err().to_string();
        assert!(m.contains("line 2") && m.contains("-1"), "{m}");
        let e = parse("[runlog]\nfsync = \"sometimes\"\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::InvalidKey { key, .. } if key == "runlog.fsync"),
            "{e:?}"
        );
        assert!(e.to_string().contains("\"sometimes\""), "{e}");
        let e = parse("[runlog]\nlevel = \"loud\"\n").unwrap_err();
        assert!(e.to_string().contains("`runlog.level` = \"loud\""), "{e}");
        let e = parse("[runlog]\nsegment-size = 1024\n").unwrap_err();
        assert!(
            e.to_string().contains("`runlog.segment-size` = 1024"),
            "{e}"
        );
        assert!(parse("[runlog]\nsegment-size = 1073741825\n").is_err());
        assert!(parse("[runlog]\nsegment-size = 1073741824\n").is_ok());
        assert!(parse("[runlog]\nsegment-size = 65536\n").is_ok());
        let e = parse("[runlog-redis]\nport = 0\n").unwrap_err();
        assert!(e.to_string().contains("`runlog-redis.port`"), "{e}");
        let e = parse("[runlog-redis]\nurl = \"redis://h\"\nhost = \"h\"\n").unwrap_err();
        assert!(e.to_string().contains("`url` and `host`"), "{e}");
        let e = parse("[runlog-redis]\nurl = \"http://u:pw@h\"\n").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("runlog-redis.url") && !m.contains("pw"), "{m}");
        let e = parse("[runlog.jobs.\"\"]\nmax-logs = 1\n").unwrap_err();
        assert!(e.to_string().contains("job name"), "{e}");
    }

    #[test]
    fn precedence_is_defaults_then_code_then_file_then_env() {
        let w = World::new();
        let file = w.write(
            "cfg/runlog.toml",
            "[runlog]\nmax-logs = 20\nfsync = \"always\"\nlevel = \"info\"\n",
        );
        let code = ConfigOverrides {
            max_logs: Some(5),
            fsync: Some(FsyncPolicy::Never),
            level: Some(LevelFilter::Trace),
            segment_size: Some(1 << 20),
            filters: Some("warn".into()),
            ..Default::default()
        };
        let src = ConfigSource::File(file.clone());
        let c = w.load(&src, &code, &[]).unwrap();
        assert_eq!(c.max_logs, 20, "file over code");
        assert_eq!(c.max_failed_logs, 20, "defaults to the resolved max-logs");
        assert_eq!(c.fsync, FsyncPolicy::Always);
        assert_eq!(c.level, LevelFilter::Info);
        assert_eq!(c.segment_size, 1 << 20, "code over defaults");
        assert_eq!(c.filters, "warn");
        assert_eq!(c.source.as_deref(), Some(file.as_path()));

        let c = w
            .load(
                &src,
                &code,
                &[
                    ("RUNLOG_MAX_LOGS", "7"),
                    ("RUNLOG_FSYNC", "2m"),
                    ("RUNLOG_LEVEL", "error"),
                    ("RUNLOG_FILTERS", "db=trace"),
                    ("RUNLOG_SEGMENT_SIZE", "65536"),
                    ("RUNLOG_MAX_FAILED_LOGS", "30"),
                    ("RUNLOG_JOURNAL_DIR", "/j"),
                    ("RUNLOG_REDIS_URL", "redis://r:6379"),
                    ("RUNLOG_REDIS_PREFIX", "p:"),
                ],
            )
            .unwrap();
        assert_eq!(c.max_logs, 7, "env over file");
        assert_eq!(c.max_failed_logs, 30);
        assert_eq!(c.fsync, FsyncPolicy::Interval(Duration::from_secs(120)));
        assert_eq!(c.level, LevelFilter::Error);
        assert_eq!(c.filters, "db=trace");
        assert_eq!(c.segment_size, 65536);
        assert_eq!(c.journal_dir, Path::new("/j"));
        let r = c.redis.unwrap();
        assert_eq!(r.url.as_deref(), Some("redis://r:6379"));
        assert_eq!(r.prefix.as_deref(), Some("p:"));

        // An empty variable counts as unset.
        let c = w.load(&src, &code, &[("RUNLOG_MAX_LOGS", "")]).unwrap();
        assert_eq!(c.max_logs, 20);
    }

    #[test]
    fn a_redis_url_from_env_replaces_the_connection_fields_of_the_file() {
        let w = World::new();
        let file = w.write(
            "c.toml",
            "[runlog-redis]\nhost = \"h\"\npassword = \"pw\"\nprefix = \"keep:\"\n",
        );
        let c = w
            .load(
                &ConfigSource::File(file),
                &ConfigOverrides::default(),
                &[("RUNLOG_REDIS_URL", "redis://other")],
            )
            .unwrap();
        let r = c.redis.unwrap();
        assert_eq!((r.host, r.password), (None, None));
        assert_eq!(r.url.as_deref(), Some("redis://other"));
        assert_eq!(r.prefix.as_deref(), Some("keep:"));
    }

    #[test]
    fn an_invalid_env_value_names_the_variable_and_the_value() {
        let w = World::new();
        let cases = [
            ("RUNLOG_MAX_LOGS", "ten"),
            ("RUNLOG_MAX_FAILED_LOGS", "-1"),
            ("RUNLOG_FSYNC", "sometimes"),
            ("RUNLOG_LEVEL", "verbose"),
            ("RUNLOG_FILTERS", "info,db=loud"),
            ("RUNLOG_SEGMENT_SIZE", "8MiB"),
            ("RUNLOG_SEGMENT_SIZE", "100"),
            ("RUNLOG_REDIS_URL", "localhost:6379"),
            ("RUNLOG_REDIS_PREFIX", "a{b"),
            ("RUNLOG_SHIPPER_DISK_BUDGET", "1KiB"),
            ("RUNLOG_SHIPPER_DISK_BUDGET", "lots"),
            ("RUNLOG_SHIPPER_RESCAN_INTERVAL", "1ms"),
            ("RUNLOG_SHIPPER_RESCAN_INTERVAL", "5"),
        ];
        for (var, value) in cases {
            let e = w
                .load(
                    &ConfigSource::None,
                    &ConfigOverrides::default(),
                    &[(var, value)],
                )
                .unwrap_err();
            assert!(
                matches!(&e, ConfigError::InvalidEnv { var: v, .. } if *v == var),
                "{e:?}"
            );
            let m = e.to_string();
            assert!(m.contains(var) && m.contains(value), "{m}");
        }
    }

    #[test]
    fn invalid_code_values_are_errors() {
        let w = World::new();
        for code in [
            ConfigOverrides {
                segment_size: Some(10),
                ..Default::default()
            },
            ConfigOverrides {
                filters: Some("=info".into()),
                ..Default::default()
            },
            ConfigOverrides {
                fsync: Some(FsyncPolicy::Interval(Duration::ZERO)),
                ..Default::default()
            },
        ] {
            let e = w.load(&ConfigSource::None, &code, &[]).unwrap_err();
            assert!(matches!(e, ConfigError::InvalidCode { .. }), "{e:?}");
        }
    }

    #[test]
    fn fsync_policies_parse_and_display_round_trips() {
        let ok = [
            ("never", FsyncPolicy::Never),
            ("Commit", FsyncPolicy::Commit),
            (" always ", FsyncPolicy::Always),
            ("250ms", FsyncPolicy::Interval(Duration::from_millis(250))),
            ("1s", FsyncPolicy::Interval(Duration::from_secs(1))),
            ("2m", FsyncPolicy::Interval(Duration::from_secs(120))),
            ("1h", FsyncPolicy::Interval(Duration::from_secs(3600))),
            (
                "1500 ms",
                FsyncPolicy::Interval(Duration::from_millis(1500)),
            ),
            ("10us", FsyncPolicy::Interval(Duration::from_micros(10))),
            ("7ns", FsyncPolicy::Interval(Duration::from_nanos(7))),
        ];
        for (s, p) in ok {
            assert_eq!(s.parse::<FsyncPolicy>(), Ok(p), "{s}");
            assert_eq!(p.to_string().parse::<FsyncPolicy>(), Ok(p), "{p}");
        }
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(
            FsyncPolicy::Interval(Duration::from_secs(120)).to_string(),
            "2m"
        );
        assert_eq!(FsyncPolicy::default(), FsyncPolicy::Commit);
        let max = FsyncPolicy::Interval(Duration::MAX);
        assert_eq!(max.to_string().parse::<FsyncPolicy>(), Ok(max));
        for bad in ["", "sometimes", "1", "1.5s", "-1s", "ms", "1d", "0s", "1s2"] {
            let e = bad.parse::<FsyncPolicy>().unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!("5s".parse::<FsyncPolicy>().is_ok());
        assert!("x"
            .parse::<FsyncPolicy>()
            .unwrap_err()
            .contains("`never`, `commit`, `always`"));
        assert!("99999999999999999999999h".parse::<FsyncPolicy>().is_err());
    }

    #[test]
    fn filters_are_validated_item_by_item() {
        for ok in [
            "",
            "info",
            "INFO,myapp=debug,hyper=warn",
            "myapp",
            "myapp::db=off, other = trace",
            "info,",
        ] {
            assert_eq!(check_filters(ok), Ok(()), "{ok}");
        }
        for (bad, item) in [
            ("info,db=loud", "db=loud"),
            ("=debug", "=debug"),
            ("info debug", "info debug"),
            ("a=b=c", "a=b=c"),
            ("app/foo", "app/foo"),
        ] {
            let e = check_filters(bad).unwrap_err();
            assert!(e.contains(&format!("{item:?}")), "{e}");
        }
        let e = parse("[runlog]\nfilters = \"info,db=loud\"\n").unwrap_err();
        assert!(e.to_string().contains("\"db=loud\""), "{e}");
    }

    #[test]
    fn per_job_overrides_fall_back_to_the_global_values() {
        let c = parse(
            r#"
            [runlog]
            max-logs = 10
            max-failed-logs = 30
            [runlog.jobs.a]
            max-logs = 3
            [runlog.jobs.b]
            max-failed-logs = 100
            [runlog.jobs.c]
            max-logs = 4
            max-failed-logs = 8
            "#,
        )
        .unwrap();
        assert_eq!((c.max_logs_for("a"), c.max_failed_logs_for("a")), (3, 3));
        assert_eq!((c.max_logs_for("b"), c.max_failed_logs_for("b")), (10, 100));
        assert_eq!((c.max_logs_for("c"), c.max_failed_logs_for("c")), (4, 8));
        assert_eq!((c.max_logs_for("z"), c.max_failed_logs_for("z")), (10, 30));
    }

    #[test]
    fn runlog_config_pointing_to_a_missing_file_is_an_error() {
        let w = World::new();
        w.write("cwd/.runlog.toml", "");
        let missing = w.path("nope.toml");
        let e = w
            .load(
                &ConfigSource::Search,
                &ConfigOverrides::default(),
                &[("RUNLOG_CONFIG", missing.to_str().unwrap())],
            )
            .unwrap_err();
        assert!(
            matches!(&e, ConfigError::NotFound { path, named_by: "$RUNLOG_CONFIG" } if *path == missing),
            "{e:?}"
        );
        assert!(e.to_string().contains("nope.toml"), "{e}");

        let e = w
            .load(
                &ConfigSource::File(missing.clone()),
                &ConfigOverrides::default(),
                &[],
            )
            .unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::NotFound {
                    named_by: "--config",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_search_takes_the_first_file_that_exists() {
        let w = World::new();
        let home = w.home();
        let xdg = w.path("xdg");
        let xdg = xdg.to_str().unwrap();
        let env = [("HOME", home.as_str()), ("XDG_CONFIG_HOME", xdg)];
        let none = ConfigOverrides::default();
        let found = |env: &[(&str, &str)]| {
            w.load(&ConfigSource::Search, &none, env)
                .unwrap()
                .source
                .map(|p| p.strip_prefix(w.dir.path()).unwrap().to_owned())
        };
        assert_eq!(found(&env), None);
        w.write("etc/runlog/config.toml", "[runlog]\nmax-logs = 1\n");
        assert_eq!(found(&env).unwrap(), Path::new("etc/runlog/config.toml"));
        w.write(
            "home/.config/runlog/config.toml",
            "[runlog]\nmax-logs = 2\n",
        );
        assert_eq!(
            found(&[("HOME", &home)]).unwrap(),
            Path::new("home/.config/runlog/config.toml"),
            "XDG_CONFIG_HOME defaults to ~/.config"
        );
        assert_eq!(found(&env).unwrap(), Path::new("etc/runlog/config.toml"));
        w.write("xdg/runlog/config.toml", "[runlog]\nmax-logs = 3\n");
        assert_eq!(found(&env).unwrap(), Path::new("xdg/runlog/config.toml"));
        w.write("cwd/.runlog.toml", "[runlog]\nmax-logs = 4\n");
        assert_eq!(found(&env).unwrap(), Path::new("cwd/.runlog.toml"));
        let explicit = w.write("elsewhere/runlog.toml", "[runlog]\nmax-logs = 5\n");
        let env_cfg = [
            ("RUNLOG_CONFIG", explicit.to_str().unwrap()),
            env[0],
            env[1],
        ];
        assert_eq!(found(&env_cfg).unwrap(), Path::new("elsewhere/runlog.toml"));
        let c = w.load(&ConfigSource::Search, &none, &env_cfg).unwrap();
        assert_eq!(c.max_logs, 5, "only one file is read");

        // An explicit file beats $RUNLOG_CONFIG; None reads nothing.
        let other = w.write("explicit.toml", "[runlog]\nmax-logs = 6\n");
        let c = w.load(&ConfigSource::File(other), &none, &env_cfg).unwrap();
        assert_eq!(c.max_logs, 6);
        let c = w.load(&ConfigSource::None, &none, &env_cfg).unwrap();
        assert_eq!((c.max_logs, c.source), (10, None));
    }

    #[test]
    fn a_file_that_is_not_a_file_is_a_read_error() {
        let w = World::new();
        fs::create_dir_all(w.path("cwd/.runlog.toml")).unwrap();
        let e = w
            .load(&ConfigSource::Search, &ConfigOverrides::default(), &[])
            .unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }), "{e:?}");
        assert!(e.to_string().contains(".runlog.toml"), "{e}");
    }

    #[test]
    fn debug_hides_the_password() {
        let r = RedisConfig {
            url: Some("redis://user:hunter2@h:6379/0?password=hunter3".into()),
            password: Some("hunter4".into()),
            tls_ca_file: Some("/etc/ca.pem".into()),
            tls_cert_file: Some("/etc/client.pem".into()),
            tls_key_file: Some("/etc/client.key".into()),
            io_timeout: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let d = format!("{r:?}");
        assert!(d.contains("/etc/ca.pem") && d.contains("3s"), "{d}");
        assert!(
            d.contains("tls_cert_file: Some(\"/etc/client.pem\")")
                && d.contains("tls_key_file: Some(\"/etc/client.key\")"),
            "{d}"
        );
        assert!(!d.contains("hunter"), "{d}");
        assert!(
            d.contains("***") && d.contains("user") && d.contains("h:6379/0"),
            "{d}"
        );
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://u@h"), "redis://u@h");
        assert_eq!(redact_url("redis://:pw@h/1"), "redis://:***@h/1");
        assert_eq!(
            redact_url("redis+unix:///s.sock?db=1&pass=x"),
            "redis+unix:///s.sock?db=1&pass=***"
        );
        // A password holding an unescaped `#`, `?` or `/` is still hidden whole.
        for (url, want) in [
            ("rediss://u:pa#ss@h/0", "rediss://u:***@h/0"),
            (
                "redis://u:p?w=1@h:1/0?password=z",
                "redis://u:***@h:1/0?password=***",
            ),
            ("redis://:a/b@h", "redis://:***@h"),
            (
                "redis+unix:///s?pass=x&user=a@b",
                "redis+unix:///s?pass=***&user=a@b",
            ),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }

    #[test]
    fn redis_defaults_and_accessors() {
        let r = RedisConfig::default();
        assert_eq!(r.prefix_or_default(), "runlog");
        assert_eq!(DEFAULT_REDIS_PREFIX, "runlog");
        assert_eq!(r.connect_timeout(), Duration::from_secs(5));
        assert_eq!(r.io_timeout(), Duration::from_secs(10));
        let c = parse("[runlog-redis]\nurl = \"redis://h\"\n").unwrap();
        let r = c.redis.unwrap();
        assert_eq!((r.prefix, r.tls_ca_file), (None, None));
        assert_eq!((r.connect_timeout, r.io_timeout), (None, None));
        let r = RedisConfig {
            prefix: Some("p".into()),
            connect_timeout: Some(Duration::from_millis(1)),
            io_timeout: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        assert_eq!(r.prefix_or_default(), "p");
        assert_eq!(r.connect_timeout(), Duration::from_millis(1));
        assert_eq!(r.io_timeout(), Duration::from_secs(2));
        assert_eq!(parse("").unwrap().shipper, ShipperConfig::default());
    }

    #[test]
    fn a_cluster_is_given_by_its_seed_nodes() {
        let c = parse(
            "[runlog-redis]\ncluster = [\"redis://a:7000\", \"redis://u:pw@b:7001/0\"]\n\
             username = \"shipper\"\n",
        )
        .unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.cluster, ["redis://a:7000", "redis://u:pw@b:7001/0"]);
        assert_eq!((&r.url, &r.host), (&None, &None));
        assert_eq!(r.username.as_deref(), Some("shipper"));
        assert!(!format!("{r:?}").contains("pw"), "{r:?}");
        for (bad, why) in [
            ("[]", "one or more node URLs"),
            (
                "[\"unix:///tmp/r.sock\"]",
                "a Redis Cluster is reached over TCP",
            ),
            ("[\"redis://a:7000/2\"]", "only database 0"),
            ("[\"redis://a:7000\", \"rediss://b:7000\"]", "mix TLS"),
            ("[\"a:7000\"]", "expected a URL like `redis://host:7000`"),
            ("\"redis://a:7000\"", "expected a sequence"),
        ] {
            let m = parse(&format!("[runlog-redis]\ncluster = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(m.contains("cluster") && m.contains(why), "{bad}: {m}");
        }
        for other in [
            "url = \"redis://h\"",
            "host = \"h\"",
            "port = 7000",
            "db = 1",
        ] {
            let m = parse(&format!(
                "[runlog-redis]\ncluster = [\"redis://a:7000\"]\n{other}\n"
            ))
            .unwrap_err()
            .to_string();
            let key = other.split(' ').next().unwrap();
            assert!(
                m.contains(&format!("`cluster` and `{key}` are both set")),
                "{m}"
            );
        }
        let w = World::new();
        let none = ConfigOverrides::default();
        let file = w.write(
            "c.toml",
            "[runlog-redis]\nurl = \"redis://h\"\nprefix = \"p\"\n",
        );
        let src = ConfigSource::File(file);
        let r = w
            .load(
                &src,
                &none,
                &[("RUNLOG_REDIS_CLUSTER", "redis://a:7000, redis://b:7001")],
            )
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(r.cluster, ["redis://a:7000", "redis://b:7001"]);
        assert_eq!((r.url, r.prefix.as_deref()), (None, Some("p")));
        let m = w
            .load(
                &src,
                &none,
                &[
                    ("RUNLOG_REDIS_CLUSTER", "redis://a:7000"),
                    ("RUNLOG_REDIS_URL", "redis://h"),
                ],
            )
            .unwrap_err()
            .to_string();
        assert!(m.contains("RUNLOG_REDIS_URL is set too"), "{m}");
        let m = w
            .load(
                &src,
                &none,
                &[("RUNLOG_REDIS_CLUSTER", "redis://u:secret@a:7000/3")],
            )
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("only database 0") && !m.contains("secret"),
            "{m}"
        );
    }

    #[test]
    fn sentinels_name_the_master_and_replicas_may_be_waited_for() {
        let c = parse(
            "[runlog-redis]\nsentinels = [\"redis://s1:26379\", \"redis://s2:26379\"]\n\
             sentinel-master = \"mymaster\"\npassword = \"pw\"\n\
             [runlog-shipper]\nmin-replicas-acked = 1\n",
        )
        .unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.sentinels, ["redis://s1:26379", "redis://s2:26379"]);
        assert_eq!(r.sentinel_master.as_deref(), Some("mymaster"));
        assert_eq!(c.shipper.min_replicas_acked, 1);
        assert_eq!(parse("").unwrap().shipper.min_replicas_acked, 0);
        for (text, key, why) in [
            (
                "sentinels = [\"redis://s:26379\"]",
                "sentinels",
                "`sentinel-master` is missing",
            ),
            (
                "sentinel-master = \"m\"",
                "sentinel-master",
                "`sentinels` is missing",
            ),
            (
                "sentinels = []\nsentinel-master = \"m\"",
                "sentinels",
                "one or more node URLs",
            ),
            (
                "sentinels = [\"redis://s:26379\"]\nsentinel-master = \"m\"\nurl = \"redis://h\"",
                "sentinels",
                "`sentinels` and `url` are both set",
            ),
            (
                "sentinels = [\"redis://s:26379\"]\nsentinel-master = \"m\"\ncluster = [\"redis://c:7000\"]",
                "sentinels",
                "`sentinels` and `cluster` are both set",
            ),
        ] {
            let m = parse(&format!("[runlog-redis]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                m.contains(&format!("runlog-redis.{key}")) && m.contains(why),
                "{text}: {m}"
            );
        }
        for bad in ["-1", "65", "\"1\""] {
            let m = parse(&format!("[runlog-shipper]\nmin-replicas-acked = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                m.contains("runlog-shipper.min-replicas-acked") && m.contains("from 0 to 64"),
                "{bad}: {m}"
            );
        }
        let w = World::new();
        let c = w
            .load(
                &ConfigSource::None,
                &ConfigOverrides::default(),
                &[("RUNLOG_SHIPPER_MIN_REPLICAS_ACKED", "2")],
            )
            .unwrap();
        assert_eq!(c.shipper.min_replicas_acked, 2);
    }

    #[test]
    fn tls_ca_file_is_relative_to_the_file_or_the_cwd() {
        let c = parse("[runlog-redis]\ntls-ca-file = \"/abs/ca.pem\"\n").unwrap();
        assert_eq!(
            c.redis.unwrap().tls_ca_file.unwrap(),
            Path::new("/abs/ca.pem")
        );
        let c = parse("[runlog-redis]\ntls-ca-file = \"~/ca.pem\"\n").unwrap();
        assert_eq!(
            c.redis.unwrap().tls_ca_file.unwrap(),
            Path::new("/home/u/ca.pem")
        );
        let e = parse("[runlog-redis]\ntls-ca-file = \"\"\n").unwrap_err();
        assert!(
            e.to_string().contains("`runlog-redis.tls-ca-file` = \"\""),
            "{e}"
        );

        let w = World::new();
        let file = w.write(
            "cfg/c.toml",
            "[runlog-redis]\nurl = \"rediss://h\"\ntls-ca-file = \"ca.pem\"\n\
             connect-timeout = \"2s\"\n",
        );
        let src = ConfigSource::File(file);
        let none = ConfigOverrides::default();
        let r = w.load(&src, &none, &[]).unwrap().redis.unwrap();
        assert_eq!(r.tls_ca_file.unwrap(), w.path("cfg/ca.pem"));
        let r = w
            .load(&src, &none, &[("RUNLOG_REDIS_TLS_CA_FILE", "env-ca.pem")])
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(r.tls_ca_file.unwrap(), w.path("cwd/env-ca.pem"));
        // A URL from the environment keeps the CA file and the timeouts.
        let r = w
            .load(&src, &none, &[("RUNLOG_REDIS_URL", "rediss://other")])
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(r.tls_ca_file.unwrap(), w.path("cfg/ca.pem"));
        assert_eq!(r.connect_timeout, Some(Duration::from_secs(2)));
        // The variable alone makes a `[runlog-redis]` table.
        let c = w
            .load(
                &ConfigSource::None,
                &none,
                &[("RUNLOG_REDIS_TLS_CA_FILE", "/etc/ca.pem")],
            )
            .unwrap();
        assert_eq!(
            c.redis.unwrap().tls_ca_file.unwrap(),
            Path::new("/etc/ca.pem")
        );
    }

    #[test]
    fn tls_client_cert_and_key_resolve_like_the_ca_file_and_come_in_pairs() {
        let c = parse("[runlog-redis]\ntls-cert-file = \"c.pem\"\ntls-key-file = \"~/k.pem\"\n")
            .unwrap();
        let r = c.redis.unwrap();
        assert_eq!(r.tls_cert_file.unwrap(), Path::new("/cfg/dir/c.pem"));
        assert_eq!(r.tls_key_file.unwrap(), Path::new("/home/u/k.pem"));
        let e = parse("[runlog-redis]\ntls-key-file = \"\"\n").unwrap_err();
        assert!(
            e.to_string().contains("`runlog-redis.tls-key-file` = \"\""),
            "{e}"
        );

        // One without the other: the error names the key set, the one missing and its file.
        for (set, missing) in [
            ("tls-cert-file", "tls-key-file"),
            ("tls-key-file", "tls-cert-file"),
        ] {
            let e = parse(&format!("[runlog-redis]\n{set} = \"x.pem\"\n")).unwrap_err();
            assert!(matches!(e, ConfigError::InvalidKey { .. }), "{e:?}");
            let m = e.to_string();
            assert!(
                m.contains("/cfg/dir/config.toml")
                    && m.contains(&format!("`runlog-redis.{set}` = \"/cfg/dir/x.pem\""))
                    && m.contains(&format!("set `{missing}`")),
                "{m}"
            );
        }

        let w = World::new();
        let file = w.write(
            "cfg/c.toml",
            "[runlog-redis]\nurl = \"rediss://h\"\ntls-cert-file = \"c.pem\"\n\
             tls-key-file = \"k.pem\"\n",
        );
        let src = ConfigSource::File(file);
        let none = ConfigOverrides::default();
        let r = w.load(&src, &none, &[]).unwrap().redis.unwrap();
        assert_eq!(
            (r.tls_cert_file.unwrap(), r.tls_key_file.unwrap()),
            (w.path("cfg/c.pem"), w.path("cfg/k.pem"))
        );
        // The variables win, relative to the current directory; a URL from the environment
        // keeps the files.
        let r = w
            .load(
                &src,
                &none,
                &[
                    ("RUNLOG_REDIS_TLS_CERT_FILE", "env-c.pem"),
                    ("RUNLOG_REDIS_TLS_KEY_FILE", "/k/env-k.pem"),
                    ("RUNLOG_REDIS_URL", "rediss://other"),
                ],
            )
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(
            (r.tls_cert_file.unwrap(), r.tls_key_file.unwrap()),
            (w.path("cwd/env-c.pem"), PathBuf::from("/k/env-k.pem"))
        );
        assert_eq!(r.url.as_deref(), Some("rediss://other"));
        // One variable replaces the file's file; the pair is still whole.
        let r = w
            .load(&src, &none, &[("RUNLOG_REDIS_TLS_KEY_FILE", "k2.pem")])
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(
            (r.tls_cert_file.unwrap(), r.tls_key_file.unwrap()),
            (w.path("cfg/c.pem"), w.path("cwd/k2.pem"))
        );
        // A variable alone makes a table, and must have its pair.
        let e = w
            .load(
                &ConfigSource::None,
                &none,
                &[("RUNLOG_REDIS_TLS_CERT_FILE", "/c.pem")],
            )
            .unwrap_err();
        assert!(matches!(e, ConfigError::InvalidEnv { .. }), "{e:?}");
        let m = e.to_string();
        assert!(
            m.contains("RUNLOG_REDIS_TLS_CERT_FILE=\"/c.pem\"")
                && m.contains("`tls-key-file` (RUNLOG_REDIS_TLS_KEY_FILE)"),
            "{m}"
        );
        let c = w
            .load(
                &ConfigSource::None,
                &none,
                &[
                    ("RUNLOG_REDIS_TLS_CERT_FILE", "/c.pem"),
                    ("RUNLOG_REDIS_TLS_KEY_FILE", "/k.pem"),
                ],
            )
            .unwrap();
        let r = c.redis.unwrap();
        assert_eq!(
            (r.tls_cert_file.unwrap(), r.tls_key_file.unwrap()),
            ("/c.pem".into(), "/k.pem".into())
        );
        // The file's key with the other from the environment is a pair too.
        let half = ConfigSource::File(w.write(
            "cfg/half.toml",
            "[runlog-redis]\ntls-key-file = \"k.pem\"\n",
        ));
        assert!(w.load(&half, &none, &[]).is_err());
        let r = w
            .load(&half, &none, &[("RUNLOG_REDIS_TLS_CERT_FILE", "c.pem")])
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(
            (r.tls_cert_file.unwrap(), r.tls_key_file.unwrap()),
            (w.path("cwd/c.pem"), w.path("cfg/k.pem"))
        );
    }

    #[test]
    fn a_url_fragment_is_refused_so_the_server_certificate_is_always_verified() {
        let e = parse("[runlog-redis]\nurl = \"rediss://u:pw@h:6380/0#insecure\"\n").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("`runlog-redis.url` = \"rediss://u:***@h:6380/0#insecure\"")
                && m.contains("always verifies")
                && !m.contains("pw"),
            "{m}"
        );
        let e = parse("[runlog-redis]\nurl = \"redis://u:se#cret@h/0\"\n").unwrap_err();
        assert!(
            e.to_string().contains("%23") && !e.to_string().contains("cret"),
            "{e}"
        );
        let w = World::new();
        let e = w
            .load(
                &ConfigSource::None,
                &ConfigOverrides::default(),
                &[("RUNLOG_REDIS_URL", "valkeys://h/#insecure")],
            )
            .unwrap_err();
        assert!(matches!(e, ConfigError::InvalidEnv { .. }), "{e:?}");
        assert!(e.to_string().contains("always verifies"), "{e}");
        assert!(parse("[runlog-redis]\nurl = \"rediss://h:6380/0\"\n").is_ok());
    }

    #[test]
    fn redis_timeouts_are_durations_greater_than_zero() {
        for (text, want) in [
            ("\"5s\"", Duration::from_secs(5)),
            ("\"250ms\"", Duration::from_millis(250)),
            ("\" 2 m \"", Duration::from_secs(120)),
            ("\"24h\"", Duration::from_secs(86400)),
            ("\"1ns\"", Duration::from_nanos(1)),
        ] {
            let c = parse(&format!(
                "[runlog-redis]\nconnect-timeout = {text}\nio-timeout = {text}\n"
            ))
            .unwrap();
            let r = c.redis.unwrap();
            assert_eq!((r.connect_timeout, r.io_timeout), (Some(want), Some(want)));
        }
        for key in ["connect-timeout", "io-timeout"] {
            for (bad, why) in [
                ("\"0s\"", "longer than zero"),
                ("5", "write the unit"),
                ("\"5\"", "a duration like `5s`"),
                ("\"1.5s\"", "a duration like `5s`"),
                ("\"-1s\"", "a duration like `5s`"),
                ("\"1d\"", "a duration like `5s`"),
                ("\"25h\"", "at most 24h"),
                ("\"999999999999999999999999h\"", "at most 24h"),
                ("true", "expected a string"),
            ] {
                let e = parse(&format!("[runlog-redis]\n{key} = {bad}\n")).unwrap_err();
                assert!(
                    matches!(&e, ConfigError::InvalidKey { key: k, .. } if *k == format!("runlog-redis.{key}")),
                    "{e:?}"
                );
                let m = e.to_string();
                assert!(m.contains(&format!("`runlog-redis.{key}` = {bad}")), "{m}");
                assert!(m.contains(why), "{m}");
            }
        }
    }

    #[test]
    fn the_prefix_is_checked() {
        let ok = "p".repeat(256);
        let c = parse(&format!("[runlog-redis]\nprefix = \"{ok}\"\n")).unwrap();
        assert_eq!(c.redis.unwrap().prefix_or_default(), ok);
        for (bad, why) in [
            (String::new(), "1 to 256 bytes"),
            ("p".repeat(257), "1 to 256 bytes"),
            ("run{log}".to_owned(), "hash tags"),
            ("a}".to_owned(), "`{` or `}`"),
        ] {
            let e = parse(&format!("[runlog-redis]\nprefix = \"{bad}\"\n")).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains("`runlog-redis.prefix`") && m.contains(&format!("{bad:?}")),
                "{m}"
            );
            assert!(m.contains(why), "{m}");
        }
        let w = World::new();
        let e = w
            .load(
                &ConfigSource::None,
                &ConfigOverrides::default(),
                &[("RUNLOG_REDIS_PREFIX", "{x}")],
            )
            .unwrap_err();
        assert!(
            matches!(
                &e,
                ConfigError::InvalidEnv {
                    var: "RUNLOG_REDIS_PREFIX",
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("hash tags"), "{e}");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        for (s, n) in [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512B", 512),
            ("4KiB", 4 << 10),
            ("2GiB", 2 << 30),
            (" 3 mib ", 3 << 20),
            ("1TiB", 1 << 40),
        ] {
            assert_eq!(parse_size(s), Ok(n), "{s}");
        }
        for bad in ["", "GiB", "2GB", "2 G", "1.5GiB", "-1", "2KB", "2 GiB x"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("KiB, MiB, GiB, TiB"), "{bad}: {e}");
        }
        assert!(parse_size("20000000TiB").unwrap_err().contains("too large"));
        assert!(parse_size("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn the_shipper_table_is_checked() {
        for (text, budget) in [
            ("1048576", 1 << 20),
            ("\"1MiB\"", 1 << 20),
            ("\"2GiB\"", 2 << 30),
            ("\"5000000\"", 5_000_000),
            ("10_000_000", 10_000_000),
        ] {
            let c = parse(&format!("[runlog-shipper]\ndisk-budget = {text}\n")).unwrap();
            assert_eq!(c.shipper.disk_budget, budget, "{text}");
            assert_eq!(c.shipper.rescan_interval, Duration::from_secs(5));
        }
        for (bad, why) in [
            ("1048575", "at least 1 MiB"),
            ("0", "at least 1 MiB"),
            ("\"1023KiB\"", "at least 1 MiB"),
            ("-1", "an integer number of bytes"),
            ("\"2GB\"", "an integer number of bytes"),
            ("1.5", "an integer number of bytes"),
        ] {
            let e = parse(&format!("[runlog-shipper]\ndisk-budget = {bad}\n")).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains(&format!("`runlog-shipper.disk-budget` = {bad}")),
                "{m}"
            );
            assert!(m.contains(why), "{m}");
        }
        let c = parse("[runlog-shipper]\nrescan-interval = \"10ms\"\n").unwrap();
        assert_eq!(c.shipper.rescan_interval, Duration::from_millis(10));
        for bad in ["\"9ms\"", "\"0s\"", "\"25h\"", "\"soon\"", "5"] {
            let e = parse(&format!("[runlog-shipper]\nrescan-interval = {bad}\n")).unwrap_err();
            let m = e.to_string();
            assert!(
                m.contains(&format!("`runlog-shipper.rescan-interval` = {bad}")),
                "{m}"
            );
        }
        for (text, size) in [
            ("1024", 1 << 10),
            ("\"512MiB\"", 512 << 20),
            ("\"3 KiB\"", 3 << 10),
        ] {
            let c = parse(&format!("[runlog-shipper]\npipeline-size = {text}\n")).unwrap();
            assert_eq!(c.shipper.pipeline_size, size, "{text}");
        }
        for (bad, why) in [
            ("1023", "expected 1 KiB (1024) to 512 MiB (536870912) bytes"),
            ("\"513MiB\"", "to 512 MiB"),
            ("0", "to 512 MiB"),
            ("\"8MB\"", "an integer number of bytes"),
            ("true", "an integer number of bytes"),
        ] {
            let m = parse(&format!("[runlog-shipper]\npipeline-size = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                m.contains(&format!("`runlog-shipper.pipeline-size` = {bad}")) && m.contains(why),
                "{m}"
            );
        }
        let m = parse("[runlog-shipper]\nstate-dir = \"/x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("unknown key `state-dir`") && m.contains("[runlog-shipper]"),
            "{m}"
        );
        let m = parse("[runlog-redis]\nconnect-timout = \"1s\"\n")
            .unwrap_err()
            .to_string();
        assert!(m.contains("unknown key `connect-timout`"), "{m}");
        assert!(
            m.contains("`io-timeout`"),
            "the accepted keys are listed: {m}"
        );
        let m = parse("[runlog-shippers]\n").unwrap_err().to_string();
        assert!(m.contains("`runlog-shipper`"), "{m}");
    }

    #[test]
    fn allow_eviction_is_a_boolean_from_the_file_or_the_environment() {
        assert!(!parse("").unwrap().shipper.allow_eviction);
        let c = parse("[runlog-shipper]\nallow-eviction = true\n").unwrap();
        assert!(c.shipper.allow_eviction);
        assert_eq!(c.redis, None, "it does not configure Redis");
        for bad in ["1", "\"yes\"", "\"true\""] {
            let m = parse(&format!("[runlog-shipper]\nallow-eviction = {bad}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                m.contains(&format!("`runlog-shipper.allow-eviction` = {bad}"))
                    && m.contains("expected true or false"),
                "{bad}: {m}"
            );
        }
        let m = parse("[runlog-shipper]\nallow-evictions = true\n")
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("unknown key `allow-evictions`") && m.contains("`allow-eviction`"),
            "{m}"
        );
        let w = World::new();
        let none = ConfigOverrides::default();
        for (v, want) in [("TRUE", true), ("false", false)] {
            let c = w
                .load(
                    &ConfigSource::None,
                    &none,
                    &[("RUNLOG_SHIPPER_ALLOW_EVICTION", v)],
                )
                .unwrap();
            assert_eq!(c.shipper.allow_eviction, want, "{v}");
        }
        let m = w
            .load(
                &ConfigSource::None,
                &none,
                &[("RUNLOG_SHIPPER_ALLOW_EVICTION", "1")],
            )
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("RUNLOG_SHIPPER_ALLOW_EVICTION") && m.contains("true or false"),
            "{m}"
        );
    }

    #[test]
    fn shipper_settings_from_the_environment() {
        let w = World::new();
        let file = w.write(
            "c.toml",
            "[runlog-shipper]\ndisk-budget = \"4GiB\"\nrescan-interval = \"1s\"\n",
        );
        let src = ConfigSource::File(file);
        let none = ConfigOverrides::default();
        let c = w.load(&src, &none, &[]).unwrap();
        assert_eq!(c.shipper.disk_budget, 4 << 30);
        let c = w
            .load(
                &src,
                &none,
                &[
                    ("RUNLOG_SHIPPER_DISK_BUDGET", "3MiB"),
                    ("RUNLOG_SHIPPER_RESCAN_INTERVAL", "20ms"),
                    ("RUNLOG_SHIPPER_PIPELINE_SIZE", "16KiB"),
                ],
            )
            .unwrap();
        assert_eq!(
            c.shipper,
            ShipperConfig {
                disk_budget: 3 << 20,
                rescan_interval: Duration::from_millis(20),
                pipeline_size: 16 << 10,
                min_replicas_acked: 0,
                allow_eviction: false,
            }
        );
        assert_eq!(c.redis, None, "shipper settings do not configure Redis");
        let c = w
            .load(&src, &none, &[("RUNLOG_SHIPPER_DISK_BUDGET", "2097152")])
            .unwrap();
        assert_eq!(c.shipper.disk_budget, 2 << 20);
        assert_eq!(c.shipper.rescan_interval, Duration::from_secs(1));
        assert_eq!(c.shipper.pipeline_size, 8 << 20);
        let m = w
            .load(&src, &none, &[("RUNLOG_SHIPPER_PIPELINE_SIZE", "100")])
            .unwrap_err()
            .to_string();
        assert!(
            m.contains("RUNLOG_SHIPPER_PIPELINE_SIZE") && m.contains("to 512 MiB"),
            "{m}"
        );
    }
}
