//! Child processes, a private `redis-server`, release binaries of the workspace, and the
//! median/min/max of repeats: shared by the benches that drive real binaries (`shipper`,
//! `cli`). Included with `#[path = "common/procs.rs"] mod procs;` by those benches only, so
//! `hotpath` does not compile code it does not use.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::profile_dir;

/// Median, min and max (non-finite values left out).
pub(crate) fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let med = match v.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => v[k / 2],
        k => (v[k / 2 - 1] + v[k / 2]) / 2.0,
    };
    (
        med,
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "-".to_owned();
    }
    let s = format!("{:.0}", x);
    let (sign, digits) = s.strip_prefix('-').map_or(("", s.as_str()), |d| ("-", d));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// `key=value` pairs of a `RESULT ...` line.
pub(crate) fn parse_result(stdout: &str) -> Option<BTreeMap<String, String>> {
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT "))?;
    Some(
        line.split_whitespace()
            .filter_map(|kv| {
                let (k, v) = kv.split_once('=')?;
                Some((k.to_owned(), v.to_owned()))
            })
            .collect(),
    )
}

/// Run this bench's own executable as a job (`--write-journal <journal> <args>...`, a child
/// with runlog installed) and check that it wrote `records` records and dropped none. Returns
/// its `RESULT` pairs.
pub(crate) fn write_journal(
    exe: &Path,
    journal: &Path,
    args: &[String],
    records: u64,
) -> Result<BTreeMap<String, String>, String> {
    let out = clean_command(exe)
        .arg("--write-journal")
        .arg(journal)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r = parse_result(&stdout)
        .filter(|_| out.status.success())
        .ok_or_else(|| format!("writing the journal failed ({}): {stdout}", out.status))?;
    if r.get("written").and_then(|v| v.parse::<u64>().ok()) != Some(records)
        || r.get("dropped").map(String::as_str) != Some("0")
    {
        return Err(format!("writing the journal: {stdout}"));
    }
    Ok(r)
}

/// Run `runlog-shipper --once --config CONFIG` to its end, with `RUST_LOG=warn` and no stdin:
/// `cmd` is the shipper's binary, or a program that runs it (e.g. `peakrss OUT SHIPPER`).
/// Returns the wall time in seconds, or an error with its stderr if it failed.
#[allow(dead_code)] // Not every bench ships.
pub(crate) fn ship_once(cmd: &mut Command, config: &Path) -> Result<f64, String> {
    let t0 = Instant::now();
    let out = cmd
        .arg("--once")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))?;
    let wall = t0.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "runlog-shipper --once failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(wall)
}

/// One run of `job` in the installed `rl`: level INFO, label `user`, `records` records of
/// [`crate::common::log_loop`]; (records written, records dropped).
#[allow(dead_code)] // Not every bench writes runs this way.
pub(crate) fn log_one_run(rl: &runlog::RunLogger, job: &str, records: u64) -> (u64, u64) {
    let run = rl
        .runlog(job)
        .unwrap_or_else(|e| panic!("cannot start a run: {e}"));
    run.set_level(log::LevelFilter::Info);
    run.label("user", crate::common::USER);
    crate::common::log_loop(0, records, records);
    (run.records(), run.dropped())
}

/// A command with runlog's own variables removed (they would override the bench's settings),
/// ended when this process dies.
pub(crate) fn clean_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    die_with_parent(&mut cmd);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("RUNLOG_") && !k.starts_with("RUNLOG_BENCH_") {
            cmd.env_remove(&*k);
        }
    }
    cmd
}

/// The child gets SIGTERM when this process dies (a bench interrupted with Ctrl-C or killed
/// leaves no `redis-server` or shipper daemon behind).
pub(crate) fn die_with_parent(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: prctl(2) is async-signal-safe; the closure touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

fn send_signal(child: &Child, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(child.id()) else {
        return;
    };
    // SAFETY: kill(2) on the pid of a child this process spawned and has not reaped yet.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// SIGTERM, then SIGKILL after `grace`; reaps the child.
pub(crate) fn stop_child(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    if let Ok(Some(st)) = child.try_wait() {
        return Some(st);
    }
    send_signal(child, libc::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// The last `lines` lines of a text file.
pub(crate) fn tail_of(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `TOOL --version`; a clear error when it is missing.
pub(crate) fn tool_version(tool: &str) -> Result<String, String> {
    match Command::new(tool).arg("--version").output() {
        Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "{tool} is not installed; install redis-server and redis-tools \
             (Debian/Ubuntu: `sudo apt-get install redis-server redis-tools`; the bench starts \
             its own server on a free port and never uses the one on 6379)"
        )),
        Err(e) => Err(format!("cannot run {tool}: {e}")),
    }
}

/// A free loopback port, never 6379.
pub(crate) fn free_port() -> Result<u16, String> {
    for _ in 0..20 {
        let l = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        if port != 6379 {
            return Ok(port);
        }
    }
    Err("no free port on 127.0.0.1".to_owned())
}

/// Our own `redis-server`, stopped by pid when dropped.
pub(crate) struct RedisServer {
    pub(crate) child: Child,
    pub(crate) port: u16,
    log: PathBuf,
    pub(crate) version: String,
}

impl RedisServer {
    /// Start `redis-server` on a free loopback port without persistence, its files in
    /// `dir`, and wait until it answers PING. `tools` (e.g. `redis-cli`) must be installed
    /// too.
    pub(crate) fn start(dir: &Path, tools: &[&str]) -> Result<RedisServer, String> {
        RedisServer::start_with(dir, tools, &[])
    }

    /// [`RedisServer::start`] with extra `redis-server` arguments (a cluster node's).
    #[allow(dead_code)] // Not every bench starts cluster nodes.
    pub(crate) fn start_with(
        dir: &Path,
        tools: &[&str],
        extra: &[&str],
    ) -> Result<RedisServer, String> {
        let version = tool_version("redis-server")?;
        for t in tools {
            tool_version(t)?;
        }
        let port = free_port()?;
        let log = dir.join("redis-server.log");
        let out = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = die_with_parent(&mut Command::new("redis-server"))
            .arg("--port")
            .arg(port.to_string())
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--dir"])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let mut server = RedisServer {
            child,
            port,
            log,
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(st)) = server.child.try_wait() {
                return Err(format!(
                    "redis-server on port {port} exited ({st}):\n{}",
                    tail_of(&server.log, 20)
                ));
            }
            if let Ok(mut c) = server.conn() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(server);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server on port {port} did not answer PING in 10 s:\n{}",
                    tail_of(&server.log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A new connection.
    pub(crate) fn conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(5))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// Release binaries of the workspace, as `(package, binary, override variable)`: each is
/// `$<override variable>` when that is set, else built with
/// `$CARGO build --release -p PACKAGE --bin BINARY ...` (one cargo call for all; a no-op when
/// they are up to date) and taken from the artifacts cargo reports, i.e. `target/release/`.
pub(crate) fn release_binaries(wanted: &[(&str, &str, &str)]) -> Result<Vec<PathBuf>, String> {
    let overrides: Vec<Option<PathBuf>> = wanted
        .iter()
        .map(|(_, _, var)| {
            std::env::var_os(var)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
        })
        .collect();
    let to_build: Vec<&(&str, &str, &str)> = wanted
        .iter()
        .zip(&overrides)
        .filter(|(_, o)| o.is_none())
        .map(|(w, _)| w)
        .collect();
    let mut built: BTreeMap<String, PathBuf> = BTreeMap::new();
    if !to_build.is_empty() {
        let cargo = std::env::var_os("CARGO")
            .or_else(|| option_env!("CARGO").map(Into::into))
            .unwrap_or_else(|| "cargo".into());
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap_or(Path::new("."));
        let mut cmd = Command::new(&cargo);
        // Variables `cargo bench` sets for this binary: some build scripts (ring's) rerun when
        // they change, so passing them on would rebuild the release dependencies here and
        // again in the next plain `cargo build --release`.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("CARGO_PKG_")
                || k.starts_with("CARGO_MANIFEST_")
                || matches!(
                    &*k,
                    "CARGO_CRATE_NAME"
                        | "CARGO_BIN_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "CARGO_RUSTC_CURRENT_DIR"
                        | "OUT_DIR"
                )
            {
                cmd.env_remove(&*k);
            }
        }
        cmd.args(["build", "--release"]);
        for (package, bin, _) in &to_build {
            cmd.args(["-p", package, "--bin", bin]);
        }
        let what: Vec<String> = to_build
            .iter()
            .map(|(p, b, _)| format!("-p {p} --bin {b}"))
            .collect();
        let out = cmd
            .arg("--message-format=json-render-diagnostics")
            .current_dir(workspace)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", Path::new(&cargo).display()))?;
        if !out.status.success() {
            let vars: Vec<&str> = to_build.iter().map(|(_, _, v)| *v).collect();
            return Err(format!(
                "`cargo build --release {}` failed ({}); set {} to use other binaries",
                what.join(" "),
                out.status,
                vars.join(", ")
            ));
        }
        // The artifact message of each binary names its path.
        let stdout = String::from_utf8_lossy(&out.stdout);
        for line in stdout
            .lines()
            .filter(|l| l.contains("\"compiler-artifact\""))
        {
            let Some(rest) = line.split("\"executable\":\"").nth(1) else {
                continue;
            };
            let Some(path) = rest.split('"').next() else {
                continue;
            };
            let path = PathBuf::from(path);
            if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                built.insert(name.to_owned(), path.clone());
            }
        }
    }
    wanted
        .iter()
        .zip(overrides)
        .map(|((_, bin, _), o)| {
            let path = o
                .or_else(|| built.get(*bin).cloned())
                .or_else(|| profile_dir().map(|d| d.join(bin)))
                .ok_or_else(|| format!("cannot find the {bin} binary"))?;
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!("{} is not a file", path.display()))
            }
        })
        .collect()
}
