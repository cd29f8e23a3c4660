//! A journal shared by several users through a group (`[runlog] journal-group`).
//!
//! The journal directory belongs to the group, is setgid (so everything created in it takes the
//! group) and group-writable. Directories created under a directory like that are made the
//! same (`02770`) and files `0660`, explicitly, whatever the process's umask: every member can
//! write runs, the shipper (a member) can recover, trim and delete them, and users outside the
//! group can neither read nor write. A journal whose directory is not setgid and
//! group-writable keeps `0700`/`0600`.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use nix::unistd::{getegid, geteuid, getgroups, Gid, Group};

/// Mode of a directory in a shared journal: setgid, group-writable, nothing for others.
pub const SHARED_DIR_MODE: u32 = 0o2770;
/// Mode of a file in a shared journal.
pub const SHARED_FILE_MODE: u32 = 0o660;

/// Whether files and directories created in the directory `dir` are shared with its group:
/// it is setgid and group-readable, -writable and -searchable.
pub fn is_shared(dir: &Path) -> bool {
    fs::metadata(dir).is_ok_and(|m| m.is_dir() && shared_mode(m.mode()))
}

fn shared_mode(mode: u32) -> bool {
    mode & 0o2070 == 0o2070
}

/// The id of the group `name`.
pub fn group_id(name: &str) -> io::Result<u32> {
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "group `{name}` (journal-group) does not exist: create it \
                 (`groupadd --system {name}`) and add the users whose jobs share the journal \
                 and the shipper's user to it"
            ),
        )),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("cannot look up group `{name}` (journal-group): {e}"),
        )),
    }
}

/// Whether this process has group `gid` (as its effective group or a supplementary one).
fn in_group(gid: u32) -> bool {
    let gid = Gid::from_raw(gid);
    getegid() == gid || getgroups().is_ok_and(|groups| groups.contains(&gid))
}

fn user() -> String {
    let uid = geteuid();
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() => format!("{u} (uid {uid})"),
        _ => format!("uid {uid}"),
    }
}

/// Make `journal` the shared journal of group `group`, or say why it cannot be and what to do.
///
/// This process must be in the group (or be root). A missing journal directory is created
/// with the group, setgid and group-writable; an existing one that is not is fixed when this
/// process owns it (or is root), else refused with the commands that fix it.
pub fn prepare(journal: &Path, group: &str) -> io::Result<()> {
    let gid = group_id(group)?;
    let dir = journal.display();
    let root = geteuid().is_root();
    if !root && !in_group(gid) {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the journal {dir} is shared by group `{group}` (journal-group) and {} is not in \
                 it: add the user to the group (`usermod -aG {group} USER`, then log in again), \
                 or give this job another journal-dir",
                user()
            ),
        ));
    }
    let meta = match fs::metadata(journal) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = journal.parent() {
                fs::create_dir_all(parent)?;
            }
            match fs::create_dir(journal) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            fs::metadata(journal)?
        }
        Err(e) => return Err(e),
    };
    if meta.gid() == gid && shared_mode(meta.mode()) {
        return Ok(());
    }
    let owner = meta.uid() == geteuid().as_raw();
    let fix = format!("chgrp {group} {dir} && chmod 2770 {dir}");
    if !owner && !root {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the journal {dir} is not shared with group `{group}` (journal-group): its owner \
                 or root must run `{fix}`"
            ),
        ));
    }
    if let Err(e) = std::os::unix::fs::chown(journal, None, Some(gid)) {
        return Err(io::Error::new(
            e.kind(),
            format!("cannot give the journal {dir} to group `{group}`: {e}; run `{fix}`"),
        ));
    }
    fs::set_permissions(
        journal,
        fs::Permissions::from_mode(SHARED_DIR_MODE | (meta.mode() & 0o700)),
    )
    .map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot make the journal {dir} group-writable: {e}; run `{fix}`"),
        )
    })
}

/// A permission error on `journal` explained: when the journal is shared by a group, which one
/// and how to join it.
pub fn explain_denied(journal: &Path, e: &io::Error) -> Option<String> {
    if e.kind() != io::ErrorKind::PermissionDenied {
        return None;
    }
    let m = fs::metadata(journal).ok()?;
    if !shared_mode(m.mode()) {
        return None;
    }
    let group = group_name(m.gid()).unwrap_or_else(|| m.gid().to_string());
    let dir = journal.display();
    if in_group(m.gid()) {
        return Some(format!(
            "the journal {dir} is shared by group `{group}`, and {} is in it, but a directory \
             or file in it is not group-writable (made before journal-group was set, or by \
             hand): as its owner or root run `chmod -R g+rwX {dir} && find {dir} -type d -exec \
             chmod g+s {{}} +`",
            user()
        ));
    }
    Some(format!(
        "the journal {dir} is shared by group `{group}` and {} is not in it: its members can \
         read and write every run there, others nothing; ask an admin to add you \
         (`usermod -aG {group} USER`, then log in again) or use another journal-dir",
        user()
    ))
}

/// The name of group `gid`, if it has one.
fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_setgid_group_writable_directory_is_shared() {
        assert!(shared_mode(0o2770));
        assert!(shared_mode(0o2775));
        assert!(!shared_mode(0o0770));
        assert!(!shared_mode(0o2750));
        assert!(!shared_mode(0o0700));
    }

    #[test]
    fn prepare_creates_a_missing_journal_setgid_for_the_group_and_fixes_its_own() {
        let gid = getegid().as_raw();
        let group = group_name(gid).unwrap();
        let t = tempfile::tempdir().unwrap();
        let j = t.path().join("a/journal");
        prepare(&j, &group).unwrap();
        let m = fs::metadata(&j).unwrap();
        assert_eq!((m.mode() & 0o7777, m.gid()), (SHARED_DIR_MODE, gid));
        assert!(is_shared(&j));
        // One of its own that is private is made shared.
        let k = t.path().join("private");
        fs::create_dir(&k).unwrap();
        fs::set_permissions(&k, fs::Permissions::from_mode(0o700)).unwrap();
        prepare(&k, &group).unwrap();
        assert_eq!(fs::metadata(&k).unwrap().mode() & 0o7777, SHARED_DIR_MODE);
        // And what the storage creates in it is the group's, whatever the umask.
        super::super::storage::create_dir_private(&k.join("jobs/x")).unwrap();
        assert_eq!(
            fs::metadata(k.join("jobs/x")).unwrap().mode() & 0o7777,
            SHARED_DIR_MODE
        );
        let f = k.join("jobs/x/f");
        drop(super::super::storage::open(&f, super::super::storage::OpenMode::CreateNew).unwrap());
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o777, SHARED_FILE_MODE);
    }

    #[test]
    fn a_group_that_does_not_exist_is_an_error_saying_how_to_create_it() {
        let e = group_id("runlog-no-such-group-x").unwrap_err();
        assert!(e.to_string().contains("groupadd"), "{e}");
    }
}
