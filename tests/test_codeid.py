"""The code digest (fwcfg_agent/codeid.py): what it covers, where it comes from, what it costs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fwcfg_agent import codeid

from .conftest import REPO

IGNORE = shutil.ignore_patterns("__pycache__", "__compiled__", "_codeid", "*.so")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the package and its templates, laid out as in the source tree."""
    dest = tmp_path / "src"
    shutil.copytree(REPO / "fwcfg_agent", dest / "fwcfg_agent", ignore=IGNORE)
    shutil.copytree(REPO / "templates", dest / "templates", ignore=IGNORE)
    return dest


def _digest(tree: Path) -> bytes:
    return codeid.compute(str(tree / "fwcfg_agent"), str(tree / "templates"))


def test_a_patched_template_or_module_changes_the_digest(checkout: Path) -> None:
    before = _digest(checkout)
    assert before == _digest(checkout)  # deterministic
    assert before == codeid.compute(str(REPO / "fwcfg_agent"))  # the checkout's own
    template = checkout / "templates/hostname.j2"
    original = template.read_bytes()
    template.write_bytes(original + b"\n")  # what a distribution's patch might do
    patched = _digest(checkout)
    assert patched != before
    template.write_bytes(original)
    assert _digest(checkout) == before
    for rel in ("render/filters.py", "settings.py"):
        path = checkout / "fwcfg_agent" / rel
        data = path.read_bytes()
        path.write_bytes(data + b"# patched\n")
        assert _digest(checkout) != before, rel
        path.write_bytes(data)
    (checkout / "templates/new.j2").write_text("x\n")  # a new template counts too
    assert _digest(checkout) != before


def test_what_does_not_render_does_not_count(checkout: Path) -> None:
    before = _digest(checkout)
    (checkout / "templates/README").write_text("notes\n")
    (checkout / "fwcfg_agent/notes.txt").write_text("notes\n")
    sources = checkout / "fwcfg_agent/sources"
    if sources.is_dir():
        (sources / "extra.py").write_text("x = 1\n")
    assert _digest(checkout) == before


def test_the_installed_layout_gives_the_same_digest(checkout: Path, tmp_path: Path) -> None:
    installed = tmp_path / "site/fwcfg_agent"
    shutil.copytree(checkout / "fwcfg_agent", installed)
    shutil.copytree(checkout / "templates", installed / "templates")
    assert codeid.template_dir(str(installed)) == str(installed / "templates")
    assert codeid.compute(str(installed)) == _digest(checkout)


PROBE = """
import sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
from fwcfg_agent import codeid
digest = codeid.code_digest()
print(digest.hex())
print(" ".join(sorted(set(sys.modules) - before)))
"""


def _probe(tree: Path) -> tuple[str, set[str]]:
    r = subprocess.run([sys.executable, "-I", "-B", "-c", PROBE, str(tree)],
                       capture_output=True, text=True, check=True)
    digest, modules = r.stdout.splitlines()
    # __future__: `from __future__ import annotations`, as in every module of the agent
    return digest, set(modules.split()) - {"__future__"}


def test_code_digest_reads_the_build_s_file_else_computes(checkout: Path) -> None:
    digest, modules = _probe(checkout)  # no _codeid: computed from the files
    assert bytes.fromhex(digest) == _digest(checkout)
    # only the agent's own modules and builtin ones; nothing heavy (jinja2, hashlib, pathlib)
    assert not {m for m in modules if not m.startswith(("fwcfg_agent", "_sha", "fcntl"))}, modules
    recorded = "ab" * codeid.SIZE
    (checkout / "fwcfg_agent" / codeid.FILE).write_text(recorded + "\n")
    digest, modules = _probe(checkout)
    assert digest == recorded
    # one file read, no hashing: runinfo (which the fast path loads anyway) reads it
    assert modules - {"fcntl"} == {"fwcfg_agent", "fwcfg_agent.codeid", "fwcfg_agent.runinfo",
                                   "fwcfg_agent.rootfs"}
    for garbage in ("not hex\n", "abcd\n", ""):
        (checkout / "fwcfg_agent" / codeid.FILE).write_text(garbage)
        assert bytes.fromhex(_probe(checkout)[0]) == _digest(checkout), garbage


def test_the_build_writes_the_digest_and_precompiles(checkout: Path, tmp_path: Path) -> None:
    """setup.py's build_py, run as a wheel build runs it, in a copy of the project."""
    for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, checkout / name)
    shutil.copytree(REPO / "bin", checkout / "bin")
    lib = tmp_path / "lib"
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(lib)],
                       cwd=checkout, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": ""})
    assert r.returncode == 0, r.stdout + r.stderr
    package = lib / "fwcfg_agent"
    assert codeid.read(str(package)) == _digest(checkout) == codeid.compute(str(package))
    assert (package / "templates/__compiled__/MANIFEST").is_file()
    assert not list(lib.rglob("__pycache__"))  # nothing byte-compiled into the build tree
    check = subprocess.run([sys.executable, "-B", "-m", "fwcfg_agent.render.cache", "--check"],
                           cwd=lib, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
