//! Helpers shared by the benchmarks (each bench binary includes this module).

use std::hint::black_box;
use std::path::{Path, PathBuf};

/// The user every benchmark record names.
pub(crate) const USER: &str = "bar";

/// `$name` parsed, or `default` when unset or empty (a value that does not parse is reported
/// and replaced by the default).
pub(crate) fn env_number<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            eprintln!("bench: {name}={v:?} is not a number; using the default");
            default
        }),
        _ => default,
    }
}

/// The mount holding `path`: (device, mount point, filesystem type).
pub(crate) fn filesystem_of(path: &Path) -> Option<(String, String, String)> {
    let path = path.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, at, fs) = (f.next()?, f.next()?, f.next()?);
            let at = at.replace("\\040", " ");
            path.starts_with(&at)
                .then(|| (dev.to_owned(), at, fs.to_owned()))
        })
        .max_by_key(|(_, at, _)| at.len())
}

/// `target/release` (the directory holding `deps/` with this binary).
pub(crate) fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// Where a bench writes: `$RUNLOG_BENCH_DIR`, or the cargo profile dir holding this binary
/// (on the disk the build lives on, never a tmpfs `/tmp` by accident).
pub(crate) fn base_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RUNLOG_BENCH_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    profile_dir().unwrap_or_else(std::env::temp_dir)
}

/// Log records `from..to` of `n`: `info!("processed item {} of {} for user {}", ..)`, the
/// record every benchmark measures.
#[inline(never)]
pub(crate) fn log_loop(from: u64, to: u64, n: u64) {
    let user = black_box(USER);
    let n = black_box(n);
    for i in from..to {
        log::info!("processed item {} of {} for user {}", i, n, user);
    }
}
