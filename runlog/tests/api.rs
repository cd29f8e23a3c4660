//! The library contract from the brief, run against a real journal in a temp dir.

use std::path::Path;
use std::sync::Once;

use log::LevelFilter;
use runlog::{Journal, Record, RunLogger, RunStatus};

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let rl = RunLogger::builder()
            .journal_dir(std::env::temp_dir().join("runlog-api-test-unused"))
            .no_config_file()
            .build()
            .unwrap();
        rl.install().unwrap();
    });
}

fn logger(dir: &Path) -> RunLogger {
    logger_with(dir, |b| b)
}

/// A logger on `dir` with more settings.
fn logger_with(dir: &Path, f: impl FnOnce(runlog::Builder) -> runlog::Builder) -> RunLogger {
    install();
    f(RunLogger::builder().journal_dir(dir).no_config_file())
        .build()
        .unwrap()
}

fn messages(recs: &[Record]) -> Vec<String> {
    recs.iter().map(|r| r.message.clone()).collect()
}

fn only_run(j: &Journal, job: &str) -> runlog::RunLog {
    let runs = j.runs(job).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    j.read_run(job, &runs[0].id).unwrap()
}

#[test]
fn records_inside_a_run_are_kept_and_outside_are_not() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    log::info!("outside before");
    let id;
    {
        let run = rl.runlog("recurring-job-32").unwrap();
        id = run.id().to_owned();
        run.set_level(LevelFilter::Debug);
        run.label("user", "bar");
        log::debug!("You will see this in the log of a run of this job.");
        log::trace!("but not this: the run level is debug");
        log::info!(user = "bar", n = 3; "with {} fields", 2);
    }
    log::error!("outside after");
    let j = rl.journal().unwrap();
    let log = only_run(&j, "recurring-job-32");
    assert_eq!(log.info.id, id);
    assert_eq!(log.info.status, RunStatus::Ok);
    assert_eq!(log.info.labels, vec![("user".into(), "bar".into())]);
    assert_eq!(
        messages(&log.records),
        vec![
            "You will see this in the log of a run of this job.",
            "with 2 fields"
        ]
    );
    assert_eq!(
        log.records[1].kvs,
        vec![("user".into(), "bar".into()), ("n".into(), "3".into())]
    );
    assert_eq!(log.records[0].level, log::Level::Debug);
    assert!(log.records[0]
        .file
        .as_deref()
        .unwrap()
        .ends_with("tests/api.rs"));
    assert!(log.info.end_ns.unwrap() >= log.info.start_ns);
    assert!(id.starts_with(&runlog::time::format_micros(log.info.start_ns)));
    assert_eq!(log.info.records, 2);
}

#[test]
fn a_cancelled_run_is_forgotten_and_its_files_removed() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let run = rl.runlog("boring").unwrap();
    log::info!("nothing happened");
    run.cancel();
    log::info!("after cancel");
    let j = rl.journal().unwrap();
    assert!(j.runs("boring").unwrap().is_empty());
    let dir = tmp.path().join("jobs").join("boring");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_panic_is_recorded_with_backtrace_and_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let r = std::panic::catch_unwind(|| {
        let _run = rl.runlog("panicky").unwrap();
        log::info!("about to fail");
        let v: Vec<u32> = Vec::new();
        #[allow(clippy::no_effect_underscore_binding)]
        let _x = v[3];
    });
    assert!(r.is_err(), "the panic must go on");
    let log = only_run(&rl.journal().unwrap(), "panicky");
    assert_eq!(log.info.status, RunStatus::Failed);
    let m = messages(&log.records);
    assert_eq!(m[0], "about to fail");
    assert!(
        m[1].contains("panicked at") && m[1].contains("index out of bounds"),
        "{m:?}"
    );
    assert!(m[1].contains("tests/api.rs"), "{m:?}");
    assert!(m[2].starts_with("stack backtrace:"), "{m:?}");
    assert_eq!(log.records[1].target, "runlog::panic");
}

#[derive(Debug)]
struct Outer(std::io::Error);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "could not load the user")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[test]
fn the_closure_form_records_the_error_chain_and_returns_it_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let res: Result<u32, Outer> = rl.run("closure", |run| {
        run.label("user", "bar");
        log::warn!("trying");
        Err(Outer(std::io::Error::other("connection refused")))
    });
    let e = res.unwrap_err();
    assert_eq!(e.0.to_string(), "connection refused");
    let log = only_run(&rl.journal().unwrap(), "closure");
    assert_eq!(log.info.status, RunStatus::Failed);
    assert_eq!(
        log.records.last().unwrap().message,
        "run failed: could not load the user\ncaused by: connection refused"
    );
    let ok: Result<u32, Outer> = rl.run("closure", |_| Ok(7));
    assert_eq!(ok.unwrap(), 7);
    let runs = rl.journal().unwrap().runs("closure").unwrap();
    assert_eq!(runs[1].status, RunStatus::Ok);
}

#[test]
fn nested_runs_stack_and_the_outer_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    {
        let _outer = rl.runlog("outer").unwrap();
        log::info!("outer 1");
        {
            let _inner = rl.runlog("inner").unwrap();
            log::info!("inner 1");
        }
        log::info!("outer 2");
    }
    let j = rl.journal().unwrap();
    assert_eq!(
        messages(&only_run(&j, "outer").records),
        vec!["outer 1", "outer 2"]
    );
    assert_eq!(messages(&only_run(&j, "inner").records), vec!["inner 1"]);
}

#[test]
fn attached_threads_join_the_run_and_unattached_ones_do_not_leak() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    {
        let run = rl.runlog("threads").unwrap();
        run.scope(|s| {
            for i in 0..4 {
                s.spawn(move || {
                    for k in 0..100 {
                        log::info!("worker {i} record {k}");
                    }
                });
            }
        });
        std::thread::spawn(|| log::info!("unattached"))
            .join()
            .unwrap();
        let h = run.handle();
        std::thread::spawn(move || {
            let _g = h.enter();
            log::info!("via handle");
        })
        .join()
        .unwrap();
    }
    let log = only_run(&rl.journal().unwrap(), "threads");
    let m = messages(&log.records);
    assert_eq!(m.len(), 401, "{m:?}");
    assert!(!m.iter().any(|x| x == "unattached"));
    assert!(m.iter().any(|x| x == "via handle"));
    for i in 0..4 {
        let mine: Vec<_> = m
            .iter()
            .filter(|x| x.starts_with(&format!("worker {i} ")))
            .collect();
        let want: Vec<_> = (0..100).map(|k| format!("worker {i} record {k}")).collect();
        assert_eq!(mine, want.iter().collect::<Vec<_>>());
    }
}

#[test]
fn a_future_moved_between_runtime_threads_stays_in_its_run() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    {
        let run = rl.runlog("async").unwrap();
        let fut = run.handle().instrument(async {
            for i in 0..20 {
                log::info!("step {i}");
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        });
        rt.block_on(async { tokio::spawn(fut).await.unwrap() });
        rt.block_on(async {
            tokio::spawn(async { log::info!("other task") })
                .await
                .unwrap()
        });
    }
    let log = only_run(&rl.journal().unwrap(), "async");
    let want: Vec<String> = (0..20).map(|i| format!("step {i}")).collect();
    assert_eq!(messages(&log.records), want);
}

#[test]
fn retention_keeps_the_last_max_logs_runs_and_failed_ones_separately() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger_with(tmp.path(), |b| b.max_logs(3).max_failed_logs(2));
    let mut ok_ids = Vec::new();
    let mut failed_ids = Vec::new();
    for i in 0..7 {
        let run = rl.runlog("kept").unwrap();
        log::info!("run {i}");
        if i % 2 == 1 {
            run.fail();
            failed_ids.push(run.id().to_owned());
        } else {
            ok_ids.push(run.id().to_owned());
        }
    }
    let runs = rl.journal().unwrap().runs("kept").unwrap();
    let got: Vec<_> = runs.iter().map(|r| r.id.clone()).collect();
    let mut want: Vec<_> = ok_ids[ok_ids.len() - 3..].to_vec();
    want.extend_from_slice(&failed_ids[failed_ids.len() - 2..]);
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn hostile_job_names_stay_inside_the_journal_and_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("j");
    let rl = logger(&journal);
    let long = "é".repeat(5000);
    let names = [
        "../../etc/passwd",
        "a/b",
        "nul\0byte",
        "..",
        ".",
        long.as_str(),
        "ünï ✓ {x}",
    ];
    for n in names {
        let _r = rl.runlog(n).unwrap();
        log::info!("in {}", n.len());
    }
    let j = rl.journal().unwrap();
    let jobs: Vec<String> = j.jobs().unwrap().into_iter().map(|j| j.name).collect();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(jobs, want);
    for n in names {
        assert_eq!(only_run(&j, n).records.len(), 1);
    }
    // Nothing was created outside the journal dir.
    let outside: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("j")]);
    assert!(rl.runlog("").is_err());
}

#[test]
fn journal_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let journal = tmp.path().join("j");
    let rl = logger(&journal);
    {
        let _r = rl.runlog("private").unwrap();
        log::info!("secret");
    }
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&journal), 0o700);
    assert_eq!(mode(&journal.join("jobs")), 0o700);
    let jd = journal.join("jobs").join("private");
    assert_eq!(mode(&jd), 0o700);
    for e in std::fs::read_dir(&jd).unwrap() {
        assert_eq!(mode(&e.unwrap().path()), 0o600);
    }
}

#[test]
fn an_unwritable_journal_never_fails_the_job_and_counts_drops() {
    let tmp = tempfile::tempdir().unwrap();
    // A file where the journal dir should be: nothing can be created under it (even as root).
    let blocker = tmp.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let rl = logger(&blocker);
    let run = rl.runlog("nowhere").unwrap();
    log::info!("dropped 1");
    log::info!("dropped 2");
    assert!(!run.is_recording());
    assert_eq!(run.dropped(), 2);
    drop(run);
}

#[test]
fn large_runs_roll_into_several_segments_and_read_back_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger_with(tmp.path(), |b| b.segment_size(64 << 10));
    let big = "x".repeat(200_000);
    {
        let _r = rl.runlog("big").unwrap();
        for i in 0..5000 {
            log::info!("record number {i} with some padding to fill segments");
        }
        log::info!("{big}");
        log::info!("after big");
    }
    let log = only_run(&rl.journal().unwrap(), "big");
    assert!(log.info.segments.len() > 5, "{}", log.info.segments.len());
    assert!(log.info.problems.is_empty(), "{:?}", log.info.problems);
    assert_eq!(log.records.len(), 5002);
    for (i, r) in log.records[..5000].iter().enumerate() {
        assert_eq!(
            r.message,
            format!("record number {i} with some padding to fill segments")
        );
    }
    // Larger than a whole segment: it gets a segment of its own, whole.
    let whole = &log.records[5000];
    assert!(!whole.truncated);
    assert_eq!(whole.message, big);
    assert_eq!(log.records[5001].message, "after big");
}

#[test]
fn a_display_impl_that_logs_or_panics_does_not_deadlock_the_run() {
    struct Loud;
    impl std::fmt::Display for Loud {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            log::info!("logged from inside Display");
            write!(f, "loud")
        }
    }
    struct Bomb;
    impl std::fmt::Display for Bomb {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            panic!("boom in Display")
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    {
        let _r = rl.runlog("reentrant").unwrap();
        log::info!("value is {}", Loud);
        let _ = std::panic::catch_unwind(|| log::info!("bomb {}", Bomb));
        log::info!("still logging");
    }
    let log = only_run(&rl.journal().unwrap(), "reentrant");
    let m = messages(&log.records);
    assert_eq!(m.first().map(String::as_str), Some("value is loud"));
    assert_eq!(m.last().map(String::as_str), Some("still logging"));
    // The record being formatted is lost; the panic is recorded and fails the run, even though
    // the job caught it.
    assert!(m.iter().any(|x| x.contains("boom in Display")), "{m:?}");
    assert_eq!(log.info.status, RunStatus::Failed);
}

#[test]
fn target_filters_from_the_config_apply_inside_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger_with(tmp.path(), |b| {
        b.filters("info,noisy=warn,chatty::db=trace")
    });
    {
        let run = rl.runlog("filtered").unwrap();
        assert_eq!(
            run.level(),
            LevelFilter::Info,
            "the bare directive is the run's level"
        );
        log::debug!("dropped: default is info");
        log::info!("kept: info");
        log::info!(target: "noisy::http", "dropped: noisy is warn");
        log::warn!(target: "noisy", "kept: noisy warn");
        log::trace!(target: "chatty::db::pool", "kept: chatty::db is trace");
        run.set_level(LevelFilter::Debug);
        log::debug!("kept: run level raised to debug");
        log::info!(target: "noisy", "dropped: target directives still apply");
    }
    let m = messages(&only_run(&rl.journal().unwrap(), "filtered").records);
    assert!(m.iter().all(|x| x.starts_with("kept")), "{m:?}");
    assert_eq!(m.len(), 4, "{m:?}");
}

#[test]
fn every_fsync_policy_writes_a_readable_run() {
    use runlog::FsyncPolicy;
    use std::time::Duration;
    install();
    for policy in [
        FsyncPolicy::Never,
        FsyncPolicy::Commit,
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::from_millis(1)),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let rl = RunLogger::builder()
            .journal_dir(tmp.path())
            .no_config_file()
            .fsync(policy)
            .segment_size(64 << 10)
            .build()
            .unwrap();
        {
            let _r = rl.runlog("durable").unwrap();
            for i in 0..3000 {
                log::info!("record {i} under {policy}");
            }
        }
        let log = only_run(&rl.journal().unwrap(), "durable");
        assert_eq!(log.records.len(), 3000, "{policy}");
        assert!(
            log.info.problems.is_empty(),
            "{policy}: {:?}",
            log.info.problems
        );
        assert!(log.info.segments.len() > 2, "{policy}");
    }
}

#[test]
fn a_running_run_is_listed_as_running_with_its_records_so_far() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let run = rl.runlog("ongoing").unwrap();
    log::info!("first");
    log::info!("second");
    let j = rl.journal().unwrap();
    let log = only_run(&j, "ongoing");
    assert_eq!(log.info.status, RunStatus::Running);
    assert_eq!(messages(&log.records), vec!["first", "second"]);
    drop(run);
    assert_eq!(only_run(&j, "ongoing").info.status, RunStatus::Ok);
}

#[test]
fn a_record_over_the_frame_limit_is_cut_keeping_its_message_and_flagged() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let huge = "m".repeat(3 << 20);
    let big_value = "v".repeat(100 << 10);
    {
        let _r = rl.runlog("huge").unwrap();
        log::info!(big = big_value.as_str(), small = 1; "{huge}");
        log::info!("after");
    }
    let log = only_run(&rl.journal().unwrap(), "huge");
    let cut = &log.records[0];
    assert!(cut.truncated);
    // The key-values are cut to their cap, and the message still gets most of the frame: its
    // head and its tail around a marker saying how much was cut.
    assert!(cut.message.len() > 400 << 10, "{}", cut.message.len());
    let (head, n, tail) =
        runlog::journal::payload::split_cut_message(&cut.message).expect("a cut marker");
    assert!(huge.starts_with(head) && huge.ends_with(tail));
    assert_eq!(head.len() as u64 + n + tail.len() as u64, huge.len() as u64);
    assert!(tail.len() > 100 << 10, "{}", tail.len());
    assert_eq!(cut.kvs[0].0, "big");
    assert!(big_value.starts_with(&cut.kvs[0].1) && !cut.kvs[0].1.is_empty());
    assert_eq!(log.records[1].message, "after");
}

#[test]
fn a_display_that_labels_the_run_or_takes_a_lock_another_logging_thread_holds_does_not_deadlock() {
    use std::sync::{Arc, Barrier, Mutex};
    struct Labels<'a>(&'a runlog::RunHandle);
    impl std::fmt::Display for Labels<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.0.label("from", "display");
            write!(f, "labelled")
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let m = Arc::new(Mutex::new(()));
    {
        let run = rl.runlog("no-deadlock").unwrap();
        let h = run.handle();
        log::info!("{}", Labels(&h));
        // Thread A holds M while logging; thread B logs a value whose Display takes M.
        struct TakesLock(Arc<Mutex<()>>);
        impl std::fmt::Display for TakesLock {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let _g = self.0.lock().unwrap();
                write!(f, "took the lock")
            }
        }
        let barrier = Arc::new(Barrier::new(2));
        run.scope(|s| {
            let (m1, b1) = (m.clone(), barrier.clone());
            s.spawn(move || {
                let _g = m1.lock().unwrap();
                b1.wait();
                for i in 0..2000 {
                    log::info!("a {i}");
                }
            });
            let (m2, b2) = (m.clone(), barrier.clone());
            s.spawn(move || {
                b2.wait();
                for _ in 0..50 {
                    log::info!("b {}", TakesLock(m2.clone()));
                }
            });
        });
    }
    let log = only_run(&rl.journal().unwrap(), "no-deadlock");
    assert_eq!(log.records.len(), 1 + 2000 + 50);
    assert_eq!(log.info.labels, vec![("from".into(), "display".into())]);
}

#[test]
fn a_panic_in_an_attached_thread_fails_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    {
        let run = rl.runlog("worker-panic").unwrap();
        let h = run.handle();
        let r = std::thread::spawn(move || {
            let _g = h.enter();
            panic!("worker blew up");
        })
        .join();
        assert!(r.is_err());
    }
    let log = only_run(&rl.journal().unwrap(), "worker-panic");
    assert_eq!(log.info.status, RunStatus::Failed);
    assert!(log.records[0].message.contains("worker blew up"));
}

#[test]
fn the_closure_form_takes_boxed_errors_too() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    type BoxError = Box<dyn std::error::Error + Send + Sync>;
    let res: Result<(), BoxError> = rl.run_dyn("boxed", |_| {
        Err(Box::new(Outer(std::io::Error::other("disk on fire"))) as BoxError)
    });
    assert!(res.is_err());
    let res: Result<(), Box<dyn std::error::Error>> =
        rl.run_dyn("boxed", |_| Err("plain message".into()));
    assert_eq!(res.unwrap_err().to_string(), "plain message");
    let runs = rl.journal().unwrap().runs("boxed").unwrap();
    let j = rl.journal().unwrap();
    let first = j.read_run("boxed", &runs[0].id).unwrap();
    assert_eq!(
        first.records.last().unwrap().message,
        "run failed: could not load the user\ncaused by: disk on fire"
    );
    assert_eq!(runs[1].status, RunStatus::Failed);
}

#[test]
fn a_record_whose_key_values_fill_half_the_frame_is_flagged_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger(tmp.path());
    let v = "v".repeat(60 << 10);
    {
        let _r = rl.runlog("many-kvs").unwrap();
        log::info!(
            a = v.as_str(), b = v.as_str(), c = v.as_str(), d = v.as_str(), e = v.as_str(),
            f = v.as_str(), g = v.as_str(), h = v.as_str(), i = v.as_str(), j = v.as_str(),
            k = v.as_str(), l = v.as_str(), m = v.as_str(), n = v.as_str(), o = v.as_str(),
            p = v.as_str(), q = v.as_str(), r = v.as_str(), s = v.as_str(), t = v.as_str();
            "short message"
        );
    }
    let log = only_run(&rl.journal().unwrap(), "many-kvs");
    let rec = &log.records[0];
    assert_eq!(rec.message, "short message");
    assert!(rec.kvs.len() < 20, "{}", rec.kvs.len());
    assert!(
        rec.truncated,
        "key-values were left out: the record must say it was cut"
    );
}

#[test]
fn a_long_run_does_not_hold_a_file_descriptor_per_segment() {
    // Bug: every rollover kept a descriptor of the old segment until the run ended, so a long
    // run ran the job out of descriptors.
    let open_fds = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let tmp = tempfile::tempdir().unwrap();
    let rl = logger_with(tmp.path(), |b| b.segment_size(64 << 10));
    let run = rl.runlog("long").unwrap();
    let line = "x".repeat(1000);
    for i in 0..200 {
        log::info!("{i} {line}");
    }
    let before = open_fds();
    for i in 0..20_000 {
        log::info!("{i} {line}");
    }
    let after = open_fds();
    drop(run);
    let log = only_run(&rl.journal().unwrap(), "long");
    assert!(log.info.segments.len() > 250, "{}", log.info.segments.len());
    // Other tests run in parallel threads and open files too: allow some slack, far below
    // one per segment.
    assert!(
        after < before + 40,
        "open descriptors grew from {before} to {after}"
    );
}
