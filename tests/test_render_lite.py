"""The light runtime (render/lite.py) renders exactly what jinja2 renders, or hands over.

Every golden case in every format is rendered by jinja2 and by the generated code, and the bytes
must be equal; the hosts, hostname and cloud-init templates too. The code is generated here by
the jinja2 the tests run with, so each supported jinja2 version is checked against the runtime.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakeroot import write_fwcfg_tree
from fwcfg_agent.model import Format
from fwcfg_agent.render import Plan, filters, render
from fwcfg_agent.render.env import Templates
from fwcfg_agent.render.filters import Unsupported
from fwcfg_agent.render.lite import (
    LITE_DIR,
    SUFFIX,
    LiteTemplates,
    Renderer,
    generate,
    packaged_cache_dir,
    packaged_template_dir,
    write,
)
from tests.render_cases import CASES, Case

from .agent import agent
from .conftest import REPO, make_guest_root

TEMPLATES = sorted(p.name for p in packaged_template_dir().glob("*.j2"))
ALL_FORMATS = tuple(Format)


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lite")
    for name in TEMPLATES:
        source = (packaged_template_dir() / name).read_text(encoding="utf-8")
        assert write(out, name, source), f"{name}: the light runtime cannot run it"
    return out


class LiteOnly:
    """The generated code and nothing else: Unsupported fails the test."""

    def __init__(self, code_dir: Path) -> None:
        self.lite = LiteTemplates([packaged_template_dir()], [code_dir])

    def render(self, name: str, **context: Any) -> str:
        return self.lite.render(name, **context)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_case_and_format_renders_the_same_bytes(case: Case, code_dir: Path) -> None:
    facts = case.facts._replace(installed=frozenset({"cloud-init"}), hosts="127.0.0.1\tl\n")
    for fmt in ALL_FORMATS:
        expected: Plan = render(case.config, [fmt], facts, Templates())
        got: Plan = render(case.config, [fmt], facts, LiteOnly(code_dir))
        assert got == expected, (case.name, fmt)


def test_generated_code_is_used_only_for_the_source_it_came_from(code_dir: Path,
                                                                 tmp_path: Path) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "hostname.j2").write_text("{{ config.hostname | upper }}\n")
    lite = LiteTemplates([override, packaged_template_dir()], [code_dir])
    config = next(c for c in CASES if c.name == "full").config
    assert config.hostname
    with pytest.raises(Unsupported, match="no generated code"):
        lite.render("hostname.j2", config=config)
    # the Renderer falls back to jinja2, and leaves code for the override behind
    renderer = Renderer(override, tmp_path / "cache")
    assert renderer.render("hostname.j2", config=config) == f"{config.hostname.upper()}\n"
    assert renderer.with_jinja == ["hostname.j2"]
    assert (tmp_path / "cache" / LITE_DIR / ("hostname.j2" + SUFFIX)).is_file()
    again = Renderer(override, tmp_path / "cache")
    assert again.render("hostname.j2", config=config) == f"{config.hostname.upper()}\n"
    assert again.with_jinja == []


def test_what_the_runtime_lacks_goes_to_jinja2(tmp_path: Path) -> None:
    override = tmp_path / "override"
    override.mkdir()
    # a filter form the light runtime does not implement, and an undefined variable
    (override / "hostname.j2").write_text("{{ [config.hostname] | join(',', attribute='x') }}\n")
    (override / "hosts.j2").write_text("{{ nosuchvariable }}\n")
    config = next(c for c in CASES if c.name == "full").config
    assert generate((override / "hostname.j2").read_text(), "hostname.j2") is not None
    renderer = Renderer(override, tmp_path / "cache")
    lite = LiteTemplates([override], [tmp_path / "cache" / LITE_DIR])
    write(tmp_path / "cache" / LITE_DIR, "hostname.j2", (override / "hostname.j2").read_text())
    with pytest.raises(Unsupported):
        lite.render("hostname.j2", config=config)
    with pytest.raises(Exception, match="nosuchvariable"):  # jinja2's own error, not ours
        renderer.render("hosts.j2", config=config)


def test_damaged_generated_code_is_ignored(code_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / ("hostname.j2" + SUFFIX)).write_text("this is not python (\n")
    lite = LiteTemplates([packaged_template_dir()], [bad, code_dir])
    config = next(c for c in CASES if c.name == "full").config
    assert lite.render("hostname.j2", config=config) == f"{config.hostname}\n"


def test_uuid_namespace_is_the_documented_derivation() -> None:
    derived = filters._uuid5(filters.NAMESPACE_URL, "https://github.com/fwcfg-agent")
    assert bytes.fromhex(derived.replace("-", "")) == filters.UUID_NAMESPACE


PROBE = """
import sys
from fwcfg_agent.cli import main
code = main(sys.argv[1:])
print("jinja2" in sys.modules)
sys.exit(code)
"""


def test_a_run_with_generated_code_does_not_load_jinja2(guest_root: Path) -> None:
    """The first run that renders a template loads jinja2 (in a checkout nothing is precompiled)
    and leaves generated code in the root's cache; a later run with new settings does not."""
    make_guest_root(guest_root, {"opt/GuestInfo": b"HOSTNAME=one.example.com\nIPADDR=192.0.2.7\n"})

    def run() -> bool:
        proc = subprocess.run([sys.executable, "-c", PROBE, "apply", "--root", str(guest_root)],
                              env={"PYTHONPATH": str(REPO), "PATH": os.environ["PATH"]},
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip() == "True"

    packaged = packaged_cache_dir(packaged_template_dir()) / LITE_DIR
    first = run()
    assert first or packaged.is_dir()
    write_fwcfg_tree(guest_root, {"opt/GuestInfo": b"HOSTNAME=two.example.com\nIPADDR=192.0.2.8\n"})
    assert run() is False
    assert (guest_root / "etc/hostname").read_text() == "two.example.com\n"
    assert agent(guest_root, "apply").code == 0
