//! The shipped-runs file of a job directory: which runs a shipper has uploaded.
//!
//! ```text
//! <journal>/jobs/<encoded job>/.shipped
//!
//! runlog-shipped 1 <epoch>
//! <run id>
//! <run id>
//! ...
//! ```
//!
//! The shipper writes it ([`write_shipped`]: temp file, fsync, rename, fsync of the directory);
//! the library reads it ([`read_shipped`]) so that retention never deletes a run that has not
//! been shipped while shipping is on. `spec/journal.md` ("Shipped runs") is normative.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use super::layout::is_run_id;
pub use super::layout::{SHIPPED_FILE, SHIPPED_TMP_FILE, SHIPPER_DIR};
use super::storage::{self, OpenMode};

/// First word of a shipped-runs file.
pub const SHIPPED_MAGIC: &str = "runlog-shipped";
/// Version of the shipped-runs file format (the second word of its first line).
pub const SHIPPED_VERSION: u32 = 1;
/// A shipped-runs file larger than this is an error (it is never read into memory).
pub const MAX_SHIPPED_FILE: u64 = 16 << 20;
/// Longest epoch token.
pub const MAX_EPOCH_LEN: usize = 64;

/// The contents of a job's [`SHIPPED_FILE`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shipped {
    /// The Redis epoch token the listed runs were shipped under: 1 to [`MAX_EPOCH_LEN`]
    /// characters of `[0-9A-Za-z]` (see [`is_epoch`]).
    pub epoch: String,
    /// Ids of the runs shipped (each [`is_run_id`]).
    pub runs: BTreeSet<String>,
}

/// Is `s` a valid epoch token: 1 to [`MAX_EPOCH_LEN`] ASCII letters and digits?
pub fn is_epoch(s: &str) -> bool {
    (1..=MAX_EPOCH_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn invalid_data(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Parse the bytes of a shipped-runs file; `path` is only used in errors.
///
/// The first line must be `runlog-shipped 1 <epoch>` ending in `\n`, or the result is an
/// [`io::ErrorKind::InvalidData`] error naming `path`. Every further line that is a run id
/// ([`is_run_id`]) and ends in `\n` is a shipped run; any other line (including an
/// unterminated last line) is skipped. Duplicates count once.
pub fn parse_shipped(bytes: &[u8], path: &Path) -> io::Result<Shipped> {
    let bad_header = || {
        invalid_data(
            path,
            &format!(
                "not a shipped-runs file: its first line must be `{SHIPPED_MAGIC} \
                 {SHIPPED_VERSION} <epoch>` (epoch: 1 to {MAX_EPOCH_LEN} letters and digits)"
            ),
        )
    };
    let Some(nl) = bytes.iter().position(|&b| b == b'\n') else {
        return Err(bad_header());
    };
    let header = std::str::from_utf8(&bytes[..nl]).map_err(|_| bad_header())?;
    let mut words = header.split(' ');
    let (Some(magic), Some(version), Some(epoch), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(bad_header());
    };
    if magic != SHIPPED_MAGIC {
        return Err(bad_header());
    }
    if version != SHIPPED_VERSION.to_string() {
        let shown: String = version.chars().take(20).collect();
        return Err(invalid_data(
            path,
            &format!(
                "unsupported shipped-runs file version {shown:?} (this runlog reads version \
                 {SHIPPED_VERSION})"
            ),
        ));
    }
    if !is_epoch(epoch) {
        return Err(bad_header());
    }
    let mut runs = BTreeSet::new();
    let mut rest = &bytes[nl + 1..];
    // Only lines terminated by `\n`: an unterminated last line is skipped.
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        if let Ok(id) = std::str::from_utf8(&rest[..nl]) {
            if is_run_id(id) {
                runs.insert(id.to_owned());
            }
        }
        rest = &rest[nl + 1..];
    }
    Ok(Shipped {
        epoch: epoch.to_owned(),
        runs,
    })
}

/// Read a job directory's [`SHIPPED_FILE`].
///
/// `Ok(None)` if the file (or the directory) does not exist. Reads at most
/// [`MAX_SHIPPED_FILE`] bytes: a larger file is an [`io::ErrorKind::InvalidData`] error, as is
/// a malformed first line (see [`parse_shipped`]); both name the file. Malformed run id lines
/// are skipped.
pub fn read_shipped(job_dir: &Path) -> io::Result<Option<Shipped>> {
    let path = job_dir.join(SHIPPED_FILE);
    let f = match storage::open(&path, OpenMode::Read) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    let too_big = || {
        invalid_data(
            &path,
            &format!("larger than {MAX_SHIPPED_FILE} bytes (16 MiB), not read"),
        )
    };
    let len = f.len().unwrap_or(0);
    if len > MAX_SHIPPED_FILE {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    // One byte more than the limit tells a file that grew past it.
    storage::read_to_end_bounded(&*f, 0, MAX_SHIPPED_FILE + 1, &mut bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    if bytes.len() as u64 > MAX_SHIPPED_FILE {
        return Err(too_big());
    }
    parse_shipped(&bytes, &path).map(Some)
}

/// The bytes of a shipped-runs file: the header, then the run ids sorted, one per line.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] if the epoch is not [`is_epoch`], a run is not
/// [`is_run_id`], or the result would exceed [`MAX_SHIPPED_FILE`] (the reader would refuse
/// it).
pub fn encode_shipped(s: &Shipped) -> io::Result<Vec<u8>> {
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
    if !is_epoch(&s.epoch) {
        let shown: String = s.epoch.chars().take(80).collect();
        return Err(invalid(format!(
            "invalid shipped-runs epoch {shown:?}: expected 1 to {MAX_EPOCH_LEN} letters and \
             digits"
        )));
    }
    let mut out = String::new();
    let _ = writeln!(out, "{SHIPPED_MAGIC} {SHIPPED_VERSION} {}", s.epoch);
    for id in &s.runs {
        if !is_run_id(id) {
            let shown: String = id.chars().take(80).collect();
            return Err(invalid(format!(
                "invalid run id {shown:?} in a shipped-runs list"
            )));
        }
        if (out.len() + id.len() + 1) as u64 > MAX_SHIPPED_FILE {
            return Err(invalid(format!(
                "a shipped-runs list of {} runs exceeds {MAX_SHIPPED_FILE} bytes (16 MiB); list \
                 only runs still in the journal",
                s.runs.len()
            )));
        }
        out.push_str(id);
        out.push('\n');
    }
    Ok(out.into_bytes())
}

/// Replace a job directory's [`SHIPPED_FILE`] atomically: write [`SHIPPED_TMP_FILE`] (mode
/// `0600`, replacing one a crash left), fsync it, rename it over [`SHIPPED_FILE`], fsync the
/// directory. A crash at any point leaves either the old file or the new one, whole. The
/// directory must exist; only one process may write a job's file at a time.
///
/// # Errors
/// As [`encode_shipped`] for invalid contents (nothing is written), else the first I/O error,
/// naming the file. An error from the final directory fsync means the new file is in place
/// but may not survive a power loss.
pub fn write_shipped(job_dir: &Path, s: &Shipped) -> io::Result<()> {
    let bytes = encode_shipped(s)?;
    write_file_atomic(&job_dir.join(SHIPPED_FILE), &bytes)
}

/// Replace `path` atomically and durably: write `<name>.tmp` beside it (mode `0600`,
/// replacing one a crash left), fsync it, rename it over `path`, fsync the directory. A crash
/// at any point leaves either the old file or the new one, whole. Used for [`SHIPPED_FILE`]
/// and the shipper's own state.
///
/// # Errors
/// The first I/O error, naming the file. An error from the final directory fsync means the
/// new file is in place but may not survive a power loss.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let named = |p: &Path| {
        let p = p.to_path_buf();
        move |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()))
    };
    let mut f = storage::open(&tmp, OpenMode::CreateTruncate).map_err(named(&tmp))?;
    storage::write_all(&mut *f, bytes).map_err(named(&tmp))?;
    f.sync_data().map_err(named(&tmp))?;
    drop(f);
    storage::rename(&tmp, path).map_err(named(path))?;
    storage::sync_dir(dir).map_err(named(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File};

    const A: &str = "2026-01-01T00:00:00.000000Z-00000000000a";
    const B: &str = "2026-01-01T00:00:01.000000Z-00000000000b";

    fn shipped(epoch: &str, ids: &[&str]) -> Shipped {
        Shipped {
            epoch: epoch.to_owned(),
            runs: ids.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_written_file_reads_back_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(read_shipped(tmp.path()).unwrap(), None);
        assert_eq!(read_shipped(&tmp.path().join("no-such-job")).unwrap(), None);
        let s = shipped("e7Z", &[B, A]);
        write_shipped(tmp.path(), &s).unwrap();
        assert_eq!(read_shipped(tmp.path()).unwrap(), Some(s));
        let text = fs::read_to_string(tmp.path().join(SHIPPED_FILE)).unwrap();
        assert_eq!(text, format!("runlog-shipped 1 e7Z\n{A}\n{B}\n"), "sorted");
        assert!(!tmp.path().join(SHIPPED_TMP_FILE).exists());
        let empty = shipped("x", &[]);
        write_shipped(tmp.path(), &empty).unwrap();
        assert_eq!(read_shipped(tmp.path()).unwrap(), Some(empty));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(tmp.path().join(SHIPPED_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
    }

    #[test]
    fn a_bad_first_line_is_invalid_data_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let long = format!("runlog-shipped 1 {}\n", "a".repeat(65));
        let bad: [&[u8]; 11] = [
            b"",
            b"runlog-shipped 1 abc",
            b"runlog-shipped 1\n",
            b"runlog-shipped 1 \n",
            b"runlog-shipped 1 ab-c\n",
            b"runlog-shipped 1 abc \n",
            b"runlog-shipped  1 abc\n",
            b"runlog-shipped 2 abc\n",
            b"runlog-shipped 1 abc\r\n",
            b"\xffrunlog-shipped 1 abc\n",
            long.as_bytes(),
        ];
        for b in bad {
            fs::write(tmp.path().join(SHIPPED_FILE), b).unwrap();
            let e = read_shipped(tmp.path()).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{b:?}");
            assert!(e.to_string().contains(".shipped"), "{e}");
        }
        let e = parse_shipped(b"runlog-shipped 2 abc\n", Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("version \"2\""), "{e}");
        let max = format!("runlog-shipped 1 {}\n", "Z9".repeat(32));
        assert!(parse_shipped(max.as_bytes(), Path::new("f")).is_ok());
    }

    #[test]
    fn bad_id_lines_are_skipped() {
        let text = format!(
            "runlog-shipped 1 ep\n{A}\n\nnot-a-run-id\n{A}x\n../../etc/passwd\n\
             \u{fffd}\n{A}\n{B}"
        );
        let s = parse_shipped(text.as_bytes(), Path::new("f")).unwrap();
        assert_eq!(s, shipped("ep", &[A]), "{B} has no newline");
        let mut bytes = format!("runlog-shipped 1 ep\n{B}\n").into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\n");
        assert_eq!(
            parse_shipped(&bytes, Path::new("f")).unwrap(),
            shipped("ep", &[B])
        );
    }

    #[test]
    fn an_oversized_file_is_an_error_not_an_allocation() {
        let tmp = tempfile::tempdir().unwrap();
        let f = File::create(tmp.path().join(SHIPPED_FILE)).unwrap();
        f.set_len(MAX_SHIPPED_FILE + 1).unwrap();
        let e = read_shipped(tmp.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("16 MiB"), "{e}");
        // Exactly the limit is read (and here malformed: zeros).
        f.set_len(MAX_SHIPPED_FILE).unwrap();
        let e = read_shipped(tmp.path()).unwrap_err();
        assert!(e.to_string().contains("first line"), "{e}");
    }

    #[test]
    fn invalid_contents_are_refused_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        for s in [
            shipped("", &[A]),
            shipped("has space", &[A]),
            shipped(&"e".repeat(65), &[A]),
            shipped("ok", &[A, "bad\nid"]),
        ] {
            let e = write_shipped(tmp.path(), &s).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{s:?}");
        }
        assert!(fs::read_dir(tmp.path()).unwrap().next().is_none());
        let e = write_shipped(&tmp.path().join("missing"), &shipped("ok", &[A])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains(".shipped.tmp"), "{e}");
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let old = shipped("one", &[A]);
        write_shipped(tmp.path(), &old).unwrap();
        // A shipper that died after writing its temp file (fully or in part), before renaming.
        fs::write(
            tmp.path().join(SHIPPED_TMP_FILE),
            format!("runlog-shipped 1 two\n{A}\n{B}"),
        )
        .unwrap();
        assert_eq!(read_shipped(tmp.path()).unwrap(), Some(old));
        // The next write replaces the leftover.
        let new = shipped("two", &[A, B]);
        write_shipped(tmp.path(), &new).unwrap();
        assert_eq!(read_shipped(tmp.path()).unwrap(), Some(new));
        assert!(!tmp.path().join(SHIPPED_TMP_FILE).exists());
    }

    #[test]
    fn segment_listings_ignore_the_shipped_files() {
        let tmp = tempfile::tempdir().unwrap();
        write_shipped(tmp.path(), &shipped("e", &[A])).unwrap();
        fs::write(tmp.path().join(SHIPPED_TMP_FILE), "x").unwrap();
        let runs = super::super::reader::list_run_segments(tmp.path()).unwrap();
        assert!(runs.is_empty(), "{runs:?}");
    }
}
