//! Helpers shared by the end-to-end tests.

pub mod cli;
pub mod cluster;
pub mod crash;
pub mod crash_kills;
pub mod fuzz_checks;
pub mod redis;
pub mod sentinel;
pub mod shipper;
pub mod sigbus;
pub mod tls;
pub mod torture;
pub mod torture_proc;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

fn newest_mtime(dir: &Path, newest: &mut SystemTime) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    for ent in rd.flatten() {
        let p = ent.path();
        if p.is_dir() {
            newest_mtime(&p, newest);
        } else if let Ok(m) = ent.metadata().and_then(|m| m.modified()) {
            *newest = (*newest).max(m);
        }
    }
}

/// For the test's child processes: write `line` (with its newline) to stdout and flush it; when
/// that fails the test is gone, and the child exits with status 4.
pub fn tell_test(line: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if out
        .write_all(line.as_bytes())
        .and_then(|()| out.flush())
        .is_err()
    {
        std::process::exit(4);
    }
}

/// The workspace binary `name` of this test's target directory and profile (next to its
/// `deps/` directory). It must be built first (`cargo build --workspace`, as
/// `scripts/test.sh` does) and be newer than every file under `sources` (directories relative
/// to the workspace root): a stale binary would test old code.
pub fn workspace_binary(name: &str, sources: &[&str]) -> PathBuf {
    if let Some(p) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        return p.into();
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let exe = std::env::current_exe().expect("current_exe");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join(name))
        .filter(|p| p.exists())
        .unwrap_or_else(|| root.join("target/debug").join(name));
    assert!(
        path.exists(),
        "the {name} binary is not built ({}): run `cargo build --workspace` before the tests \
         (scripts/test.sh does both)",
        path.display()
    );
    let built = fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime of the binary");
    let mut newest = SystemTime::UNIX_EPOCH;
    for d in sources {
        newest_mtime(&root.join(d), &mut newest);
    }
    assert!(
        newest <= built,
        "the {name} binary {} is older than its sources: run `cargo build --workspace` first",
        path.display()
    );
    path
}
