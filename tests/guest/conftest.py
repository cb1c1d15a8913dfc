"""Fixtures of the real-guest suite (`pytest -m guest tests`).

The image is built once per machine (cached under $FWCFG_CACHE/images/<hash>), the agent is
installed into a copy of it once per session, and each test boots qcow2 overlays of it. Boot
times and `systemd-analyze blame` lines are printed at the end of the run and written to
build/guest-report.json (FWCFG_GUEST_REPORT overrides the path). Disks, console logs and the
guests' results go to pytest's temporary directory, or under $FWCFG_GUEST_WORKDIR if set.

`make test` runs this suite on pytest-xdist workers (`-n 2 --dist loadfile`: a module's boots
stay in one worker, in order). Each worker has its own lab; the workers send their reports
back (xdist's workeroutput) and the controller prints and writes them as one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.terminal import TerminalReporter

from . import image
from .lab import Lab

_LABS: list[Lab] = []  # this process's labs
_FROM_WORKERS: list[dict[str, Any]] = []  # the controller: the labs' reports of xdist workers
_OUTPUT_KEY = "fwcfg_guest_reports"


def _report_path() -> Path:
    return Path(os.environ.get("FWCFG_GUEST_REPORT", str(image.REPO / "build/guest-report.json")))


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
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
    return the_lab


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


def _reports() -> list[dict[str, Any]]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return [{**the_lab.report(), "worker": worker} for the_lab in _LABS] + _FROM_WORKERS


def merged_report(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report of several labs (one per xdist worker): their boots in the order each worker
    ran them, setup steps named by worker when there are several."""
    several = len(reports) > 1
    return {
        "image": reports[0]["image"],
        "image_build_seconds": reports[0]["image_build_seconds"],
        "workers": [r["worker"] for r in reports],
        "setup_seconds": {
            (f"{r['worker']}: {k}" if several else k): v
            for r in reports for k, v in r["setup_seconds"].items()
        },
        "boots": [b for r in reports for b in r["boots"]],
        "measurements": {k: v for r in reports for k, v in r["measurements"].items()},
    }


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """The controller: an xdist worker finished; keep the reports it sent."""
    sent = getattr(node, "workeroutput", {}).get(_OUTPUT_KEY)
    if sent:
        _FROM_WORKERS.extend(json.loads(sent))


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints and writes
        workeroutput[_OUTPUT_KEY] = json.dumps(_reports())
        return
    reports = _reports()
    if reports:
        path = _report_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged_report(reports), indent=2) + "\n")


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    reports = _reports()
    if not reports:
        return
    rep = merged_report(reports)
    terminalreporter.section("real guests: image, boots, fwcfg-agent blame")
    terminalreporter.write_line(
        f"image {rep['image']} (built in {rep['image_build_seconds']}s when first made)"
    )
    for what, secs in rep["setup_seconds"].items():
        terminalreporter.write_line(f"  setup {what}: {secs}s")
    for b in rep["boots"]:
        terminalreporter.write_line(
            f"  {b['name']:<28} wall {b['wall_seconds']:6.1f}s | agent {b['agent_run_ms']} ms | "
            f"blame: {b['blame'] or '-'} | {b['userspace']}"
        )
    for what, value in rep["measurements"].items():
        terminalreporter.write_line(f"  {what}: {json.dumps(value)}")
    terminalreporter.write_line(f"report: {_report_path()}")
