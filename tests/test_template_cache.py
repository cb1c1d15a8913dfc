"""The precompiled templates (render/cache.py, render/env.py) can only make rendering faster:
the output is the same bytes as compiling the source, an override still wins, and a precompile
this process must not trust (another jinja2, other code, another template source, a damaged
module) is ignored rather than run."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

import jinja2
import pytest

from fwcfg_agent.model import Format
from fwcfg_agent.render import Plan, filters, render
from fwcfg_agent.render.cache import check, main, precompile
from fwcfg_agent.render.env import (
    MANIFEST,
    Templates,
    jinja2_id,
    packaged_template_dir,
    sources_checksum,
)
from tests.render_cases import CASES, Case

from .agent import agent
from .conftest import REPO, make_guest_root

TEMPLATES = sorted(p.name for p in Path(packaged_template_dir()).glob("*.j2"))
FULL = next(c for c in CASES if c.name == "full")


class CountingCompiles:
    """Counts what jinja2 compiles from source (precompiled templates are never compiled)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.compiled: list[str] = []
        real = jinja2.Environment.compile

        def compile(env: jinja2.Environment, source: str, name: Optional[str] = None,
                    filename: Optional[str] = None, raw: bool = False,
                    defer_init: bool = False) -> object:
            self.compiled.append(name or "?")
            return real(env, source, name, filename, raw, defer_init)  # type: ignore[call-overload]

        monkeypatch.setattr(jinja2.Environment, "compile", compile)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged templates precompiled by the jinja2 the tests run with, as a build does."""
    out = tmp_path_factory.mktemp("precompiled") / "__compiled__"
    assert precompile(out) == TEMPLATES
    return out


def _copy(compiled: Path, dest: Path) -> Path:
    shutil.copytree(compiled, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _edit_manifest(directory: Path, line: int, text: str) -> None:
    lines = (directory / MANIFEST).read_text().splitlines()
    lines[line] = text
    (directory / MANIFEST).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_precompiled_renders_the_same_bytes_as_the_source(
        case: Case, compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = case.facts._replace(installed=frozenset({"cloud-init"}), hosts="127.0.0.1\tl\n")
    for fmt in Format:
        counter = CountingCompiles(monkeypatch)
        precompiled = Templates(precompiled=compiled)
        got: Plan = render(case.config, [fmt], facts, precompiled)
        assert counter.compiled == [], (case.name, fmt)  # every template came precompiled
        from_source = Templates(precompiled=False)
        expected: Plan = render(case.config, [fmt], facts, from_source)
        assert got == expected, (case.name, fmt)
        assert sorted(counter.compiled) == sorted(precompiled.packaged.precompiled)
        assert from_source.packaged.precompiled == []
        monkeypatch.undo()


def test_every_template_is_precompiled_and_none_is_compiled_at_run_time(
        compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(p.name for p in compiled.glob("tmpl_*.py")) == sorted(
        jinja2.ModuleLoader.get_module_filename(n) for n in TEMPLATES)
    assert check(compiled) == ""
    counter = CountingCompiles(monkeypatch)
    t = Templates(precompiled=compiled)
    for name in TEMPLATES:
        t.env.get_template(name)
    assert counter.compiled == []
    assert sorted(t.packaged.precompiled) == TEMPLATES


def test_an_override_takes_precedence(compiled: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    override = tmp_path / "override"
    override.mkdir()
    (override / "hostname.j2").write_text("custom-{{ config.hostname | upper }}\n")
    counter = CountingCompiles(monkeypatch)
    t = Templates(override, precompiled=compiled)
    assert FULL.config.hostname
    assert t.render("hostname.j2", config=FULL.config) == f"custom-{FULL.config.hostname.upper()}\n"
    # the override was compiled from its source; the packaged templates still come precompiled
    assert counter.compiled == ["hostname.j2"]
    t.render("hosts.j2", config=FULL.config, facts=FULL.facts)
    assert t.packaged.precompiled == ["hosts.j2"]
    assert counter.compiled == ["hostname.j2"]


def test_a_precompile_of_another_jinja2_version_is_ignored(compiled: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    stale = _copy(compiled, tmp_path / "stale")
    _edit_manifest(stale, 1, "jinja2 2.11.3")
    counter = CountingCompiles(monkeypatch)
    t = Templates(precompiled=stale)
    assert "jinja2 2.11.3" in t.packaged.unused_reason
    assert jinja2.__version__ in t.packaged.unused_reason
    expected = Templates(precompiled=False).render("hostname.j2", config=FULL.config)
    assert t.render("hostname.j2", config=FULL.config) == expected
    assert t.packaged.precompiled == [] and "hostname.j2" in counter.compiled
    assert "jinja2 2.11.3" in check(stale)


def test_a_precompile_by_a_patched_build_of_the_same_jinja2_is_ignored(compiled: Path,
                                                                       tmp_path: Path) -> None:
    """A distribution's patched jinja2 keeps __version__: the digest of its sources tells."""
    patched = _copy(compiled, tmp_path / "patched")
    _edit_manifest(patched, 1, f"jinja2 {jinja2.__version__} crc32:{'0' * 8}")
    t = Templates(precompiled=patched)
    assert t.packaged.modules is None and "another build of jinja2" in t.packaged.unused_reason
    assert t.render("hostname.j2", config=FULL.config) == f"{FULL.config.hostname}\n"
    assert t.packaged.precompiled == []


def test_the_jinja2_identity_is_its_version_and_sources() -> None:
    version, checksum = jinja2_id().split(" ")
    assert version == jinja2.__version__ and checksum.startswith("crc32:")
    assert len(bytes.fromhex(checksum.removeprefix("crc32:"))) == 4
    assert jinja2_id() == jinja2_id()
    assert checksum == sources_checksum(os.path.dirname(jinja2.__file__))


def test_a_changed_jinja2_module_changes_the_identity(compiled: Path, tmp_path: Path) -> None:
    """A patch that keeps every size (one character for another) changes the checksum, and
    a precompile made with that checksum is not used by this jinja2."""
    copy = tmp_path / "jinja2"
    shutil.copytree(os.path.dirname(jinja2.__file__), copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    checksum = jinja2_id().split(" ")[1]
    assert sources_checksum(str(copy)) == checksum
    compiler = copy / "compiler.py"
    data = compiler.read_bytes()
    i = data.index(b"<")
    compiler.write_bytes(data[:i] + b">" + data[i + 1:])
    patched = sources_checksum(str(copy))
    assert patched != checksum
    precompiled = _copy(compiled, tmp_path / "patched")
    _edit_manifest(precompiled, 1, f"jinja2 {jinja2.__version__} {patched}")
    t = Templates(precompiled=precompiled)
    assert t.packaged.modules is None and "another build of jinja2" in t.packaged.unused_reason
    (copy / "compiler.py").write_bytes(data)
    (copy / "zz_patch.py").write_bytes(b"")  # a module more: also another build
    assert sources_checksum(str(copy)) != checksum


def _python_with_other_jinja2() -> Optional[str]:
    """Debian's python3, if its jinja2 is another version than the tests' (3.1.2 against a
    venv's 3.1.6 on the project's machines)."""
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        return None
    r = subprocess.run([python, "-I", "-c", "import jinja2; print(jinja2.__version__)"],
                       capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.strip() == jinja2.__version__:
        return None
    return python


def test_a_real_precompile_by_another_jinja2_is_ignored(tmp_path: Path) -> None:
    python = _python_with_other_jinja2()
    if python is None:
        pytest.skip("no Python with another jinja2 version here")
    out = tmp_path / "other"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    subprocess.run([python, "-B", "-m", "fwcfg_agent.render.cache", str(out)], check=True,
                   env=env, capture_output=True)
    # the other jinja2 uses it...
    r = subprocess.run([python, "-B", "-m", "fwcfg_agent.render.cache", "--check", str(out)],
                       env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # ...this one does not, and renders the same bytes from source
    t = Templates(precompiled=out)
    assert t.packaged.modules is None and "running jinja2" in t.packaged.unused_reason
    facts = FULL.facts._replace(installed=frozenset({"cloud-init"}), hosts="127.0.0.1\tl\n")
    for fmt in Format:
        assert render(FULL.config, [fmt], facts, t) == \
            render(FULL.config, [fmt], facts, Templates(precompiled=False))
    assert t.packaged.precompiled == []


def test_a_precompile_for_other_code_is_ignored(compiled: Path, tmp_path: Path) -> None:
    other = _copy(compiled, tmp_path / "other")
    _edit_manifest(other, 2, "code " + "00" * 32)
    t = Templates(precompiled=other)
    assert t.packaged.modules is None and "another build" in t.packaged.unused_reason
    assert t.render("hostname.j2", config=FULL.config) == f"{FULL.config.hostname}\n"


def test_a_template_whose_source_changed_is_compiled_from_its_source(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Precompiled from a hostname.j2 that is not the packaged one: that module is not used."""
    sources = tmp_path / "templates"
    shutil.copytree(packaged_template_dir(), sources,
                    ignore=shutil.ignore_patterns("__compiled__"))
    (sources / "hostname.j2").write_text("stale {{ config.hostname }}\n")
    out = tmp_path / "__compiled__"
    precompile(out, sources)
    counter = CountingCompiles(monkeypatch)
    t = Templates(precompiled=out)
    assert t.render("hostname.j2", config=FULL.config) == f"{FULL.config.hostname}\n"
    assert counter.compiled == ["hostname.j2"] and t.packaged.precompiled == []
    t.render("hosts.j2", config=FULL.config, facts=FULL.facts)
    assert t.packaged.precompiled == ["hosts.j2"]
    assert "not used: hostname.j2" in check(out)


@pytest.mark.parametrize("damage", ["truncated", "missing", "no-manifest", "bad-manifest"])
def test_a_damaged_precompile_is_ignored(compiled: Path, tmp_path: Path, damage: str) -> None:
    bad = _copy(compiled, tmp_path / "bad")
    module = bad / jinja2.ModuleLoader.get_module_filename("hostname.j2")
    if damage == "truncated":
        module.write_text(module.read_text()[:57])
    elif damage == "missing":
        module.unlink()
    elif damage == "no-manifest":
        (bad / MANIFEST).unlink()
    else:
        (bad / MANIFEST).write_text((bad / MANIFEST).read_text() + "no-separator\n")
    t = Templates(precompiled=bad)
    assert t.render("hostname.j2", config=FULL.config) == f"{FULL.config.hostname}\n"
    assert "hostname.j2" not in t.packaged.precompiled
    assert check(bad) != ""


def test_precompile_replaces_what_was_there(compiled: Path, tmp_path: Path) -> None:
    out = _copy(compiled, tmp_path / "out")
    (out / "tmpl_leftover.py").write_text("raise SystemExit\n")
    assert main([str(out)]) == 0
    assert not (out / "tmpl_leftover.py").exists() and check(out) == ""
    assert main(["--check", str(out)]) == 0
    assert main(["--check", str(tmp_path / "nothing")]) == 1


def test_a_run_compiles_nothing_to_disk(tmp_path: Path) -> None:
    """Nothing is compiled or cached at run time: a run writes no cache (and a source checkout,
    where nothing is precompiled, renders from source)."""
    root = make_guest_root(tmp_path / "root", {"opt/GuestInfo": b"HOSTNAME=a\nIPADDR=10.0.0.5\n"})
    override = root / "etc/fwcfg-agent/templates"
    override.mkdir(parents=True, exist_ok=True)
    (override / "hostname.j2").write_text("over-{{ config.hostname }}\n")
    assert agent(root, "apply", "--format", "hostname", "--format", "hosts").code == 0
    assert (root / "etc/hostname").read_text() == "over-a\n"
    assert not (root / "var/cache").exists()


def test_uuid_namespace_is_the_documented_derivation() -> None:
    derived = filters._uuid5(filters.NAMESPACE_URL, "https://github.com/fwcfg-agent")
    assert bytes.fromhex(derived.replace("-", "")) == filters.UUID_NAMESPACE


def test_jinja2_builtins_are_not_reimplemented() -> None:
    """One rendering engine: the filters module has only the project's own filters and tests."""
    builtin = jinja2.Environment()
    assert not set(filters.FILTERS) & set(builtin.filters)
    assert not set(filters.TESTS) & set(builtin.tests)
    assert not hasattr(filters, "BUILTIN_FILTERS") and not hasattr(filters, "ALL_FILTERS")
    assert not (REPO / "fwcfg_agent/render/lite.py").exists()
