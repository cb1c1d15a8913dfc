"""Crash-safe file operations: every file is wholly old or wholly new at any instant."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

from .digest import hash_function

_sha256 = hash_function("sha256")

_SELINUX_XATTR = "security.selinux"


def sha256(data: bytes) -> str:
    return str(_sha256(data).hexdigest())


def read_or_none(path: Path) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int, *, selinux: bool = False,
                 sync_dir: bool = True) -> None:
    """Write `data` to `path` through a temp file in the same directory, fsync, rename, fsync
    the directory. Keeps the old file's owner and SELinux label; `mode` is set exactly.

    With sync_dir=False the caller fsyncs the directory itself (sync_dirs), once for many
    files: the file is whole either way, only the rename's durability waits for that fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        old = os.stat(path)
        owner: Optional[tuple[int, int]] = (old.st_uid, old.st_gid)
    except FileNotFoundError:
        owner = None
    tmp = path.with_name(f".{path.name}.fwcfg-agent.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW,
                 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(f.fileno(), *owner)
            if selinux:
                _copy_label(path, f.fileno())
            os.fsync(f.fileno())
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if sync_dir:
        fsync_dir(path.parent)
    if selinux and owner is None:
        restorecon(path)


def clean_stale_temps(directory: Path) -> None:
    """Remove temp files that a killed run left behind (never a target file)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(".") and ".fwcfg-agent." in name and name.endswith(".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(directory / name)


def sync_dirs(dirs: set[Path], top: Path | None = None) -> None:
    """fsync each directory once; with `top`, also every directory between each and `top`
    (newly created directories must reach the disk too)."""
    todo = set(dirs)
    if top is not None:
        for d in dirs:
            while d != top and top in d.parents:
                d = d.parent
                todo.add(d)
    for d in sorted(todo, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(d)


def atomic_remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def _copy_label(old: Path, fd: int) -> None:
    try:
        label = os.getxattr(old, _SELINUX_XATTR)
        os.setxattr(fd, _SELINUX_XATTR, label)
    except OSError:
        pass


def restorecon(path: Path) -> None:
    import shutil
    import subprocess

    tool = shutil.which("restorecon")
    if tool:
        subprocess.run([tool, str(path)], check=False, capture_output=True, timeout=10)


def selinux_enabled(root_is_host: bool) -> bool:
    return root_is_host and os.path.exists("/sys/fs/selinux/enforce")
