//! Reading text files and replacing them atomically, all or nothing.
//!
//! A file is replaced by writing a temporary file in the same folder, giving it the original's
//! owner, group, permissions and extended attributes (ACLs are ones), syncing its data and
//! renaming it over the original, so a reader sees the old or the new content and never a mix.
//! A symlink is never replaced: its target is. A [`Batch`] prepares every file before any is
//! renamed, checks right before the renames that no file changed since it was read, keeps a
//! hard link to each original until every rename succeeded and puts the originals back if one
//! fails. Files whose identity a rename would lose (hard-linked, read-only, an owner that
//! cannot be kept) are refused, not written in place. Temporary files are named
//! `.cru-<pid>-<n>.tmp` (originals kept aside `.orig`): the walker skips them, the ones of
//! runs that are no longer alive are removed when met, and [`clean_up_on_signals`] removes the
//! live ones on SIGINT/SIGTERM. This module does not decide what to write.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// How many leading bytes are checked for a NUL to tell binary files from text.
const BINARY_PROBE: usize = 8 * 1024;

/// Whether `buf` looks binary: a NUL byte in its first 8 KiB.
pub fn is_binary(buf: &[u8]) -> bool {
    memchr::memchr(0, &buf[..buf.len().min(BINARY_PROBE)]).is_some()
}

/// Reads a file; `None` if `skip_binary` and it looks binary (then only its start is read).
pub fn read_text(path: &Path, skip_binary: bool) -> io::Result<Option<Vec<u8>>> {
    let mut file = File::open(path)?;
    let size = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut buf = Vec::with_capacity(size + 1);
    (&mut file)
        .take(BINARY_PROBE as u64)
        .read_to_end(&mut buf)?;
    if skip_binary && is_binary(&buf) {
        return Ok(None);
    }
    file.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// What a file was when it was read: its identity and the marks any change leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The same file with the same content, ignoring the ctime (a hard link changes it).
    fn same_content(&self, other: &Stamp) -> bool {
        (self.dev, self.ino, self.size, self.mtime)
            == (other.dev, other.ino, other.size, other.mtime)
    }
}

/// Reads a whole file that may be rewritten, with its [`Stamp`] taken before reading.
pub fn read_for_update(path: &Path) -> io::Result<(Vec<u8>, Stamp)> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    let mut buf = Vec::with_capacity(meta.len() as usize + 1);
    file.read_to_end(&mut buf)?;
    Ok((buf, Stamp::of(&meta)))
}

/// Why a [`Batch`] wrote nothing, or not everything.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// A file or folder could not be read, written or created.
    #[error("{path}: {error}; no file was updated")]
    Io {
        /// The file.
        path: String,
        /// Why.
        error: io::Error,
    },
    /// The file (after resolving symlinks) is outside the folder the update is confined to.
    #[error(
        "{path}: leads to {}, outside {}; no file was updated",
        resolved.display(),
        root.display()
    )]
    Outside {
        /// The file.
        path: String,
        /// Where it leads.
        resolved: PathBuf,
        /// The confinement root.
        root: PathBuf,
    },
    /// The file changed since cru read it.
    #[error("{path}: changed while cru was running, no file was updated")]
    Changed {
        /// The file.
        path: String,
    },
    /// Replacing the file would split its hard links.
    #[error(
        "{path}: has {links} hard links and replacing it would split them; \
         no file was updated"
    )]
    HardLinked {
        /// The file.
        path: String,
        /// How many names it has.
        links: u64,
    },
    /// The file is read-only, or cru may not write it.
    #[error("{path}: {why}; cru does not replace it, no file was updated")]
    ReadOnly {
        /// The file.
        path: String,
        /// Why it counts as read-only.
        why: String,
    },
    /// The new file could not get the original's owner and group.
    #[error("{path}: cannot keep its owner {uid}:{gid} ({error}); no file was updated")]
    Owner {
        /// The file.
        path: String,
        /// The owner.
        uid: u32,
        /// The group.
        gid: u32,
        /// Why.
        error: io::Error,
    },
    /// An extended attribute (an ACL, a label) could not be copied to the new file.
    #[error("{path}: cannot keep its extended attribute {name} ({error}); no file was updated")]
    Xattr {
        /// The file.
        path: String,
        /// The attribute.
        name: String,
        /// Why.
        error: io::Error,
    },
    /// A rename failed after others succeeded; the files already replaced were put back
    /// unless listed in `not_restored`.
    #[error("{path}: {error}; {}", restored_summary(*.replaced, .not_restored))]
    Rename {
        /// The file whose rename failed (or that changed just before it).
        path: String,
        /// Why.
        error: io::Error,
        /// How many files had been replaced before.
        replaced: usize,
        /// The files that could not be put back, and why.
        not_restored: Vec<(String, io::Error)>,
    },
}

fn restored_summary(replaced: usize, not_restored: &[(String, io::Error)]) -> String {
    if replaced == 0 {
        return "no file was updated".into();
    }
    if not_restored.is_empty() {
        return format!(
            "the {replaced} file(s) already replaced were put back, no file was updated"
        );
    }
    let list: Vec<String> = not_restored
        .iter()
        .map(|(path, e)| format!("{path} ({e})"))
        .collect();
    format!(
        "{} of the {replaced} file(s) already replaced could not be put back and have the new content: {}",
        not_restored.len(),
        list.join(", ")
    )
}

// --- cru's own temporary files ---

const TEMP_PREFIX: &str = ".cru-";
const TEMP_SUFFIX: &str = ".tmp";
const ORIG_SUFFIX: &str = ".orig";

/// The pid in the name of one of cru's temporary files (`.cru-<pid>-<n>.tmp` or `.orig`).
fn temp_pid(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?;
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let rest = rest
        .strip_suffix(TEMP_SUFFIX)
        .or_else(|| rest.strip_suffix(ORIG_SUFFIX))?;
    let (pid, n) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(pid) || !digits(n) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a file name is one of cru's temporary files, which are never scanned.
pub fn is_own_temp(name: &OsStr) -> bool {
    temp_pid(name).is_some()
}

/// For walkers: whether `path` is one of cru's temporary files, to be skipped; one left by a
/// run that is no longer alive is removed on the way.
pub fn skip_own_temp(path: &Path) -> bool {
    let Some(pid) = path.file_name().and_then(temp_pid) else {
        return false;
    };
    if is_stale(pid) {
        let _ = fs::remove_file(path);
    }
    true
}

/// Whether a temporary file of `pid` was left by a run that is no longer alive.
fn is_stale(pid: u32) -> bool {
    if pid == me().2 {
        return false;
    }
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // ESRCH only: a process we may not signal (EPERM) is alive.
    matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// Removes the temporary files of dead runs in `dir`.
fn remove_stale_in(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if let Some(pid) = temp_pid(&entry.file_name()) {
            if is_stale(pid) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
}

/// What is on disk for a live batch, undone by the signal handler.
#[derive(Debug)]
enum Leftover {
    /// A file to remove.
    Remove(PathBuf),
    /// An original kept aside whose file was already replaced: renamed back.
    PutBack { backup: PathBuf, target: PathBuf },
}

/// The live leftovers of this process, by id.
static LIVE: Mutex<BTreeMap<u64, Leftover>> = Mutex::new(BTreeMap::new());
static NEXT: AtomicU64 = AtomicU64::new(0);

fn live() -> MutexGuard<'static, BTreeMap<u64, Leftover>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file of ours on disk: removed (and forgotten) on drop unless disarmed.
#[derive(Debug)]
struct Owned {
    id: u64,
    path: PathBuf,
    armed: bool,
}

impl Owned {
    /// Creates `dir/.cru-<pid>-<n><suffix>` with `create` (which fails if it exists).
    fn create<T>(
        dir: &Path,
        suffix: &str,
        mut create: impl FnMut(&Path) -> io::Result<T>,
    ) -> io::Result<(Owned, T)> {
        let (_, _, pid) = me();
        loop {
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{TEMP_PREFIX}{pid}-{id}{suffix}"));
            // Registered first, so that a signal between the two still removes it.
            live().insert(id, Leftover::Remove(path.clone()));
            match create(&path) {
                Ok(made) => {
                    let owned = Owned {
                        id,
                        path,
                        armed: true,
                    };
                    return Ok((owned, made));
                }
                Err(e) => {
                    live().remove(&id);
                    if e.kind() != io::ErrorKind::AlreadyExists {
                        return Err(e);
                    }
                }
            }
        }
    }

    /// Forgets the file without removing it (it was renamed away).
    fn disarm(mut self) {
        live().remove(&self.id);
        self.armed = false;
    }

    /// Leaves the file and its entry to the signal handler alone.
    #[cfg(test)]
    fn disarm_keeping_entry(mut self) {
        self.armed = false;
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut live = live();
        let _ = fs::remove_file(&self.path);
        live.remove(&self.id);
    }
}

/// Removes this process's temporary files and puts back the files already replaced by a
/// batch being committed; returns the lock, to be held so that no rename follows.
fn undo_live() -> MutexGuard<'static, BTreeMap<u64, Leftover>> {
    undo_live_where(|_| true)
}

/// [`undo_live`] for the leftovers whose path passes `pick`.
fn undo_live_where(pick: impl Fn(&Path) -> bool) -> MutexGuard<'static, BTreeMap<u64, Leftover>> {
    let mut live = live();
    let picked: Vec<u64> = live
        .iter()
        .filter(|(_, leftover)| match leftover {
            Leftover::Remove(path) | Leftover::PutBack { backup: path, .. } => pick(path),
        })
        .map(|(id, _)| *id)
        .collect();
    for id in picked {
        match live.remove(&id) {
            Some(Leftover::Remove(path)) => {
                let _ = fs::remove_file(path);
            }
            Some(Leftover::PutBack { backup, target }) => {
                let _ = fs::rename(backup, target);
            }
            None => {}
        }
    }
    live
}

/// For binaries: on SIGINT or SIGTERM, removes cru's temporary files, puts back the files a
/// batch already replaced, and exits with 130 or 143. Call once, before any thread starts.
pub fn clean_up_on_signals() -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (mut int, mut term) = runtime.block_on(async {
        io::Result::Ok((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    std::thread::Builder::new()
        .name("cru-signals".into())
        .spawn(move || {
            let code = runtime.block_on(async {
                tokio::select! {
                    _ = int.recv() => 130,
                    _ = term.recv() => 143,
                }
            });
            let _held = undo_live();
            std::process::exit(code);
        })?;
    Ok(())
}

// --- batches ---

/// One prepared file.
#[derive(Debug)]
struct Pending {
    shown: String,
    target: PathBuf,
    stamp: Stamp,
    temp: Owned,
}

/// Writes to many files, all or nothing: [`Batch::add`] each, then [`Batch::commit`].
/// Dropping an uncommitted batch removes its temporary files and changes nothing.
#[derive(Debug, Default)]
pub struct Batch {
    root: Option<PathBuf>,
    pending: Vec<Pending>,
    /// The targets of `pending`, to find a file named twice.
    targets: HashSet<PathBuf>,
    /// The folders written to, synced once each after the renames.
    dirs: HashMap<PathBuf, Folder>,
}

/// What a new file gets from the folder it is made in.
#[derive(Debug, Clone, Copy)]
struct Folder {
    /// The group of a set-group-id folder, which new files get instead of cru's.
    group: Option<u32>,
    /// Whether new files inherit an ACL (the folder has a default one).
    default_acl: bool,
}

impl Folder {
    fn of(dir: &Path) -> io::Result<Folder> {
        let meta = fs::metadata(dir)?;
        Ok(Folder {
            group: (meta.mode() & 0o2000 != 0).then(|| meta.gid()),
            default_acl: rustix::fs::getxattr_query(dir, "system.posix_acl_default").is_ok(),
        })
    }
}

/// The effective user and group of this process, and its pid.
fn me() -> (u32, u32, u32) {
    static ME: std::sync::OnceLock<(u32, u32, u32)> = std::sync::OnceLock::new();
    *ME.get_or_init(|| {
        (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
            std::process::id(),
        )
    })
}

impl Batch {
    /// A batch; with `confine`, every file must resolve inside that folder.
    pub fn new(confine: Option<&Path>) -> Result<Batch, WriteError> {
        let root = match confine {
            Some(root) => Some(fs::canonicalize(root).map_err(|source| WriteError::Io {
                path: root.display().to_string(),
                error: source,
            })?),
            None => None,
        };
        Ok(Batch {
            root,
            ..Batch::default()
        })
    }

    /// How many files are prepared.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no file is prepared.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Writes `contents` to a temporary file next to `path` (or its symlink target), to
    /// replace it on commit; `stamp` is what the file was when read, `shown` its name in
    /// errors. Refuses files that a rename would change beyond their content.
    pub fn add(
        &mut self,
        shown: &str,
        path: &Path,
        stamp: Stamp,
        contents: &[u8],
    ) -> Result<(), WriteError> {
        let io_err = |source| WriteError::Io {
            path: shown.to_string(),
            error: source,
        };
        // Resolve symlinks so that the link stays a link and its target gets the new content.
        let target = fs::canonicalize(path).map_err(io_err)?;
        if let Some(root) = &self.root {
            if !target.starts_with(root) {
                return Err(WriteError::Outside {
                    path: shown.to_string(),
                    resolved: target,
                    root: root.clone(),
                });
            }
        }
        if !self.targets.insert(target.clone()) {
            // The same file under another name (a symlink named beside its target): read in
            // the same state, so written once.
            return Ok(());
        }
        let meta = fs::symlink_metadata(&target).map_err(io_err)?;
        if Stamp::of(&meta) != stamp || !meta.is_file() {
            return Err(WriteError::Changed {
                path: shown.to_string(),
            });
        }
        if meta.nlink() > 1 {
            return Err(WriteError::HardLinked {
                path: shown.to_string(),
                links: meta.nlink(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o222 == 0 {
            return Err(WriteError::ReadOnly {
                path: shown.to_string(),
                why: format!("read-only (mode {mode:04o})"),
            });
        }
        // Not writable by us (or immutable, append-only, on a read-only mount).
        if let Err(e) = rustix::fs::accessat(
            rustix::fs::CWD,
            &target,
            rustix::fs::Access::WRITE_OK,
            rustix::fs::AtFlags::EACCESS,
        ) {
            return Err(WriteError::ReadOnly {
                path: shown.to_string(),
                why: format!("not writable ({})", io::Error::from(e)),
            });
        }
        let dir = target.parent().unwrap_or(Path::new("/")).to_path_buf();
        let folder = match self.dirs.get(&dir) {
            Some(folder) => *folder,
            None => {
                remove_stale_in(&dir);
                let folder = Folder::of(&dir).map_err(io_err)?;
                self.dirs.insert(dir.clone(), folder);
                folder
            }
        };

        let (temp, mut file) = Owned::create(&dir, TEMP_SUFFIX, |p| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
        })
        .map_err(io_err)?;
        file.write_all(contents).map_err(io_err)?;
        let (uid, gid) = (meta.uid(), meta.gid());
        let (my_uid, my_gid, _) = me();
        if (uid, gid) != (my_uid, folder.group.unwrap_or(my_gid)) {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(|source| {
                WriteError::Owner {
                    path: shown.to_string(),
                    uid,
                    gid,
                    error: source,
                }
            })?;
        }
        // After the chown, which may clear set-id bits; the owner is the original's, so the
        // original's set-id bits are kept with it.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err)?;
        copy_xattrs(shown, &target, &file, folder.default_acl)?;
        file.sync_data().map_err(io_err)?;
        drop(file);
        self.pending.push(Pending {
            shown: shown.to_string(),
            target,
            stamp,
            temp,
        });
        Ok(())
    }

    /// Renames every temporary file over its target, after checking that none changed since
    /// it was read; if a rename fails, the files already replaced are put back.
    pub fn commit(self) -> Result<(), WriteError> {
        self.commit_with(&mut |from, to| fs::rename(from, to))
    }

    fn commit_with(
        mut self,
        rename: &mut dyn FnMut(&Path, &Path) -> io::Result<()>,
    ) -> Result<(), WriteError> {
        // Everything that can be checked is checked before the first rename.
        for p in &self.pending {
            match fs::symlink_metadata(&p.target) {
                Ok(meta) if Stamp::of(&meta) == p.stamp => {}
                _ => {
                    return Err(WriteError::Changed {
                        path: p.shown.clone(),
                    })
                }
            }
        }
        if let Some(root) = &self.root {
            // A folder swapped for a symlink since the files were prepared.
            for dir in self.dirs.keys() {
                let now = fs::canonicalize(dir).ok();
                if now.as_deref() != Some(dir.as_path()) || !dir.starts_with(root) {
                    let p = self.pending.iter().find(|p| p.target.parent() == Some(dir));
                    return Err(WriteError::Outside {
                        path: p.map(|p| p.shown.clone()).unwrap_or_default(),
                        resolved: now.unwrap_or_else(|| dir.clone()),
                        root: root.clone(),
                    });
                }
            }
        }
        // Keep every original until all renames succeeded.
        let mut backups = Vec::with_capacity(self.pending.len());
        for p in &self.pending {
            let dir = p.target.parent().unwrap_or(Path::new("/"));
            let made = Owned::create(dir, ORIG_SUFFIX, |backup| {
                fs::hard_link(&p.target, backup).or_else(|link_error| {
                    // A file system without hard links: a copy does as well.
                    if link_error.kind() == io::ErrorKind::AlreadyExists {
                        return Err(link_error);
                    }
                    copy_new(&p.target, backup)
                })
            });
            match made {
                Ok((backup, ())) => backups.push(backup),
                Err(source) => {
                    return Err(WriteError::Io {
                        path: p.shown.clone(),
                        error: source,
                    })
                }
            }
        }
        let pending = std::mem::take(&mut self.pending);
        // The files replaced so far, as (shown, target), in the order of `backups`.
        let mut replaced: Vec<(String, PathBuf)> = Vec::with_capacity(pending.len());
        let mut failure = None;
        for (p, backup) in pending.into_iter().zip(&backups) {
            // Held across the rename so that a signal sees either state, not half of one.
            let mut live = live();
            let unchanged = fs::symlink_metadata(&p.target)
                .is_ok_and(|meta| Stamp::of(&meta).same_content(&p.stamp));
            let result = if unchanged {
                rename(&p.temp.path, &p.target)
            } else {
                Err(io::Error::other("changed while cru was running"))
            };
            match result {
                Ok(()) => {
                    live.insert(
                        backup.id,
                        Leftover::PutBack {
                            backup: backup.path.clone(),
                            target: p.target.clone(),
                        },
                    );
                    drop(live);
                    p.temp.disarm();
                    replaced.push((p.shown, p.target));
                }
                Err(source) => {
                    drop(live);
                    failure = Some((p.shown, source));
                    break;
                }
            }
        }
        if let Some((path, source)) = failure {
            let count = replaced.len();
            let not_restored = put_back(replaced, &mut backups);
            self.sync_dirs();
            return Err(WriteError::Rename {
                path,
                error: source,
                replaced: count,
                not_restored,
            });
        }
        // From here on a signal must not put anything back: the kept originals are only to be
        // removed.
        {
            let mut live = live();
            for backup in &backups {
                live.insert(backup.id, Leftover::Remove(backup.path.clone()));
            }
        }
        drop(backups);
        self.sync_dirs();
        Ok(())
    }

    /// Makes the renames durable: each folder synced once. Not every platform lets a folder
    /// be opened and synced.
    fn sync_dirs(&self) {
        for dir in self.dirs.keys() {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
    }
}

/// Renames the kept originals (the first of `backups`) back over the files replaced; returns
/// those that could not be put back.
fn put_back(
    replaced: Vec<(String, PathBuf)>,
    backups: &mut Vec<Owned>,
) -> Vec<(String, io::Error)> {
    let mut not_restored = Vec::new();
    let rest = backups.split_off(replaced.len());
    for ((shown, target), backup) in replaced.into_iter().zip(backups.drain(..)) {
        let mut live = live();
        let result = fs::rename(&backup.path, &target);
        live.remove(&backup.id);
        drop(live);
        let kept = backup.path.clone();
        backup.disarm();
        if let Err(e) = result {
            // The original stays where it is, named in the error for the user to move back.
            let message = format!("{e}; the original is kept as {}", kept.display());
            not_restored.push((shown, io::Error::new(e.kind(), message)));
        }
    }
    drop(rest);
    not_restored
}

/// Copies `from` to a new file `to` with the same permissions.
fn copy_new(from: &Path, to: &Path) -> io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    io::copy(&mut src, &mut dst)?;
    dst.set_permissions(src.metadata()?.permissions())
}

/// The extended attributes listed by `list` (names), none where they are not supported.
fn xattr_names(list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Vec<Vec<u8>>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match list(&mut buf[..]) {
            Ok(n) => {
                return Ok(buf[..n]
                    .split(|b| *b == 0)
                    .filter(|name| !name.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect())
            }
            Err(rustix::io::Errno::RANGE) if buf.len() < XATTR_MAX => buf.resize(buf.len() * 4, 0),
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Linux's bound on the list of names and on one value.
const XATTR_MAX: usize = 64 * 1024;

/// Gives `to` exactly the extended attributes of `from` (ACLs included).
fn copy_xattrs(shown: &str, from: &Path, to: &File, inherits: bool) -> Result<(), WriteError> {
    let failed = |name: &[u8], source: io::Error| WriteError::Xattr {
        path: shown.to_string(),
        name: String::from_utf8_lossy(name).into_owned(),
        error: source,
    };
    let names =
        xattr_names(|buf| rustix::fs::listxattr(from, buf)).map_err(|e| failed(b"(list)", e))?;
    // A new file inherits an ACL from a folder's default one. (Labels a security module
    // gives new files are overwritten by the original's, if it has one.)
    let inherited = if inherits {
        xattr_names(|buf| rustix::fs::flistxattr(to, buf)).map_err(|e| failed(b"(list)", e))?
    } else {
        Vec::new()
    };
    for name in &names {
        let mut value = vec![0u8; 256];
        let len = loop {
            match rustix::fs::getxattr(from, &name[..], &mut value[..]) {
                Ok(len) => break len,
                Err(rustix::io::Errno::RANGE) if value.len() < XATTR_MAX => {
                    value.resize(value.len() * 4, 0)
                }
                Err(e) => return Err(failed(name, e.into())),
            }
        };
        rustix::fs::fsetxattr(
            to,
            &name[..],
            &value[..len],
            rustix::fs::XattrFlags::empty(),
        )
        .map_err(|e| failed(name, e.into()))?;
    }
    for name in inherited.iter().filter(|n| !names.contains(n)) {
        rustix::fs::fremovexattr(to, &name[..]).map_err(|e| failed(name, e.into()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::process::Command;

    fn write(path: &Path, contents: &str) {
        fs::write(path, contents).unwrap();
    }

    /// Prepares `contents` for `path` as cru does: reads it first.
    fn add(batch: &mut Batch, path: &Path, contents: &str) -> Result<(), WriteError> {
        let (_, stamp) = read_for_update(path).unwrap();
        batch.add(
            &path.display().to_string(),
            path,
            stamp,
            contents.as_bytes(),
        )
    }

    fn replace(path: &Path, contents: &str) -> Result<(), WriteError> {
        let mut batch = Batch::new(None).unwrap();
        add(&mut batch, path, contents)?;
        batch.commit()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn binary_means_a_nul_in_the_first_8_kib() {
        assert!(is_binary(b"ab\0c"));
        assert!(!is_binary(b"abc"));
        let mut late = vec![b'a'; BINARY_PROBE];
        late.push(0);
        assert!(!is_binary(&late));
    }

    #[test]
    fn read_text_skips_binary_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        fs::write(&path, b"\0\x01gcr.io/a/b:1").unwrap();
        assert_eq!(read_text(&path, true).unwrap(), None);
        assert_eq!(
            read_text(&path, false).unwrap().unwrap(),
            b"\0\x01gcr.io/a/b:1"
        );
        let big = dir.path().join("big");
        let content: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        fs::write(&big, &content).unwrap();
        assert_eq!(read_text(&big, true).unwrap().unwrap(), content);
    }

    #[test]
    fn replace_keeps_permissions_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        write(&real, "old");
        fs::set_permissions(&real, fs::Permissions::from_mode(0o751)).unwrap();
        let link = dir.path().join("link.yaml");
        symlink(&real, &link).unwrap();

        replace(&link, "new").unwrap();

        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        let mode = fs::metadata(&real).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o751);
        assert_eq!(
            names(dir.path()),
            ["link.yaml", "real.yaml"],
            "no temporary file is left"
        );
    }

    #[test]
    fn a_file_named_twice_through_a_symlink_is_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        write(&real, "old");
        let link = dir.path().join("link.yaml");
        symlink(&real, &link).unwrap();
        let mut batch = Batch::new(None).unwrap();
        add(&mut batch, &real, "new").unwrap();
        add(&mut batch, &link, "new").unwrap();
        assert_eq!(batch.len(), 1);
        batch.commit().unwrap();
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        assert_eq!(names(dir.path()), ["link.yaml", "real.yaml"]);
    }

    #[test]
    fn a_write_error_shows_its_cause_once_in_the_chain() {
        let err = WriteError::Io {
            path: "f.yaml".into(),
            error: io::Error::from_raw_os_error(24),
        };
        let shown = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(shown.matches("os error 24").count(), 1, "{shown}");
        assert!(shown.ends_with("no file was updated"), "{shown}");
    }

    #[test]
    fn an_uncommitted_batch_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, "old");
        let mut batch = Batch::new(None).unwrap();
        add(&mut batch, &path, "new").unwrap();
        assert_eq!(
            names(dir.path()).len(),
            2,
            "the new content waits in a temporary file"
        );
        drop(batch);
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["f"]);
    }

    /// Issue 10 item 7: a rename that fails mid-way used to leave the earlier files replaced.
    #[test]
    fn a_rename_failing_mid_way_puts_back_the_files_already_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let mut batch = Batch::new(None).unwrap();
        let paths: Vec<PathBuf> = (0..4).map(|i| dir.path().join(format!("f{i}"))).collect();
        let mut inodes = Vec::new();
        for path in &paths {
            write(path, "old");
            inodes.push(fs::metadata(path).unwrap().ino());
            add(&mut batch, path, "new").unwrap();
        }
        let mut calls = 0;
        let err = batch
            .commit_with(&mut |from, to| {
                calls += 1;
                if calls == 3 {
                    return Err(io::Error::other("injected"));
                }
                fs::rename(from, to)
            })
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("f2: injected"), "{message}");
        assert!(
            message.contains("the 2 file(s) already replaced were put back"),
            "{message}"
        );
        for (path, ino) in paths.iter().zip(inodes) {
            assert_eq!(fs::read(path).unwrap(), b"old", "{}", path.display());
            assert_eq!(
                fs::metadata(path).unwrap().ino(),
                ino,
                "the original itself is back"
            );
        }
        assert_eq!(names(dir.path()), ["f0", "f1", "f2", "f3"]);
    }

    /// Issue 10 item 8: an append made between cru's read and its rename was lost.
    #[test]
    fn a_file_changed_after_it_was_read_fails_the_batch_and_nothing_is_renamed() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        write(&a, "old a\n");
        write(&b, "old b\n");
        let mut batch = Batch::new(None).unwrap();
        add(&mut batch, &a, "new a\n").unwrap();
        add(&mut batch, &b, "new b\n").unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&b)
            .unwrap()
            .write_all(b"appended\n")
            .unwrap();
        let err = batch.commit().unwrap_err();
        assert!(
            matches!(&err, WriteError::Changed { path } if path.ends_with("/b")),
            "{err}"
        );
        assert_eq!(fs::read_to_string(&a).unwrap(), "old a\n");
        assert_eq!(fs::read_to_string(&b).unwrap(), "old b\nappended\n");
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    /// Issue 10 item 8: of two runs that read the same file, only the first may write it.
    #[test]
    fn of_two_batches_on_one_file_the_second_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, "old");
        let mut first = Batch::new(None).unwrap();
        let mut second = Batch::new(None).unwrap();
        add(&mut first, &path, "first").unwrap();
        add(&mut second, &path, "second").unwrap();
        first.commit().unwrap();
        let err = second.commit().unwrap_err();
        assert!(matches!(err, WriteError::Changed { .. }), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "first");
    }

    /// Issue 10 item 4: a folder replaced by a symlink to a folder outside was written through.
    #[test]
    fn a_confined_batch_refuses_files_that_lead_outside_its_root() {
        let outside = tempfile::tempdir().unwrap();
        let host = outside.path().join("host.yaml");
        write(&host, "old");
        let repo = tempfile::tempdir().unwrap();
        symlink(outside.path(), repo.path().join("deploy")).unwrap();
        let inside = repo.path().join("inside.yaml");
        write(&inside, "old");

        let mut batch = Batch::new(Some(repo.path())).unwrap();
        add(&mut batch, &inside, "new").unwrap();
        let err = add(&mut batch, &repo.path().join("deploy/host.yaml"), "new").unwrap_err();
        assert!(matches!(err, WriteError::Outside { .. }), "{err}");
        assert!(
            err.to_string().contains("deploy/host.yaml: leads to"),
            "{err}"
        );
        drop(batch);
        assert_eq!(fs::read_to_string(&host).unwrap(), "old");
        assert_eq!(names(outside.path()), ["host.yaml"]);
    }

    #[test]
    fn a_folder_swapped_for_a_symlink_after_preparing_fails_the_commit() {
        let outside = tempfile::tempdir().unwrap();
        let repo = tempfile::tempdir().unwrap();
        let deploy = repo.path().join("deploy");
        fs::create_dir(&deploy).unwrap();
        write(&deploy.join("f.yaml"), "old");
        write(&outside.path().join("f.yaml"), "host");
        let mut batch = Batch::new(Some(repo.path())).unwrap();
        add(&mut batch, &deploy.join("f.yaml"), "new").unwrap();
        fs::rename(&deploy, repo.path().join("moved")).unwrap();
        symlink(outside.path(), &deploy).unwrap();
        assert!(batch.commit().is_err());
        assert_eq!(
            fs::read_to_string(outside.path().join("f.yaml")).unwrap(),
            "host"
        );
    }

    /// Issue 10 item 10: the new file belonged to whoever ran cru.
    #[test]
    fn owner_group_and_set_id_bits_are_kept_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tool");
        write(&path, "old");
        std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o6755)).unwrap();
        replace(&path, "new").unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
        assert_eq!(meta.mode() & 0o7777, 0o6755);
    }

    #[test]
    fn a_file_in_a_set_group_id_folder_keeps_its_own_group() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(dir.path(), None, Some(777)).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o2775)).unwrap();
        let (uid, gid, _) = me();
        let own = dir.path().join("own-group");
        write(&own, "old");
        std::os::unix::fs::chown(&own, Some(uid), Some(gid)).unwrap();
        let folders = dir.path().join("folder-group");
        write(&folders, "old");
        assert_eq!(fs::metadata(&folders).unwrap().gid(), 777);
        replace(&own, "new").unwrap();
        replace(&folders, "new").unwrap();
        assert_eq!(fs::metadata(&own).unwrap().gid(), gid);
        assert_eq!(fs::metadata(&folders).unwrap().gid(), 777);
    }

    #[test]
    fn hard_linked_and_read_only_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let linked = dir.path().join("linked");
        write(&linked, "old");
        fs::hard_link(&linked, dir.path().join("other-name")).unwrap();
        let err = replace(&linked, "new").unwrap_err();
        assert!(
            matches!(err, WriteError::HardLinked { links: 2, .. }),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("other-name")).unwrap(),
            "old"
        );

        let read_only = dir.path().join("read-only");
        write(&read_only, "old");
        fs::set_permissions(&read_only, fs::Permissions::from_mode(0o444)).unwrap();
        let err = replace(&read_only, "new").unwrap_err();
        assert!(err.to_string().contains("read-only (mode 0444)"), "{err}");
        assert_eq!(fs::read_to_string(&read_only).unwrap(), "old");
        assert_eq!(names(dir.path()), ["linked", "other-name", "read-only"]);
    }

    /// Issue 10 item 7: an immutable file made the rename fail after others were replaced.
    #[test]
    fn an_immutable_file_is_refused_before_any_rename() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        write(&a, "old");
        write(&b, "old");
        let chattr = |flag| {
            let ok = Command::new("chattr").arg(flag).arg(&b).status().unwrap();
            assert!(ok.success(), "chattr {flag} (e2fsprogs) on {}", b.display());
        };
        chattr("+i");
        let mut batch = Batch::new(None).unwrap();
        add(&mut batch, &a, "new").unwrap();
        let err = add(&mut batch, &b, "new").unwrap_err();
        drop(batch);
        chattr("-i");
        assert!(matches!(err, WriteError::ReadOnly { .. }), "{err}");
        assert_eq!(fs::read_to_string(&a).unwrap(), "old");
        assert_eq!(names(dir.path()), ["a", "b"]);
    }

    /// Issue 10 item 10: extended attributes (and so ACLs) vanished with the rename.
    #[test]
    fn extended_attributes_and_acls_are_copied_and_inherited_ones_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, "old");
        // An access ACL giving uid 1000 read: user::rw-, user:1000:r--, group::r--,
        // mask::r--, other::r-- (version 2, then tag, perm, id per entry).
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, perm, id) in [
            (0x01u16, 6u16, u32::MAX),
            (0x02, 4, 1000),
            (0x04, 4, u32::MAX),
            (0x10, 4, u32::MAX),
            (0x20, 4, u32::MAX),
        ] {
            acl.extend(tag.to_le_bytes());
            acl.extend(perm.to_le_bytes());
            acl.extend(id.to_le_bytes());
        }
        let none = rustix::fs::XattrFlags::empty();
        rustix::fs::setxattr(&path, "system.posix_acl_access", &acl, none).unwrap();
        rustix::fs::setxattr(&path, "user.origin", b"kept", none).unwrap();
        // The folder's default ACL would give the new file an ACL the original does not have.
        let plain = dir.path().join("plain");
        write(&plain, "old");
        rustix::fs::setxattr(dir.path(), "system.posix_acl_default", &acl, none).unwrap();

        replace(&path, "new").unwrap();
        replace(&plain, "new").unwrap();

        let get = |path: &Path, name: &str| {
            let mut buf = vec![0u8; 1024];
            rustix::fs::getxattr(path, name, &mut buf[..]).map(|n| buf[..n].to_vec())
        };
        assert_eq!(get(&path, "user.origin").unwrap(), b"kept");
        assert_eq!(get(&path, "system.posix_acl_access").unwrap(), acl);
        assert_eq!(
            get(&plain, "system.posix_acl_access"),
            Err(rustix::io::Errno::NODATA),
            "no ACL the original did not have"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
    }

    /// Issue 10 item 9: temporary files of killed runs were left and scanned.
    #[test]
    fn own_temporary_files_are_recognised_and_stale_ones_removed_when_writing() {
        for own in [".cru-12-3.tmp", ".cru-1-0.orig"] {
            assert!(is_own_temp(OsStr::new(own)), "{own}");
        }
        for other in [
            ".cru-.tmp",
            ".cru-12.tmp",
            ".cru-x-1.tmp",
            "cru-1-2.tmp",
            ".cru-1-2.txt",
        ] {
            assert!(!is_own_temp(OsStr::new(other)), "{other}");
        }
        let dir = tempfile::tempdir().unwrap();
        // Beyond any pid_max, so never alive; pid 1 always is.
        write(&dir.path().join(".cru-99999999-1.tmp"), "stale");
        write(&dir.path().join(".cru-99999999-2.orig"), "stale");
        write(&dir.path().join(".cru-1-1.tmp"), "alive");
        let path = dir.path().join("f");
        write(&path, "old");
        replace(&path, "new").unwrap();
        assert_eq!(names(dir.path()), [".cru-1-1.tmp", "f"]);
        assert!(skip_own_temp(&dir.path().join(".cru-1-1.tmp")));
        assert!(!skip_own_temp(&path));
    }

    /// What the signal handler does: removes temporary files, puts back replaced files.
    #[test]
    fn undoing_removes_temporary_files_and_puts_back_replaced_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, "old");
        // The state of a batch right after its first rename: the original kept aside, the
        // new content in place, another file's temporary file waiting.
        let (backup, ()) =
            Owned::create(dir.path(), ORIG_SUFFIX, |b| fs::hard_link(&path, b)).unwrap();
        let new = dir.path().join("new");
        write(&new, "new");
        fs::rename(&new, &path).unwrap();
        live().insert(
            backup.id,
            Leftover::PutBack {
                backup: backup.path.clone(),
                target: path.clone(),
            },
        );
        backup.disarm_keeping_entry();
        let (waiting, _) = Owned::create(dir.path(), TEMP_SUFFIX, |p| File::create_new(p)).unwrap();
        waiting.disarm_keeping_entry();

        // Only this test's entries: the other tests' files live in other folders.
        drop(undo_live_where(|p| p.starts_with(dir.path())));

        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(names(dir.path()), ["f"]);
        assert!(live().values().all(|l| !matches!(l,
            Leftover::Remove(p) | Leftover::PutBack { backup: p, .. } if p.starts_with(dir.path()))));
    }
}
