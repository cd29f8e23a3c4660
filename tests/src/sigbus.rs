//! What the SIGBUS tests (`tests/tests/sigbus.rs`) and their child process
//! (`src/bin/sigbuskid.rs`) agree on, and a real btrfs file system in a loop file for them.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The job the child writes its run of.
pub const JOB: &str = "sigbus-job";

/// Record `i` the child logs: a numbered line padded to about 200 bytes, so that a few hundred
/// records span many pages of a segment.
pub fn message(i: u64) -> String {
    let mut s = format!("record {i:06} ");
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while s.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{:016x}", x));
    }
    s
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let shown = format!("{cmd:?}");
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).into_owned()),
        Ok(o) => Err(format!(
            "{shown} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{shown} could not be run: {e}")),
    }
}

/// A btrfs file system made in a loop file and mounted; unmounted, its loop device detached and
/// its files removed on drop (also when the test fails).
#[derive(Debug)]
pub struct Btrfs {
    dir: tempfile::TempDir,
    loop_dev: Option<String>,
    mounted: bool,
}

impl Btrfs {
    /// Make and mount one of `size` bytes. Panics, saying what to install or enable, when this
    /// machine cannot (not root, no `mkfs.btrfs`, no loop device, no btrfs in the kernel): the
    /// test must not pass by skipping.
    pub fn mount(size: u64) -> Btrfs {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test mounts a btrfs file system made in a loop file: run it as root (CI does)"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let img = dir.path().join("btrfs.img");
        File::create(&img)
            .and_then(|f| f.set_len(size))
            .expect("the loop file");
        let mut fs = Btrfs {
            loop_dev: None,
            mounted: false,
            dir,
        };
        if let Err(e) = run(Command::new("mkfs.btrfs").arg("-q").arg(&img)) {
            panic!("{e}\nmkfs.btrfs is needed: install btrfs-progs (Debian: apt-get install btrfs-progs)");
        }
        let dev =
            run(Command::new("losetup").args(["--find", "--show"]).arg(&img)).unwrap_or_else(|e| {
                panic!("{e}\na free loop device is needed: enable loop devices (modprobe loop)")
            });
        fs.loop_dev = Some(dev.trim().to_owned());
        fs::create_dir(fs.mnt()).expect("the mount point");
        if let Err(e) = run(Command::new("mount").arg(dev.trim()).arg(fs.mnt())) {
            panic!("{e}\nthe kernel must mount btrfs: enable it (modprobe btrfs)");
        }
        fs.mounted = true;
        fs
    }

    /// Where it is mounted.
    pub fn mnt(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }

    /// Fill it to the brim: write a file until the file system refuses more data, then make
    /// every dirty page of it durable (`sync`), so that the pages of other files are clean and a
    /// store into a mapping of them must find new space. Returns the bytes written.
    pub fn fill(&self) -> u64 {
        let mut written = 0u64;
        for (i, chunk) in [1usize << 20, 64 << 10, 4 << 10, 512]
            .into_iter()
            .enumerate()
        {
            let mut f = File::create(self.mnt().join(format!("filler-{i}"))).expect("filler");
            let buf = vec![0xa5u8; chunk];
            while f.write_all(&buf).is_ok() {
                written += chunk as u64;
            }
            let _ = f.sync_all();
        }
        // SAFETY: sync has no preconditions.
        unsafe { libc::sync() };
        written
    }
}

impl Drop for Btrfs {
    fn drop(&mut self) {
        if self.mounted {
            let mnt = self.mnt();
            if run(Command::new("umount").arg(&mnt)).is_err() {
                let _ = run(Command::new("umount").arg("-l").arg(&mnt));
            }
        }
        if let Some(dev) = &self.loop_dev {
            let _ = run(Command::new("losetup").arg("-d").arg(dev));
        }
    }
}

/// The segment `seq` of run `id` of [`JOB`] in `journal`.
pub fn segment_path(journal: &Path, id: &str, seq: u32) -> PathBuf {
    journal
        .join("jobs")
        .join(JOB)
        .join(format!("{id}.{seq:06}.seg"))
}
