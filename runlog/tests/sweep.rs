//! What the sweep after each run must never do: delete a run that only looks cancelled, or
//! finish deleting a run whose segment 0 a directory listing merely missed. And what readers
//! do with a run that is being deleted.

use std::fs;
use std::path::Path;
use std::sync::Once;

use runlog::journal::frame::{encode_frame, encode_header, FrameType};
use runlog::journal::layout::{job_dir, segment_name};
use runlog::journal::payload::{encode_begin, encode_end, Begin, End, Outcome};
use runlog::{Journal, RunLogger, RunStatus};

const JOB: &str = "swept";

fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let rl = RunLogger::builder()
            .journal_dir(std::env::temp_dir().join("runlog-sweep-test-unused"))
            .no_config_file()
            .build()
            .unwrap();
        let _ = rl.install();
    });
}

/// End one ordinary run of the job: its end sweeps the job directory.
fn sweep(journal: &Path) {
    install();
    let rl = RunLogger::builder()
        .journal_dir(journal)
        .no_config_file()
        .build()
        .unwrap();
    let _run = rl.runlog(JOB).unwrap();
    log::info!("a run whose end sweeps the job");
}

fn begin(id: &str) -> Vec<u8> {
    encode_frame(
        FrameType::Begin,
        &encode_begin(&Begin {
            start_ns: 0,
            pid: 1,
            run_id: id.into(),
            job: JOB.into(),
            host: "h".into(),
        }),
    )
}

#[test]
fn a_crashed_run_whose_last_bytes_look_like_a_cancel_frame_is_not_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = job_dir(tmp.path(), JOB);
    fs::create_dir_all(&dir).unwrap();
    let id = "2000-01-01T00:00:00.000000Z-00000000000a";
    // The last record's payload ends with the bytes of a valid CANCEL frame: a reader of the
    // last 44 bytes alone would take the run for cancelled.
    let cancel = encode_frame(
        FrameType::Cancel,
        &encode_end(&End {
            end_ns: 1,
            outcome: Outcome::Cancelled,
            records: 0,
            dropped: 0,
        }),
    );
    let mut payload = vec![0u8; 40];
    payload.extend_from_slice(&cancel);
    let seg = [
        &encode_header(0, id)[..],
        &begin(id),
        &encode_frame(FrameType::Record, &payload),
    ]
    .concat();
    let path = dir.join(segment_name(id, 0));
    fs::write(&path, &seg).unwrap();
    sweep(tmp.path());
    sweep(tmp.path());
    assert!(path.exists(), "a crashed run was deleted as cancelled");
    let runs = Journal::open(tmp.path()).unwrap().runs(JOB).unwrap();
    assert_eq!(runs[0].id, id);
    assert_eq!(runs[0].status, RunStatus::Crashed);
}

#[test]
fn a_run_without_segment_0_is_not_listed_and_is_finished_off_only_when_stale() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = job_dir(tmp.path(), JOB);
    fs::create_dir_all(&dir).unwrap();
    let id = "2000-01-01T00:00:00.000000Z-00000000000b";
    let seg1 = dir.join(segment_name(id, 1));
    fs::write(&seg1, encode_header(1, id)).unwrap();
    let j = Journal::open(tmp.path()).unwrap();
    assert!(j.runs(JOB).unwrap().is_empty());
    assert!(j.read_run(JOB, id).is_err());
    // Young: a listing may have missed a live run's segment 0, so it is left alone.
    sweep(tmp.path());
    assert!(
        seg1.exists(),
        "a young segment without segment 0 was deleted"
    );
    // Stale and segment 0 really absent: the interrupted deletion is finished.
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    fs::File::options()
        .write(true)
        .open(&seg1)
        .unwrap()
        .set_modified(old)
        .unwrap();
    sweep(tmp.path());
    assert!(!seg1.exists(), "a stale half-deleted run was left");
}

#[test]
fn job_names_and_labels_over_their_limits_are_refused_or_cut() {
    let tmp = tempfile::tempdir().unwrap();
    install();
    let rl = RunLogger::builder()
        .journal_dir(tmp.path())
        .no_config_file()
        .build()
        .unwrap();
    assert!(rl.runlog(&"j".repeat(runlog::MAX_JOB_NAME + 1)).is_err());
    assert!(rl.runlog(&"j".repeat(runlog::MAX_JOB_NAME)).is_ok());
    {
        let run = rl.runlog(JOB).unwrap();
        run.label(&"k".repeat(10_000), &"é".repeat(50_000));
    }
    let j = Journal::open(tmp.path()).unwrap();
    let info = &j.runs(JOB).unwrap()[0];
    let (k, v) = &info.labels[0];
    assert_eq!(k.len(), 4096);
    // Cut at a character boundary at most 64 KiB.
    assert!(
        v.len() <= 64 << 10 && v.len() > (64 << 10) - 2,
        "{}",
        v.len()
    );
    assert!(v.chars().all(|c| c == 'é'));
}
