"""The compiled-template cache can only make rendering faster, never different."""

from __future__ import annotations

import shutil
from pathlib import Path

import jinja2
import pytest

from fwcfg_agent.render.cache import TemplateCache, precompile
from fwcfg_agent.render.env import Templates
from fwcfg_agent.render.lite import LITE_DIR, SUFFIX


class CountingEnv:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.compiled: list[str] = []
        real = jinja2.Environment.compile

        def compile(env: jinja2.Environment, source: str, name: str | None = None,
                    filename: str | None = None, raw: bool = False,
                    defer_init: bool = False) -> object:
            self.compiled.append(name or "?")
            return real(env, source, name, filename, raw, defer_init)  # type: ignore[call-overload]

        monkeypatch.setattr(jinja2.Environment, "compile", compile)


def test_precompiled_templates_are_not_compiled_again(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    names = precompile(cache)
    assert "networkd.network.j2" in names and len(list(cache.glob("*.cache"))) == len(names)
    # and the light runtime's code for each (render/lite.py)
    assert sorted(p.name for p in (cache / LITE_DIR).iterdir()) == [n + SUFFIX for n in names]
    counter = CountingEnv(monkeypatch)
    t = Templates(None, None)
    t.env.bytecode_cache = TemplateCache([cache], None)
    for name in names:
        t.env.get_template(name)
    assert counter.compiled == []


def test_stale_cache_entry_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    precompile(cache)
    override = tmp_path / "override"
    override.mkdir()
    (override / "hostname.j2").write_text("custom-{{ config.hostname }}\n")
    counter = CountingEnv(monkeypatch)
    t = Templates(override, tmp_path / "runtime")
    t.env.bytecode_cache = TemplateCache([cache], tmp_path / "runtime")

    class C:
        hostname = "h1"

    assert t.render("hostname.j2", config=C()) == "custom-h1\n"
    assert counter.compiled == ["hostname.j2"]  # the packaged entry did not match the source
    # the runtime cache now has it: a new environment does not compile again
    t2 = Templates(override, tmp_path / "runtime")
    t2.env.bytecode_cache = TemplateCache([cache], tmp_path / "runtime")
    assert t2.render("hostname.j2", config=C()) == "custom-h1\n"
    assert counter.compiled == ["hostname.j2"]


def test_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    precompile(cache)
    for f in cache.glob("*.cache"):
        f.write_bytes(f.read_bytes()[:20])
    t = Templates(None, None)
    t.env.bytecode_cache = TemplateCache([cache], None)

    class C:
        hostname = "h2"

    assert t.render("hostname.j2", config=C()) == "h2\n"


def test_apply_fills_the_runtime_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fwcfg_agent.render import env, lite

    from .agent import agent
    from .conftest import make_guest_root

    # as after a pip install: no compiled templates shipped in the package
    monkeypatch.setattr(env, "packaged_cache_dir", lambda _d: tmp_path / "none")
    monkeypatch.setattr(lite, "packaged_cache_dir", lambda _d: tmp_path / "none")
    root = make_guest_root(tmp_path / "root", {"opt/GuestInfo": b"HOSTNAME=a\nIPADDR=10.0.0.5\n"})
    assert agent(root, "apply").code == 0
    cache = root / "var/cache/fwcfg-agent/templates"
    assert len(list(cache.glob("*.cache"))) >= 3  # jinja2's bytecode
    assert len(list((cache / LITE_DIR).iterdir())) >= 3  # the light runtime's code
    shutil.rmtree(root / "var/cache")
    assert agent(root, "apply", "--dry-run").code == 0
    assert not (root / "var/cache").exists()  # a dry run writes nothing, not even the cache
