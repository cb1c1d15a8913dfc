"""The boot-cost benchmark runs and reports every case (no timing is judged here)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO


def test_boot_cost_benchmark_reports_every_case(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    python = "/usr/bin/python3"
    assert Path(python).exists(), "Debian's python3 is missing: run tools/bootstrap"
    proc = subprocess.run([sys.executable, str(REPO / "bench/boot_cost.py"), "--python", python,
                           "--runs", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    for entry_point in ("launcher", "pip"):
        cases = doc["entry_points"][entry_point]["cases"]
        assert set(cases) == {"baseline", "before-jinja2", "jinja2", "first-boot",
                              "steady-state", "no-device", "no-entries", "invalid"}
        for name, row in cases.items():
            assert row["median_ms"] > 0 and row["peak_rss_kib"] > 0
            if name not in ("baseline", "before-jinja2", "jinja2"):
                assert row["importtime_us"], name
        # jinja2's import told apart: the references import what the full path loads anyway
        # (re, among others), then jinja2; the first boot's ratio without it is reported (its
        # value is a timing, not judged here)
        before = doc["entry_points"][entry_point]["before_jinja2_imports"]
        assert "import re;" in before and "jinja2" not in before
        assert isinstance(doc["entry_points"][entry_point]["first_boot_without_jinja2"], float)
    assert "first boot with jinja2's import" in proc.stdout
    # the steady state really takes the fast path: no jinja2 among its imports
    for case in ("steady-state", "no-entries"):
        imports = doc["entry_points"]["launcher"]["cases"][case]["importtime_us"]
        assert not any("jinja2" in name or "commands" in name for _, name in imports), case
    assert "first-boot" in proc.stdout and "ratio" in proc.stdout


def test_instruction_counts_report_a_case(tmp_path: Path) -> None:
    """bench/instructions.py counts instructions, syscalls and modules against the baseline."""
    if shutil.which("valgrind") is None or shutil.which("strace") is None:
        pytest.skip("valgrind or strace is not installed")
    out = tmp_path / "counts.json"
    proc = subprocess.run([sys.executable, str(REPO / "bench/instructions.py"), "--python",
                           "/usr/bin/python3", "--case", "no-device", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(out.read_text())["cases"]
    assert set(rows) == {"baseline", "no-device"}
    for row in rows.values():
        assert row["instructions"] > 0 and row["syscalls"] > 0 and row["modules"] > 0
    # the agent imports more than the bare interpreter, and says so
    assert rows["no-device"]["modules"] > rows["baseline"]["modules"]
    assert "no-device" in proc.stdout
