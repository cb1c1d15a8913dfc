"""Run the agent's CLI in-process against a root and capture what it says."""

from __future__ import annotations

import hashlib
import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwcfg_agent.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def agent(root: Path, *args: str) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    env_backup = {k: os.environ.pop(k) for k in ("INVOCATION_ID", "JOURNAL_STREAM")
                  if k in os.environ}
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main([args[0], "--root", str(root), *args[1:]])
    finally:
        os.environ.update(env_backup)
    return Outcome(code, out.getvalue(), err.getvalue())


def snapshot(root: Path, *tops: str) -> dict[str, tuple[str, int]]:
    """{relative path: (sha256, mode)} of every file under the given top directories."""
    out: dict[str, tuple[str, int]] = {}
    for top in tops:
        base = root / top
        if not base.exists():
            continue
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                p = Path(dirpath) / name
                rel = str(p.relative_to(root))
                out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mode & 0o7777)
    return out
