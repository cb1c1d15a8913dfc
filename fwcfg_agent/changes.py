"""From a plan to changes against what is on disk; making them, recorded first; undoing them.

Order of a run that changes files, so that a kill at any instant converges on the next run and
every change can be undone:
1. back up every node a change replaces or removes (fsynced);
2. save a state that lists both the files the run writes and the ones it removes;
3. append the run's `pending` journal record: every change, with its backup (fsynced);
4. make the changes, one atomic rename or unlink each;
5. save the final state (the caller then appends the run's final record).
A change that fails (a full disk, an immutable file) undoes the run's earlier changes and is
recorded as `failed`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Optional

from .errors import AgentError, RootError, StateError
from .fsutil import (
    Node,
    clean_stale_temps,
    read_node,
    remove,
    remove_empty_dirs,
    sha256,
    sync_dirs,
    write_node,
)
from .journal import MANAGED_DIRS, MANAGED_FILES, Journal, ManagedFile, State
from .log import MSG_FILE, Log
from .render import Plan, remove_block
from .rootfs import Reader, chase, evaluate
from .runinfo import append
from .tuples import NamedTuple

CREATE, UPDATE, REMOVE = "created", "updated", "removed"


class Change(NamedTuple):
    path: str
    action: str
    before: Optional[Node]
    after: Optional[Node]
    format: str
    shared: bool = False


def _mode_text(node: Optional[Node]) -> Optional[str]:
    return f"{node.mode:04o}" if node is not None and node.kind == "reg" else None


def compute(plan: Plan, root: str, state: State, journal: Journal) -> list[Change]:
    changes: list[Change] = []
    planned = set()
    for f in plan.files:
        planned.add(f.path)
        before = read_node(root, f.path)
        after = Node("reg", f.content, f.mode)
        if before == after:
            continue
        changes.append(Change(f.path, CREATE if before is None else UPDATE, before, after,
                              f.format.value, f.shared))
    for path, managed in sorted(state.files.items()):
        if path in planned:
            continue
        before = read_node(root, path)
        if before is None:
            continue
        if managed.shared:
            if before.kind != "reg":
                continue
            text = remove_block(before.data.decode("utf-8", "replace")).encode()
            if text == before.data:
                continue
            changes.append(Change(path, UPDATE, before, Node("reg", text, before.mode),
                                  managed.format, True))
        elif managed.original is not None:
            original = journal.read_backup(managed.original)
            if original != before:
                changes.append(Change(path, UPDATE, before, original, managed.format))
        else:
            changes.append(Change(path, REMOVE, before, None, managed.format))
    return changes


def file_record(c: Change, backup: Optional[str]) -> dict[str, Any]:
    """A change as the journal lists it (README: 'What it changed')."""
    return {
        "path": c.path, "action": c.action, "format": c.format,
        "sha256_before": c.before.digest if c.before is not None else None,
        "sha256_after": c.after.digest if c.after is not None else None,
        "mode": _mode_text(c.after), "mode_before": _mode_text(c.before),
        "link_before": c.before.link if c.before is not None and c.before.kind == "lnk"
        else None,
        "backup": backup,
    }


class Outcome(NamedTuple):
    files: list[dict[str, Any]]
    dirs_created: list[str]


def _make(root: str, changes: Sequence[Change], *, selinux: bool) -> list[str]:
    """Make the changes in order; on an error, put back what was changed and re-raise."""
    done: list[Change] = []
    created: list[str] = []
    try:
        for c in changes:
            if c.after is None:
                remove(root, c.path, sync_dir=False)
            else:
                created += write_node(root, c.path, c.after, selinux=selinux, sync_dir=False)
            done.append(c)
    except AgentError:
        for c in reversed(done):
            try:
                if c.before is None:
                    remove(root, c.path)
                else:
                    write_node(root, c.path, c.before, selinux=selinux)
            except AgentError:
                pass  # the journal's pending record still lets rollback try again
        remove_empty_dirs(root, created)
        raise
    # each changed file's directory, and the directory holding each one the run made
    sync_dirs({os.path.dirname(chase(root, c.path, follow_last=False)) for c in changes}
              | {os.path.dirname(chase(root, d)) for d in created})
    return created


def execute(changes: Sequence[Change], plan: Plan, root: str, journal: Journal, state: State,
            run: str, base: dict[str, Any], *, selinux: bool, log: Log) -> Outcome:
    """Make the changes (see the module's docstring for the order), if any; `state` is
    updated to the files the plan manages either way."""
    backups: dict[str, str] = {}
    for c in changes:
        if c.before is not None:
            backups[c.path] = journal.save_backup(run, c.path, c.before)
    new_files: dict[str, ManagedFile] = {}
    for f in plan.files:
        old = state.files.get(f.path)
        original = old.original if old else None
        if old is None and not f.shared:
            if f.path in backups:
                original = backups[f.path]  # first time we take this file over: keep it
            else:
                current = read_node(root, f.path)
                if current is not None:  # the same content already there: still keep it
                    original = journal.save_backup(run, f.path, current)
        new_files[f.path] = ManagedFile(sha256(f.content), f.mode, f.format.value, original,
                                        f.shared)
    # with changes, the pending state follows: it names this run, so it is written (save_state)
    journal.sync_backups([*backups.values(), *(m.original for m in new_files.values()
                                               if m.original and f"/{run}/" in m.original)],
                         state_next=bool(changes))
    files = [file_record(c, backups.get(c.path)) for c in changes]
    created: list[str] = []
    if changes:
        removing = {c.path for c in changes if c.path not in new_files}
        pending = State({**new_files, **{p: state.files[p] for p in removing
                                         if p in state.files}}, plan.hostname, run)
        journal.save_state(pending)
        append(root, {**base, "outcome": "pending", "files": files}, sync=True)
        try:
            created = _make(root, changes, selinux=selinux)
        except AgentError as e:
            journal.save_state(state)
            append(root, {**base, "outcome": "failed", "error": str(e), "files": []},
                   sync=True)
            raise
    for c, rec in zip(changes, files):
        log.info(f"{c.action} {c.path}", MSG_FILE, path=c.path, action=c.action, run=run,
                 sha256=rec["sha256_after"], backup=rec["backup"])
    state.files = new_files
    state.hostname = plan.hostname
    state.run = run
    return Outcome(files, created)


def clean_temps(root: str) -> None:
    """The temp files a killed run left next to the files the agent manages."""
    for d in {"/etc", *(os.path.dirname(f) for f in MANAGED_FILES), *MANAGED_DIRS}:
        clean_stale_temps(chase(root, d))


def record_outputs(reader: Reader, root: str, plan: Plan, changes: Sequence[Change]) -> None:
    """What the files the run manages or changed are after it, in place of what the run read:
    the next boot's fast path compares against these."""
    for path in {*(f.path for f in plan.files), *(c.path for c in changes)}:
        reader.set("f", path, evaluate(root, "f", path))
        reader.set("m", path, evaluate(root, "m", path))


# --- rollback ------------------------------------------------------------------------------

def _target(journal: Journal, f: dict[str, Any]) -> Optional[Node]:
    """What a path held before a run changed it, checked against the record."""
    if f.get("sha256_before") is None:
        return None
    if f.get("link_before") is not None:
        node = Node("lnk", link=f["link_before"])
    else:
        if not f.get("backup"):
            raise StateError(f"the journal kept no backup of {f['path']}")
        if f["backup"].split("/", 2)[2] != f["path"].lstrip("/"):
            raise StateError(f"the journal names {f['backup']} as the backup of {f['path']}")
        node = journal.read_backup(f["backup"])
        mode = f.get("mode_before")
        if node.kind == "reg" and mode is not None:
            try:
                node = node._replace(mode=int(mode, 8) & 0o7777)
            except ValueError:
                raise StateError(f"the journal's mode of {f['path']} is damaged") from None
    if node.digest != f["sha256_before"]:
        raise StateError(f"backup {f.get('backup') or f['path']} does not match the journal's "
                         "sha256")
    return node


def plan_undo(runs: Sequence[dict[str, Any]], root: str,
              journal: Journal) -> tuple[list[Change], list[str]]:
    """Everything an undo of `runs` (newest first) will do, all checked before anything
    changes: StateError when a record or backup is missing or damaged."""
    targets: dict[str, dict[str, Any]] = {}
    dirs: list[str] = []
    for rec in runs:  # newest first: older records overwrite, so the oldest run wins
        for f in rec.get("files", []):
            targets[f["path"]] = f
        dirs += rec.get("dirs_created", [])
    changes = []
    for path, f in sorted(targets.items()):
        before = _target(journal, f)
        try:
            current = read_node(root, path)
        except RootError as e:
            raise StateError(f"cannot roll back {path}: {e}") from None
        if current == before:
            continue
        action = REMOVE if before is None else CREATE if current is None else UPDATE
        changes.append(Change(path, action, current, before, str(f.get("format") or "")))
    return changes, dirs


def undo(changes: Sequence[Change], dirs: Sequence[str], root: str, journal: Journal,
         run: str, base: dict[str, Any], *, selinux: bool, log: Log) -> list[dict[str, Any]]:
    backups = {c.path: journal.save_backup(run, c.path, c.before)
               for c in changes if c.before is not None}
    journal.sync_backups(list(backups.values()))
    files = [file_record(c, backups.get(c.path)) for c in changes]
    append(root, {**base, "outcome": "pending", "files": files}, sync=True)
    try:
        _make(root, changes, selinux=selinux)
    except AgentError as e:
        append(root, {**base, "outcome": "failed", "error": str(e), "files": []}, sync=True)
        raise
    remove_empty_dirs(root, [d for d in dirs if d.startswith("/etc/")])
    for c in changes:
        log.info(f"rollback: {c.action} {c.path}", MSG_FILE, path=c.path, action=c.action,
                 run=run)
    return files


