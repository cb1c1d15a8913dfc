"""ruff and mypy --strict are part of the test suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def _tool(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} is not installed: run tools/bootstrap"
    return found


def test_ruff() -> None:
    r = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


MAX_MODULE_LINES = 400  # issue 13: "no module over about 400 lines"


def test_no_module_over_400_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in sorted((REPO / "fwcfg_agent").rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"split these modules (lines): {long}"
