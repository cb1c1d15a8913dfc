"""Every network template, every case: the exact set of files, their bytes and their modes.

The expected output lives in tests/golden/render/<case>/<format>/<path>, with
tests/golden/render/<case>/<format>.manifest listing `MODE PATH` for every file. Set
FWCFG_REGEN_GOLDEN=1 to rewrite them from the templates (then read the diff before committing).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fwcfg_agent.model import Format
from fwcfg_agent.render import Plan, render
from fwcfg_agent.render.env import Templates
from tests.render_cases import CASES, FORMATS, Case

GOLDEN = Path(__file__).resolve().parent / "golden" / "render"
REGEN = os.environ.get("FWCFG_REGEN_GOLDEN") == "1"


def _plan(case: Case, fmt: Format) -> Plan:
    return render(case.config, [fmt], case.facts, Templates())


def _manifest(plan: Plan) -> str:
    return "".join(f"{f.mode:04o} {f.path}\n" for f in sorted(plan.files, key=lambda f: f.path))


def _regenerate(plan: Plan, tree: Path, manifest: Path) -> None:
    if tree.exists():
        shutil.rmtree(tree)
    tree.mkdir(parents=True)
    for f in plan.files:
        dest = tree / f.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.content)
    manifest.write_text(_manifest(plan))


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_golden(case: Case, fmt: Format) -> None:
    plan = _plan(case, fmt)
    tree = GOLDEN / case.name / fmt.value
    manifest = GOLDEN / case.name / f"{fmt.value}.manifest"
    if REGEN:
        _regenerate(plan, tree, manifest)
    assert manifest.is_file(), f"no golden output for {case.name}/{fmt}: FWCFG_REGEN_GOLDEN=1"
    # The whole set of files, with modes.
    assert _manifest(plan) == manifest.read_text()
    on_disk = sorted("/" + p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file())
    assert on_disk == sorted(plan.paths()), f"stray or missing golden files under {tree}"
    # Each file's bytes.
    for f in plan.files:
        assert f.content == (tree / f.path.lstrip("/")).read_bytes(), f.path
    assert len(set(plan.paths())) == len(plan.files), "two templates wrote the same path"


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_file_says_who_wrote_it(case: Case, fmt: Format) -> None:
    for f in _plan(case, fmt).files:
        head = f.content.decode().splitlines()[:2]
        assert head[0].startswith("# Written by fwcfg-agent from the fw_cfg entries \"opt/"), f.path
        assert "rewritten at every boot" in head[1], f.path


def test_route_files_only_with_routes_of_their_family() -> None:
    somlo = next(c for c in CASES if c.name == "somlo")
    paths = _plan(somlo, Format.IFCFG).paths()
    assert paths == ["/etc/sysconfig/network-scripts/ifcfg-ens3"]
    offlink = next(c for c in CASES if c.name == "offlink")
    paths = _plan(offlink, Format.IFCFG).paths()
    assert "/etc/sysconfig/network-scripts/route-eth0" in paths
    assert "/etc/sysconfig/network-scripts/route6-eth0" not in paths


def test_nm_uuid_is_stable_and_distinct() -> None:
    full = next(c for c in CASES if c.name == "full")
    first = _plan(full, Format.NM)
    again = render(full.config, [Format.NM], full.facts, Templates())
    assert first == again

    def uuids(plan: Plan) -> list[str]:
        return [line for f in plan.files for line in f.content.decode().splitlines()
                if line.startswith("uuid=")]

    assert len(set(uuids(first))) == len(full.config.interfaces) == 2
