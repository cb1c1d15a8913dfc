"""`journal` and `rollback`: what the agent did, and undoing it.

`rollback` without RUN undoes the newest apply run that changed files and has not been undone;
each further `rollback` steps one run further back. `rollback RUN` undoes RUN and every later
apply run not undone yet. Everything is checked (records, backups, digests) before any file
changes: a missing or damaged backup is exit 6 with nothing changed.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

from . import fast
from .changes import clean_temps, plan_undo, undo
from .commands import Options
from .errors import StateError
from .fsutil import selinux_enabled
from .journal import Journal, State
from .log import MSG_APPLIED
from .runinfo import RunLock, append, new_run, record


def cmd_journal(opts: Options, as_json: bool) -> int:
    runs, bad = Journal(opts.root).records()
    if bad:
        opts.log.warning(f"skipped {bad} damaged journal line(s)")
    if as_json:
        json.dump(runs, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for r in runs:
        entries = ", ".join(str(e.get("name")) for e in r.get("entries") or []
                            if isinstance(e, dict))
        print(f"{r['run']}  {r.get('command')}  {r.get('outcome')}  source={r.get('source')}  "
              f"entries={entries or '-'}")
        for f in r.get("files") or []:
            print(f"    {f['action']:8} {f['path']}  backup={f.get('backup') or '-'}")
        if r.get("error"):
            print(f"    error: {r['error']}")
    return 0


def undoable(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply runs that changed files (a pending or failed one too: it may have) and that no
    rollback has undone yet, oldest first."""
    undone = {u for r in runs if r.get("command") == "rollback"
              and r.get("outcome") not in ("pending", "failed")
              for u in (r.get("undone") or []) if isinstance(u, str)}
    return [r for r in runs if r.get("command") == "apply" and r.get("files")
            and r["run"] not in undone]


def cmd_rollback(opts: Options, run_id: Optional[str]) -> int:
    root = opts.root
    journal = Journal(root)
    with RunLock(root):
        scan = journal.scan()
        if scan.torn:
            opts.log.warning(f"skipped {scan.torn} journal line(s) that are not JSON")
        candidates = undoable(scan.runs)
        if not candidates:
            raise StateError("the journal has no run with changes left to roll back")
        ids = [r["run"] for r in candidates]
        if run_id is None:
            start = len(ids) - 1
        else:
            matches = [i for i in ids if i == run_id or i.startswith(run_id)]
            if len(matches) != 1:
                raise StateError(f"no single run matches {run_id!r} among the runs that can be "
                                 "rolled back (see `fwcfg-agent journal`)")
            start = ids.index(matches[0])
        later = [n for n in scan.damaged if n > scan.first_line[ids[start]]]
        if later:  # a run this rollback would have to undo may hide there
            raise StateError(f"journal line {later[0]} is damaged: cannot tell what the runs "
                             "to roll back changed; nothing was changed")
        to_undo = list(reversed(candidates[start:]))
        changes, dirs = plan_undo(to_undo, root, journal)  # every check before any change
        try:
            state = journal.load_state()
        except StateError:
            state = None
        run, _ = new_run()
        base = record(root, "rollback", "changed", run=run, undone=[r["run"] for r in to_undo])
        fast.forget(root)  # the files no longer match the entries: the next apply is full
        journal.clean_temps()
        clean_temps(root)
        files = undo(changes, dirs, root, journal, run, base,
                     selinux=selinux_enabled(root == "/"), log=opts.log)
        oldest = to_undo[-1].get("state_before")
        if oldest is not None:  # the files the agent managed before the oldest undone run
            state = State.from_json({"files": oldest, "hostname": None, "run": None})
        elif state is not None:  # a record from before state_before: keep what still matches
            for f in files:
                managed = state.files.get(f["path"])
                if managed is not None and f["sha256_after"] != managed.sha256:
                    state.files.pop(f["path"])
        if state is not None:
            journal.save_state(state)
        append(root, {**base, "outcome": "changed" if files else "unchanged", "files": files},
               sync=True)
        opts.log.info(f"rolled back {', '.join(r['run'] for r in to_undo)}: "
                      f"{len(files)} file(s) restored", MSG_APPLIED, run=run)
        return 0
