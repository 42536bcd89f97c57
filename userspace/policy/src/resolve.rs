//! Symlink resolution confined to a root directory, as if the process had
//! done chroot(root). It matches openat2(2) with RESOLVE_IN_ROOT: an absolute
//! target restarts at the root, and ".." at the root stays at the root, so no
//! link in an unpacked image can lead to a file of the host.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

/// The maximum number of symlinks followed in one resolution, the Linux
/// limit (MAXSYMLINKS in include/linux/namei.h, 6.12).
const MAX_SYMLINKS: usize = 40;

/// Resolves `device_path`, an absolute path as seen inside `root`, to the
/// path of the file it names, with every symlink followed inside `root`.
/// The result is absolute and contains no symlink, "." or "..".
///
/// Fails with NotFound for a dangling link, with ELOOP after
/// [`MAX_SYMLINKS`] links, and with ENOTDIR when a non-final component is
/// not a directory.
pub(crate) fn resolve_in_root(root: &Path, device_path: &Path) -> io::Result<PathBuf> {
    // Components still to walk, next one last so that a link target can be
    // pushed in front of the rest.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, device_path);

    let mut resolved: Vec<OsString> = Vec::new();
    let mut links_followed = 0;

    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }

        let mut host_path = root.to_path_buf();
        host_path.extend(&resolved);
        host_path.push(&name);
        let metadata = fs::symlink_metadata(&host_path)?;

        if metadata.file_type().is_symlink() {
            links_followed += 1;
            if links_followed > MAX_SYMLINKS {
                return Err(io::Error::from_raw_os_error(libc::ELOOP));
            }
            let target = fs::read_link(&host_path)?;
            if target.is_absolute() {
                resolved.clear();
            }
            push_components(&mut pending, &target);
            continue;
        }

        if !pending.is_empty() && !metadata.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        resolved.push(name);
    }

    let mut result = PathBuf::from("/");
    result.extend(&resolved);
    Ok(result)
}

/// Pushes the components of `path` onto `pending` so that the first component
/// is popped first. The root and "." components are dropped.
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let components = path.components().filter_map(|component| match component {
        Component::Normal(name) => Some(name.to_owned()),
        Component::ParentDir => Some(OsString::from("..")),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    });
    let components: Vec<OsString> = components.collect();
    pending.extend(components.into_iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn fixture() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let base = root.path();
        fs::create_dir_all(base.join("usr/lib")).unwrap();
        fs::write(base.join("usr/lib/libx.so"), b"x").unwrap();
        symlink("usr/lib", base.join("lib")).unwrap();
        root
    }

    #[test]
    fn resolve_absolute_target_inside_root() {
        let root = fixture();
        symlink("/lib/libx.so", root.path().join("usr/lib/alias")).unwrap();

        let resolved = resolve_in_root(root.path(), Path::new("/usr/lib/alias")).unwrap();
        assert_eq!(resolved, Path::new("/usr/lib/libx.so"));
    }

    #[test]
    fn resolve_dotdot_stops_at_root() {
        let root = fixture();
        symlink("../../../../../lib/libx.so", root.path().join("usr/escape")).unwrap();

        let resolved = resolve_in_root(root.path(), Path::new("/usr/escape")).unwrap();
        assert_eq!(resolved, Path::new("/usr/lib/libx.so"));
    }

    #[test]
    fn resolve_never_reaches_host_file() {
        // /etc/hostname exists on the host but not in the fixture root.
        let root = fixture();
        symlink("/etc/hostname", root.path().join("host-link")).unwrap();

        let error = resolve_in_root(root.path(), Path::new("/host-link")).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn resolve_symlink_loop_fails() {
        let root = fixture();
        symlink("b", root.path().join("a")).unwrap();
        symlink("a", root.path().join("b")).unwrap();

        let error = resolve_in_root(root.path(), Path::new("/a")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn resolve_file_as_directory_fails() {
        let root = fixture();
        symlink("/usr/lib/libx.so/more", root.path().join("bad")).unwrap();

        let error = resolve_in_root(root.path(), Path::new("/bad")).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::ENOTDIR));
    }
}
