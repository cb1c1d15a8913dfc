"""Turn a plan into changes against what is on disk, apply them, and undo them."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any, NamedTuple, Optional

from .errors import StateError
from .fsutil import (
    atomic_remove,
    atomic_write,
    clean_stale_temps,
    read_or_none,
    sha256,
    sync_dirs,
)
from .journal import Journal, ManagedFile, State
from .log import MSG_FILE, Log
from .paths import Root
from .render import Plan, remove_block

CREATE, UPDATE, REMOVE = "created", "updated", "removed"


class Change(NamedTuple):
    path: str
    action: str
    before: Optional[bytes]
    after: Optional[bytes]
    mode: int
    format: str
    shared: bool = False
    before_mode: Optional[int] = None
    original: Optional[str] = None  # for a removal that restores the pre-agent original


def _mode(root: Root, path: str) -> Optional[int]:
    try:
        return stat.S_IMODE(os.lstat(root / path).st_mode)
    except FileNotFoundError:
        return None


def compute_changes(plan: Plan, root: Root, state: State, journal: Journal) -> list[Change]:
    changes: list[Change] = []
    planned = set()
    for f in plan.files:
        planned.add(f.path)
        current = read_or_none(root / f.path)
        mode = _mode(root, f.path)
        if current == f.content and mode == f.mode:
            continue
        changes.append(Change(f.path, CREATE if current is None else UPDATE, current,
                              f.content, f.mode, f.format.value, f.shared, mode))
    for path, managed in sorted(state.files.items()):
        if path in planned:
            continue
        current = read_or_none(root / path)
        if current is None:
            continue
        mode = _mode(root, path) or managed.mode
        if managed.shared:
            after: Optional[bytes] = remove_block(current.decode("utf-8", "replace")).encode()
            if after == current:
                continue
            changes.append(Change(path, UPDATE, current, after, mode, managed.format, True, mode))
        elif managed.original is not None:
            original = journal.read_backup(managed.original)
            changes.append(Change(path, UPDATE, current, original, mode, managed.format,
                                  False, mode, managed.original))
        else:
            changes.append(Change(path, REMOVE, current, None, mode, managed.format, False,
                                  mode))
    return changes


def execute(changes: Sequence[Change], plan: Plan, root: Root, journal: Journal, state: State,
            run: str, *, selinux: bool, log: Log) -> list[dict[str, Any]]:
    """Apply the changes one atomic file at a time, backing up what each replaces.

    The state is saved before any file is touched and again after, so a crash at any point
    leaves every file wholly old or wholly new and the next run finishing the job.
    """
    records: list[dict[str, Any]] = []
    new_files = dict(state.files)
    backups: dict[str, str] = {}
    for c in changes:
        if c.before is not None:
            backups[c.path] = journal.save_backup(run, c.path, c.before, c.before_mode or 0o600,
                                                  sync_dir=False)
    for f in plan.files:
        old = state.files.get(f.path)
        original = old.original if old else None
        if old is None and f.path in backups:
            original = backups[f.path]  # first time we take this file over: keep what it was
        elif old is None and not f.shared:
            current = read_or_none(root / f.path)
            if current is not None:  # identical content already there: still remember it
                original = journal.save_backup(run, f.path, current,
                                               _mode(root, f.path) or f.mode, sync_dir=False)
        new_files[f.path] = ManagedFile(sha256(f.content), f.mode, f.format.value, original,
                                        f.shared)
    for c in changes:
        if c.path not in {f.path for f in plan.files}:
            new_files.pop(c.path, None)
    # Every backup is on disk before the file it backs up is replaced.
    saved = set(backups.values()) | {f.original for f in new_files.values()
                                     if f.original and f"/{run}/" in f.original}
    sync_dirs({(journal.dir / rel).parent for rel in saved}, journal.dir)
    pending = State(new_files, plan.hostname, run)
    journal.save_state(pending)
    for c in changes:
        target = root / c.path
        if c.after is None:
            atomic_remove(target)
        else:
            atomic_write(target, c.after, c.mode, selinux=selinux, sync_dir=False)
        rec = {
            "path": c.path,
            "action": c.action,
            "format": c.format,
            "sha256_before": sha256(c.before) if c.before is not None else None,
            "sha256_after": sha256(c.after) if c.after is not None else None,
            "mode": f"{c.mode:04o}",
            "mode_before": f"{c.before_mode:04o}" if c.before_mode is not None else None,
            "backup": backups.get(c.path),
        }
        records.append(rec)
        log.info(f"{c.action} {c.path}", MSG_FILE, path=c.path, action=c.action, run=run,
                 sha256=rec["sha256_after"], backup=rec["backup"])
    sync_dirs({(root / c.path).parent for c in changes if c.after is not None}, root.path)
    for directory in sorted({(root / c.path).parent for c in changes} | {journal.dir}):
        clean_stale_temps(directory)
    state.files = new_files
    state.hostname = plan.hostname
    state.run = run
    return records


def undo(runs: Sequence[dict[str, Any]], root: Root, journal: Journal, run: str,
         *, selinux: bool, log: Log) -> list[dict[str, Any]]:
    """Undo `runs` (newest first): every file back to the bytes it had before them."""
    # What each path looked like before the oldest of these runs touched it.
    targets: dict[str, dict[str, Any]] = {}
    for rec in runs:  # newest first: older records overwrite, so the oldest wins
        for f in rec.get("files", []):
            targets[f["path"]] = f
    records: list[dict[str, Any]] = []
    for path, f in sorted(targets.items()):
        current = read_or_none(root / path)
        before: Optional[bytes]
        if f["sha256_before"] is None:
            before = None
        else:
            if not f.get("backup"):
                raise StateError(f"run {f.get('run', '?')} kept no backup of {path}")
            before = journal.read_backup(f["backup"])
            if sha256(before) != f["sha256_before"]:
                raise StateError(f"backup {f['backup']} does not match its recorded sha256")
        if current == before:
            continue
        backup = None
        if current is not None:
            backup = journal.save_backup(run, path, current, _mode(root, path) or 0o600)
        mode = int(f.get("mode_before") or f.get("mode") or "0644", 8)
        if before is None:
            atomic_remove(root / path)
            action = REMOVE
        else:
            atomic_write(root / path, before, mode, selinux=selinux)
            action = CREATE if current is None else UPDATE
        rec = {"path": path, "action": action, "format": f.get("format"),
               "sha256_before": sha256(current) if current is not None else None,
               "sha256_after": f["sha256_before"], "mode": f"{mode:04o}", "backup": backup,
               "mode_before": None}
        records.append(rec)
        log.info(f"rollback: {action} {path}", MSG_FILE, path=path, action=action, run=run)
    return records
