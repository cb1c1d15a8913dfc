"""The agent's own records, under ROOT/var/lib/fwcfg-agent/:

- `journal.jsonl`: one JSON object per run, appended (runinfo.append; format in the README). A
  run appends a `pending` record listing every change and its backup before it touches a file,
  and its final record when done: the last record of a run id is the one that counts.
- `state.json`: the files the agent manages now, their digests, and what they held before.
- `snapshot`: the last full run's record, for the fast path (fast.py).
- `backups/<run>/<path>`: what a run replaced or removed (the file, or the symlink), for
  `rollback`.

Everything read back from here is checked before use: a path must be one the agent manages
(absolute, normalised, under a managed directory), and a backup must lie under backups/.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from typing import Any, Optional

from .errors import RootError, StateError
from .formats import managed_paths
from .fsutil import Node, clean_stale_temps, read_node, sync_dirs, write_node
from .rootfs import Reader, chase
from .runinfo import JOURNAL, STATE_DIR, line
from .tuples import NamedTuple

STATE = STATE_DIR + "/state.json"
BACKUPS = "backups"

# Where the agent writes: each format's files (formats.SPECS), the cloud-init drop-in.
MANAGED_FILES, MANAGED_DIRS = managed_paths()
_RUN_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-")


def managed_path(path: object) -> bool:
    """A path the agent may write or remove: absolute, normalised, and one of its files or a
    plain file name directly in one of its directories."""
    if not isinstance(path, str) or "\0" in path or "\n" in path:
        return False
    if path in MANAGED_FILES:
        return True
    for d in MANAGED_DIRS:
        if path.startswith(d):
            name = path[len(d):]
            return bool(name) and "/" not in name and name not in (".", "..")
    return False


def valid_run_id(run: object) -> bool:
    return isinstance(run, str) and 0 < len(run) <= 64 and set(run) <= _RUN_CHARS \
        and run not in (".", "..")


def backup_ref(run: str, path: str) -> str:
    return f"{BACKUPS}/{run}/{path.lstrip('/')}"


def valid_backup(ref: object) -> bool:
    if not isinstance(ref, str):
        return False
    parts = ref.split("/", 2)
    return len(parts) == 3 and parts[0] == BACKUPS and valid_run_id(parts[1]) \
        and managed_path("/" + parts[2])


class ManagedFile(NamedTuple):
    sha256: str
    mode: int
    format: str
    # The backup of what was there before the agent first wrote this file, restored when the
    # setting goes away; None when the agent created the file.
    original: Optional[str] = None
    shared: bool = False  # a file the agent shares with the admin (the /etc/hosts block)


class State:
    """The agent's state: mutable, saved whole by Journal.save_state."""

    __slots__ = ("files", "hostname", "run")

    def __init__(self, files: Optional[dict[str, ManagedFile]] = None,
                 hostname: Optional[str] = None, run: Optional[str] = None) -> None:
        self.files: dict[str, ManagedFile] = files if files is not None else {}
        self.hostname = hostname
        self.run = run

    def to_json(self) -> dict[str, Any]:
        return {"version": 1, "hostname": self.hostname, "run": self.run,
                "files": {p: f._asdict() for p, f in sorted(self.files.items())}}

    @classmethod
    def from_json(cls, raw: object) -> State:
        """The state as saved; ValueError naming what is wrong when it is not."""
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        files = raw.get("files", {})
        if not isinstance(files, dict):
            raise ValueError("'files' is not an object")
        out: dict[str, ManagedFile] = {}
        for path, f in files.items():
            if not managed_path(path):
                raise ValueError(f"{path!r} is not a file the agent manages")
            if not isinstance(f, dict):
                raise ValueError(f"the record of {path} is not an object")
            try:
                m = ManagedFile(**f)
            except TypeError as e:
                raise ValueError(f"the record of {path}: {e}") from None
            if not (isinstance(m.sha256, str) and isinstance(m.mode, int)
                    and not isinstance(m.mode, bool) and 0 <= m.mode <= 0o7777
                    and isinstance(m.format, str) and isinstance(m.shared, bool)
                    and (m.original is None or valid_backup(m.original))):
                raise ValueError(f"the record of {path} has a wrong value")
            out[path] = m
        hostname, run = raw.get("hostname"), raw.get("run")
        if not (hostname is None or isinstance(hostname, str)) or \
                not (run is None or valid_run_id(run)):
            raise ValueError("'hostname' or 'run' has a wrong value")
        return cls(out, hostname, run)


def valid_record(rec: object) -> bool:
    """A journal record this agent can act on: its run id, and each file's path, backup,
    digests and modes of the right types."""
    if not isinstance(rec, dict) or not valid_run_id(rec.get("run")):
        return False
    files = rec.get("files", [])
    if not isinstance(files, list):
        return False
    for f in files:
        if not isinstance(f, dict) or not managed_path(f.get("path")):
            return False
        if f.get("backup") is not None and not valid_backup(f.get("backup")):
            return False
        for key in ("sha256_before", "sha256_after", "link_before"):
            if f.get(key) is not None and not isinstance(f.get(key), str):
                return False
        for key in ("mode", "mode_before"):
            mode = f.get(key)
            if mode is not None and not (isinstance(mode, str) and 0 < len(mode) <= 4
                                         and set(mode) <= set("01234567")):
                return False
    before = rec.get("state_before")
    if before is not None:
        try:
            State.from_json({"files": before})
        except ValueError:
            return False
    dirs = rec.get("dirs_created", [])
    return isinstance(dirs, list) and all(isinstance(d, str) and d.startswith("/etc/")
                                          and ".." not in d.split("/") for d in dirs)


class Scan:
    """The journal as read: valid runs (last record each, oldest first), the line each run
    first appears on, the lines that are JSON records of the wrong shape, and how many lines
    are not JSON at all (a torn append)."""

    def __init__(self, runs: list[dict[str, Any]], first_line: dict[str, int],
                 damaged: list[int], torn: int) -> None:
        self.runs = runs
        self.first_line = first_line
        self.damaged = damaged
        self.torn = torn


class Journal:
    def __init__(self, root: str) -> None:
        self.root = root
        self._saved: Optional[bytes] = None  # the state this object last wrote, on the disk
        # the directories that hold an entry for a directory this object made (the state
        # directory itself, and its parents, on a first run), until an fsync covers them
        self._new_entries: set[str] = set()

    @property
    def dir(self) -> str:
        return chase(self.root, STATE_DIR)

    # backups -------------------------------------------------------------------------------

    def save_backup(self, run: str, path: str, node: Node) -> str:
        ref = backup_ref(run, path)
        made = write_node(self.root, f"{STATE_DIR}/{ref}", node, sync_dir=False)
        self._note_made(made)
        return ref

    def _note_made(self, made: Sequence[str]) -> None:
        """Directories made for a backup or the state: the ones inside the state directory are
        synced with the backups and by the state's save; the state directory's own entry (and
        its parents', when the run made them) are noted here."""
        inside = self.dir.rstrip("/") + "/"
        for d in made:
            parent = os.path.dirname(chase(self.root, d))
            if not (parent + "/").startswith(inside):
                self._new_entries.add(parent)

    def _sync_new_entries(self) -> None:
        if self._new_entries:
            sync_dirs(self._new_entries)
            self._new_entries.clear()

    def read_backup(self, ref: object) -> Node:
        if not valid_backup(ref):
            raise StateError(f"the journal or state names a backup that is not the agent's: "
                             f"{ref!r}")
        assert isinstance(ref, str)
        try:
            node = read_node(self.root, f"{STATE_DIR}/{ref}")
        except RootError as e:
            raise StateError(f"backup {e}") from None
        if node is None:
            raise StateError(f"backup {chase(self.root, STATE_DIR)}/{ref} is missing")
        return node

    def sync_backups(self, refs: Sequence[str], *, state_next: bool = False) -> None:
        """fsync the directories of these backups up to the state directory. With
        `state_next` the caller saves the state before anything relies on the backups: that
        save's fsync of the state directory makes its entry for backups/ durable as well."""
        top = self.dir
        sync_dirs({os.path.dirname(chase(self.root, f"{STATE_DIR}/{r}")) for r in refs}, top,
                  top_too=not state_next)
        if not state_next:
            self._sync_new_entries()

    # state ---------------------------------------------------------------------------------

    def load_state(self, reader: Optional[Reader] = None) -> State:
        """The state; StateError (naming the file and what is wrong) when it is damaged."""
        data = (reader or Reader(self.root)).read(STATE)
        if data is None:
            if os.path.lexists(chase(self.root, STATE)) and not os.path.isfile(
                    chase(self.root, STATE)):
                raise StateError(f"{chase(self.root, STATE)} is not a file")
            return State()
        try:
            return State.from_json(json.loads(data))
        except ValueError as e:
            raise StateError(f"{chase(self.root, STATE)} is damaged: {e}") from None

    def set_aside_state(self) -> str:
        """Move a damaged state out of the way (kept for a person to look at)."""
        path = chase(self.root, STATE, follow_last=False)
        os.replace(path, path + ".damaged")
        return path + ".damaged"

    def state_bytes(self, state: State) -> bytes:
        return json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"

    def save_state(self, state: State) -> bytes:
        """Write the state (atomically, fsynced), unless the same bytes are there already from
        this object's last save: a run that adds files only saves its final state as it saved
        the pending one, and writing and syncing it again would change nothing."""
        data = self.state_bytes(state)
        if data != self._saved:
            self._note_made(write_node(self.root, STATE, Node("reg", data, 0o644)))
            self._saved = data
        self._sync_new_entries()
        return data

    # journal -------------------------------------------------------------------------------

    def records(self) -> tuple[list[dict[str, Any]], int]:
        """Every run's last record, oldest first, and how many damaged lines were skipped (a
        torn last line from a crash mid-append among them)."""
        scan = self.scan()
        return scan.runs, len(scan.damaged) + scan.torn

    def scan(self) -> Scan:
        node = read_node(self.root, JOURNAL)
        scan = Scan([], {}, [], 0)
        if node is None or node.kind != "reg":
            return scan
        latest: dict[str, dict[str, Any]] = {}
        for number, raw in enumerate(node.data.splitlines(), start=1):
            try:
                rec = json.loads(raw)
            except ValueError:
                scan.torn += 1
                continue
            if not valid_record(rec):
                scan.damaged.append(number)
                continue
            if rec["run"] not in latest:
                scan.first_line[rec["run"]] = number
            latest[rec["run"]] = rec
        scan.runs.extend(latest[r] for r in scan.first_line)
        return scan

    def runs(self) -> list[dict[str, Any]]:
        return self.records()[0]

    def prune(self, keep: int, state: State) -> None:
        """Keep the last `keep` runs (and the backups they and the state refer to)."""
        runs = self.runs()
        if len(runs) > keep:
            runs = runs[-keep:]
            data = b"".join(line(r) for r in runs)
            write_node(self.root, JOURNAL, Node("reg", data, 0o644))
        needed = {r["run"] for r in runs}
        needed |= {f.original.split("/")[1] for f in state.files.values() if f.original}
        backups = chase(self.root, f"{STATE_DIR}/{BACKUPS}")
        try:
            names = os.listdir(backups)
        except OSError:
            return
        for name in names:
            if name not in needed:
                shutil.rmtree(os.path.join(backups, name), ignore_errors=True)

    def clean_temps(self) -> None:
        """Temp files a killed run left in the state directory and under backups/."""
        top = self.dir
        for d, _, _ in os.walk(top):
            clean_stale_temps(d)
        try:
            for name in os.listdir(top):
                if name.startswith("snapshot.") and name.endswith(".tmp"):
                    os.unlink(os.path.join(top, name))
        except OSError:
            pass
