//! Reading text files and replacing them atomically.
//!
//! A file is replaced by writing a temporary file in the same folder, copying the original's
//! permissions, syncing it and renaming it over the original, so a reader sees the old or the
//! new content and never a mix. A symlink is never replaced: its target is. Writes are
//! prepared for every file before any is committed, so a failure while preparing leaves every
//! file as it was.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

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

/// A new content written to a temporary file, ready to replace its target.
#[derive(Debug)]
pub struct PendingWrite {
    target: PathBuf,
    temp: tempfile::NamedTempFile,
}

/// Writes `contents` next to `path` (or its symlink target), with the same permissions.
pub fn prepare(path: &Path, contents: &[u8]) -> io::Result<PendingWrite> {
    // Resolve symlinks so that the link stays a link and its target gets the new content.
    let target = fs::canonicalize(path)?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let permissions = fs::metadata(&target)?.permissions();
    let mut temp = tempfile::Builder::new()
        .prefix(".cru-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    temp.as_file().set_permissions(permissions)?;
    temp.as_file().sync_all()?;
    Ok(PendingWrite { target, temp })
}

impl PendingWrite {
    /// Renames the temporary file over the target.
    pub fn commit(self) -> io::Result<()> {
        self.temp.persist(&self.target).map_err(|e| e.error)?;
        // Make the rename durable; not every platform lets a folder be opened and synced.
        if let Some(dir) = self.target.parent() {
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[cfg(unix)]
    #[test]
    fn replace_keeps_permissions_and_symlinks() {
        use std::os::unix::fs::{symlink, PermissionsExt};
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.yaml");
        fs::write(&real, "old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o751)).unwrap();
        let link = dir.path().join("link.yaml");
        symlink(&real, &link).unwrap();

        prepare(&link, b"new").unwrap().commit().unwrap();

        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        let mode = fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o751);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 2, "no temporary file is left behind");
    }

    #[test]
    fn an_uncommitted_write_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "old").unwrap();
        drop(prepare(&path, b"new").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
