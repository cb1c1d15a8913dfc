"""Fixtures of the real-guest suite (`pytest -m guest tests`).

The image is built once per machine (cached under $FWCFG_CACHE/images/<hash>), the agent is
installed into a copy of it once per session, and each test boots qcow2 overlays of it. Boot
times and `systemd-analyze blame` lines are printed at the end of the run and written to
build/guest-report.json (FWCFG_GUEST_REPORT overrides the path). Disks, console logs and the
guests' results go to pytest's temporary directory, or under $FWCFG_GUEST_WORKDIR if set.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from _pytest.terminal import TerminalReporter

from . import image
from .lab import Lab

_LABS: list[Lab] = []


def _report_path() -> Path:
    return Path(os.environ.get("FWCFG_GUEST_REPORT", str(image.REPO / "build/guest-report.json")))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    missing = [
        t
        for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap", "mkfs.ext4")
        if shutil.which(t) is None
    ]
    if missing:
        pytest.fail(f"real-guest tests need {', '.join(missing)}: run tools/bootstrap")
    base = image.build_base_image()
    keep = os.environ.get("FWCFG_GUEST_WORKDIR")  # keep disks, consoles, results for a look
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="guests-", dir=keep)) if keep else None
    the_lab = Lab(
        base=base,
        workdir=workdir or tmp_path_factory.mktemp("guests"),
        with_agent=image.agent_available(),
    )
    _LABS.append(the_lab)
    yield the_lab
    the_lab.write_report(_report_path())


@pytest.fixture(autouse=True)
def guest_writes(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The write guard (tests/conftest.py) allows a test its tmp_path only. A guest test also
    builds disks under the session's lab directory (pytest's base temp, or
    $FWCFG_GUEST_WORKDIR), takes the QEMU lock and builds images in the cache, and writes the
    report under build/: allowed, and nothing else."""
    from tests.agent import guard

    allowed = [tmp_path, tmp_path_factory.getbasetemp(), image.cache_dir(),
               _report_path().parent]
    if os.environ.get("FWCFG_GUEST_WORKDIR"):
        allowed.append(Path(os.environ["FWCFG_GUEST_WORKDIR"]))
    guard.arm(allowed)
    yield


@pytest.fixture(scope="session")
def agent_lab(lab: Lab) -> Lab:
    """The lab, for tests that need the core agent in the checkout."""
    if not lab.with_agent:
        pytest.fail("the core agent (fwcfg_agent/cli.py) is not in this checkout")
    return lab


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    for the_lab in _LABS:
        rep = the_lab.report()
        terminalreporter.section("real guests: image, boots, fwcfg-agent blame")
        terminalreporter.write_line(
            f"image {rep['image']} (built in {rep['image_build_seconds']}s when first made)"
        )
        for what, secs in rep["setup_seconds"].items():
            terminalreporter.write_line(f"  setup {what}: {secs}s")
        for r in the_lab.records:
            terminalreporter.write_line(
                f"  {r.name:<28} wall {r.wall_seconds:6.1f}s | agent {r.agent_run_ms} ms | "
                f"blame: {r.blame or '-'} | {r.userspace}"
            )
        for what, value in rep["measurements"].items():
            terminalreporter.write_line(f"  {what}: {json.dumps(value)}")
        terminalreporter.write_line(f"report: {_report_path()}")
