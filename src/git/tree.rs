//! Building commits: what a new tree can hold (a path cannot be a file in one commit and
//! a folder below it in the next, nor go into a submodule), the index kept honest after a
//! commit, and the author. Pure git object work; no network, no working tree changes.

use std::path::{Component, Path, PathBuf};

use git2::{Repository, Signature};

use super::CommitSpec;

/// The file mode of a submodule's entry (a gitlink) in trees and the index.
pub(super) const GITLINK: u32 = 0o160000;

/// Why `path` cannot go into a commit on top of `tree`, if it cannot: a folder on its way
/// is a file, a link or a submodule in `tree`, or `path` itself is a folder there (a path
/// cannot be both a file and a folder, what libgit2 calls a "D/F conflict").
pub(super) fn tree_conflict(tree: &git2::Tree<'_>, path: &Path) -> Option<String> {
    let parts: Vec<Component<'_>> = path.components().collect();
    let mut prefix = PathBuf::new();
    for (i, part) in parts.iter().enumerate() {
        prefix.push(part);
        let Ok(entry) = tree.get_path(&prefix) else {
            return None;
        };
        let last = i + 1 == parts.len();
        let shown = prefix.display();
        match (entry.filemode() as u32, last) {
            (0o040000, false) => continue,
            (0o040000, true) => {
                return Some(format!(
                    "in the last commit {shown} is a folder, and now it is a file (a path \
                     cannot be both); commit the change that replaced the folder yourself \
                     first, then run cru again"
                ))
            }
            (_, true) => return None,
            (GITLINK, false) => {
                return Some(format!(
                    "{shown} is a submodule, and cru never commits into a submodule; update \
                     it on its own (--repository {shown}), or leave it out (PATHs without \
                     it, or `{shown}/` in .cruignore)"
                ))
            }
            (mode, false) => {
                let kind = if mode == 0o120000 {
                    "a symbolic link"
                } else {
                    "a file"
                };
                return Some(format!(
                    "in the last commit {shown} is {kind}, and now it is a folder (a path \
                     cannot be both); commit the change that replaced it by a folder \
                     yourself first, then run cru again"
                ));
            }
        }
    }
    None
}

/// Marks every index entry whose file differs from it as needing a re-read (size 0, as git
/// does), before the index is written back. Rewriting the index gives it a new mtime, which
/// hides the user's same-size changes made in the second of the old index from git's racy
/// check: git would then call those files clean.
pub(super) fn smudge_modified(
    repo: &Repository,
    index: &mut git2::Index,
) -> Result<(), git2::Error> {
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let changed: Vec<PathBuf> = repo
        .statuses(Some(&mut options))?
        .iter()
        .filter(|s| {
            s.status()
                .intersects(git2::Status::WT_MODIFIED | git2::Status::WT_TYPECHANGE)
        })
        .filter_map(|s| s.path().ok().map(PathBuf::from))
        .collect();
    for path in changed {
        if let Some(mut entry) = index.get_path(&path, 0) {
            entry.file_size = 0;
            index.add(&entry)?;
        }
    }
    Ok(())
}

pub(super) fn signature(
    repo: &Repository,
    spec: &CommitSpec,
) -> Result<Signature<'static>, git2::Error> {
    let config = repo.config().ok();
    let from_config = |key: &str| {
        config
            .as_ref()
            .and_then(|c| c.get_string(key).ok())
            .filter(|v| !v.trim().is_empty())
    };
    let name = spec
        .name
        .clone()
        .or_else(|| from_config("user.name"))
        .unwrap_or_else(|| "cru".to_string());
    let email = spec
        .email
        .clone()
        .or_else(|| from_config("user.email"))
        .unwrap_or_else(|| "cru@localhost".to_string());
    Signature::now(&name, &email)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree with a file `config`, a link `link`, a submodule `sub` and a folder `dir`.
    fn tree(repo: &Repository) -> git2::Tree<'_> {
        let blob = repo.blob(b"x\n").unwrap();
        let mut dir = repo.treebuilder(None).unwrap();
        dir.insert("x", blob, 0o100644).unwrap();
        let dir = dir.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("config", blob, 0o100644).unwrap();
        root.insert("link", blob, 0o120000).unwrap();
        // Any id will do for a gitlink: it names a commit of another repository.
        root.insert("sub", blob, GITLINK as i32).unwrap();
        root.insert("dir", dir, 0o040000).unwrap();
        repo.find_tree(root.write().unwrap()).unwrap()
    }

    #[test]
    fn file_folder_conflicts_name_the_path_and_what_to_do() {
        let temp = tempfile::tempdir().unwrap();
        let repo = Repository::init(temp.path()).unwrap();
        let tree = tree(&repo);
        let conflict = |p: &str| tree_conflict(&tree, Path::new(p));
        let file = conflict("config/app.yaml").unwrap();
        assert!(
            file.contains("config is a file, and now it is a folder"),
            "{file}"
        );
        assert!(file.contains("commit the change"), "{file}");
        let link = conflict("link/app.yaml").unwrap();
        assert!(link.contains("link is a symbolic link"), "{link}");
        let sub = conflict("sub/deep/app.yaml").unwrap();
        assert!(sub.contains("sub is a submodule"), "{sub}");
        assert!(sub.contains("--repository sub"), "{sub}");
        let folder = conflict("dir").unwrap();
        assert!(
            folder.contains("dir is a folder, and now it is a file"),
            "{folder}"
        );
        for fine in ["config", "dir/x", "dir/new/y", "new/z", "link"] {
            assert_eq!(conflict(fine), None, "{fine}");
        }
    }
}
