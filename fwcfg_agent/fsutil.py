"""Crash-safe file operations under the root: every file is wholly old or wholly new.

Every path is resolved inside the root (rootfs.chase); the final component is never followed:
a symlink where the agent writes a file is replaced by the file (as systemd-hostnamed and
NetworkManager do), and comes back as the same symlink on rollback. What a path holds is a
`Node`: a regular file's bytes and mode (setuid, setgid and sticky bits included), or a
symlink's target.
"""

from __future__ import annotations

import contextlib
import os
import stat
from typing import Optional

from .digest import hash_function
from .errors import RootError
from .rootfs import chase, makedirs
from .tuples import NamedTuple

_sha256 = hash_function("sha256")

_SELINUX_XATTR = "security.selinux"
TEMP_MARK = ".fwcfg-agent."


def sha256(data: bytes) -> str:
    return str(_sha256(data).hexdigest())


class Node(NamedTuple):
    """What a path holds: a regular file ("reg": data, mode) or a symlink ("lnk": link)."""

    kind: str
    data: bytes = b""
    mode: int = 0
    link: str = ""

    @property
    def digest(self) -> str:
        return sha256(self.data if self.kind == "reg" else os.fsencode(self.link))

    def same(self, other: Optional[Node]) -> bool:
        return other is not None and self == other


def read_node(root: str, rel: str) -> Optional[Node]:
    """The node at rel (final component not followed); None when nothing is there. A directory
    or a device where a file belongs is a RootError naming the path."""
    path = chase(root, rel, follow_last=False)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise RootError(path, "a component of the path is a file where a directory "
                              "belongs") from None
    except OSError as e:
        raise RootError(path, e) from None
    if stat.S_ISLNK(st.st_mode):
        return Node("lnk", link=os.readlink(path))
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise RootError(path, f"is {kind} where the agent manages a file")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RootError(path, e) from None
    return Node("reg", data, stat.S_IMODE(st.st_mode))


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_node(root: str, rel: str, node: Node, *, selinux: bool = False,
               sync_dir: bool = True) -> list[str]:
    """Put `node` at rel atomically: a temp file (or link) in the same directory, fsync,
    rename. Keeps the old file's owner and SELinux label. Returns the directories it created
    (relative to the root, outermost first). OSError escapes as RootError naming the path."""
    parent_rel = os.path.dirname(rel.lstrip("/"))
    try:
        created = makedirs(root, parent_rel)
    except OSError as e:
        raise RootError(chase(root, parent_rel), e) from None
    path = chase(root, rel, follow_last=False)
    try:
        old = os.lstat(path)
        owner: Optional[tuple[int, int]] = (old.st_uid, old.st_gid)
        if stat.S_ISDIR(old.st_mode):
            raise RootError(path, "is a directory where the agent manages a file")
    except FileNotFoundError:
        owner = None
    except OSError as e:
        raise RootError(path, e) from None
    tmp = os.path.join(os.path.dirname(path),
                       f".{os.path.basename(path)}{TEMP_MARK}{os.getpid()}.tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if node.kind == "lnk":
            os.symlink(node.link, tmp)
        else:
            _write_file(tmp, node, owner, path if selinux else None)
        os.rename(tmp, path)
        if sync_dir:
            fsync_dir(os.path.dirname(path))
    except OSError as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise RootError(path, e) from None
    if selinux and owner is None:
        restorecon(path)
    return created


def _write_file(tmp: str, node: Node, owner: Optional[tuple[int, int]],
                label_from: Optional[str]) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(node.data)
        f.flush()
        if owner is not None and os.geteuid() == 0:
            os.fchown(f.fileno(), *owner)
        os.fchmod(f.fileno(), node.mode)  # after chown, which clears setuid and setgid
        if label_from is not None:
            _copy_label(label_from, f.fileno())
        os.fsync(f.fileno())


def remove(root: str, rel: str, *, sync_dir: bool = True) -> None:
    path = chase(root, rel, follow_last=False)
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise RootError(path, e) from None
    if sync_dir:
        fsync_dir(os.path.dirname(path))


def remove_empty_dirs(root: str, rels: list[str]) -> None:
    """Remove these directories (innermost first) where they are empty."""
    for rel in sorted(rels, key=lambda r: r.count("/"), reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(chase(root, rel, follow_last=False))


def clean_stale_temps(directory: str) -> None:
    """Remove the temp files that a killed run left behind (never a target file)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and TEMP_MARK in name and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


def sync_dirs(dirs: set[str], top: Optional[str] = None, *, top_too: bool = True) -> None:
    """fsync each directory once; with `top`, also every directory between each and `top`
    (newly created directories must reach the disk too), `top` itself unless not `top_too`."""
    todo = set(dirs)
    if top is not None:
        for d in dirs:
            while d != top and d.startswith(top.rstrip("/") + "/"):
                d = os.path.dirname(d)
                todo.add(d)
        if not top_too:
            todo.discard(top)
    for d in sorted(todo, key=lambda p: p.count("/"), reverse=True):
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            fsync_dir(d)


def _copy_label(old: str, fd: int) -> None:
    try:
        label = os.getxattr(old, _SELINUX_XATTR, follow_symlinks=False)
        os.setxattr(fd, _SELINUX_XATTR, label)
    except OSError:
        pass


def restorecon(path: str) -> None:
    import shutil
    import subprocess

    tool = shutil.which("restorecon")
    if tool:
        subprocess.run([tool, path], check=False, capture_output=True, timeout=10)


def selinux_enabled(root_is_host: bool) -> bool:
    return root_is_host and os.path.exists("/sys/fs/selinux/enforce")
