"""The change journal and the agent's state, under ROOT/var/lib/fwcfg-agent/.

- `journal.jsonl`: one JSON object per run, appended (format in the README).
- `state.json`: the files the agent manages now, their digests, and what they held before.
- `snapshot`: the inputs and outputs of the last full run, for the fast path (fast.py).
- `backups/<run>/<path>`: the bytes a run replaced or removed, for `rollback`.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, NamedTuple, Optional

from .errors import StateError
from .fsutil import atomic_write, sync_dirs

JOURNAL = "journal.jsonl"
STATE = "state.json"
BACKUPS = "backups"


class ManagedFile(NamedTuple):
    sha256: str
    mode: int
    format: str
    # The backup (relative to the state dir) of what was there before the agent first wrote
    # this file, restored when the setting goes away; None when the agent created the file.
    original: Optional[str] = None
    shared: bool = False  # a file the agent shares with the admin (/etc/hosts block)


class State:
    """The agent's state: mutable, saved whole by Journal.save_state."""

    __slots__ = ("files", "hostname", "run")

    def __init__(self, files: Optional[dict[str, ManagedFile]] = None,
                 hostname: Optional[str] = None, run: Optional[str] = None) -> None:
        self.files: dict[str, ManagedFile] = files if files is not None else {}
        self.hostname = hostname
        self.run = run

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "files": {p: f._asdict() for p, f in sorted(self.files.items())},
            "hostname": self.hostname,
            "run": self.run,
        }


def new_run_id() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1e6) % 1000000:06d}Z-{os.urandom(3).hex()}"


def now_iso() -> str:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1e6) % 1000000:06d}Z"


class Journal:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir

    def backup_path(self, run: str, path: str) -> Path:
        return self.dir / BACKUPS / run / path.lstrip("/")

    def backup_rel(self, run: str, path: str) -> str:
        return f"{BACKUPS}/{run}/{path.lstrip('/')}"

    def save_backup(self, run: str, path: str, data: bytes, mode: int, *,
                    sync_dir: bool = True) -> str:
        target = self.backup_path(run, path)
        atomic_write(target, data, mode & 0o777 or 0o600, sync_dir=False)
        if sync_dir:
            sync_dirs({target.parent}, self.dir)
        return self.backup_rel(run, path)

    def read_backup(self, rel: str) -> bytes:
        try:
            return (self.dir / rel).read_bytes()
        except OSError as e:
            raise StateError(f"backup {self.dir / rel} is missing: {e.strerror}") from None

    # state ---------------------------------------------------------------------------------

    def load_state(self) -> State:
        try:
            raw = json.loads((self.dir / STATE).read_bytes())
            files = {p: ManagedFile(**f) for p, f in raw.get("files", {}).items()}
            return State(files, raw.get("hostname"), raw.get("run"))
        except FileNotFoundError:
            return State()
        except (OSError, ValueError, TypeError) as e:
            # A damaged state only costs the fast path and the removal of stale files: start
            # afresh rather than refusing to configure the guest.
            raise StateError(f"{self.dir / STATE} is damaged: {e}") from None

    def save_state(self, state: State) -> None:
        data = json.dumps(state.to_json(), indent=1, sort_keys=True).encode() + b"\n"
        atomic_write(self.dir / STATE, data, 0o644)

    # journal -------------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        fd = os.open(self.dir / JOURNAL, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     0o644)
        try:
            os.write(fd, line)
            if record.get("files"):
                os.fsync(fd)
        finally:
            os.close(fd)

    def runs(self) -> list[dict[str, Any]]:
        """Every run recorded, oldest first. A torn last line (a crash mid-append) is skipped."""
        try:
            data = (self.dir / JOURNAL).read_bytes()
        except FileNotFoundError:
            return []
        out: list[dict[str, Any]] = []
        for line in data.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "run" in rec:
                out.append(rec)
        return out

    def prune(self, keep: int, state: State) -> None:
        """Keep the last `keep` runs (and the backups they and the state refer to)."""
        runs = self.runs()
        if len(runs) <= keep:
            return
        kept = runs[-keep:]
        lines = b"".join(
            json.dumps(r, sort_keys=True, separators=(",", ":")).encode() + b"\n" for r in kept
        )
        atomic_write(self.dir / JOURNAL, lines, 0o644)
        needed = {r["run"] for r in kept}
        needed |= {f.original.split("/")[1] for f in state.files.values() if f.original}
        import shutil

        backups = self.dir / BACKUPS
        if backups.is_dir():
            for d in backups.iterdir():
                if d.name not in needed:
                    shutil.rmtree(d, ignore_errors=True)
