"""The compiled port helper `_portio` and its build glue.

Nothing here ever selects or reads a port: this machine is not a QEMU guest. The helper's guard
(no select/read before acquire) is tested without privileges, and acquire() itself only in a
subprocess that lacks CAP_SYS_RAWIO (or on a kernel without ioperm), where it must fail cleanly.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "fwcfg_agent/sources/_portio.c"
X86_LINUX = sys.platform.startswith("linux") and platform.machine() in ("x86_64", "i686", "i386")

pytestmark = pytest.mark.skipif(not X86_LINUX, reason="the port helper is x86 Linux only")


def _compile(out_dir: Path) -> Path:
    cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    include = sysconfig.get_paths()["include"]
    if cc is None or not (Path(include) / "Python.h").exists():
        pytest.skip("no C compiler or Python headers")
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    target = out_dir / f"_portio{suffix}"
    subprocess.run(
        [
            cc,
            "-shared",
            "-fPIC",
            "-O2",
            "-Wall",
            "-Werror",
            f"-I{include}",
            str(SOURCE),
            "-o",
            str(target),
        ],
        check=True,
    )
    return target


@pytest.fixture(scope="module")
def built() -> Iterator[Path]:
    """The helper compiled from the current source into a directory anyone can read."""
    d = Path(tempfile.mkdtemp(prefix="fwcfg-portio-"))
    d.chmod(0o755)
    try:
        yield _compile(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def portio(built: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("fwcfg_agent.sources._portio", built)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_helper_exports_only_the_fw_cfg_operations(portio: ModuleType) -> None:
    public = sorted(n for n in dir(portio) if not n.startswith("_"))
    assert public == [
        "DATA_PORT",
        "PORT_COUNT",
        "SELECTOR_PORT",
        "acquire",
        "held",
        "read",
        "release",
        "select",
    ]
    assert (portio.SELECTOR_PORT, portio.DATA_PORT, portio.PORT_COUNT) == (0x510, 0x511, 12)


def test_no_port_access_before_acquire(portio: ModuleType) -> None:
    assert portio.held() is False
    with pytest.raises(RuntimeError, match="not acquired"):
        portio.select(0)
    with pytest.raises(RuntimeError, match="not acquired"):
        portio.read(4)
    portio.release()  # releasing nothing is fine


def test_argument_checks_come_before_anything(portio: ModuleType) -> None:
    with pytest.raises(ValueError, match="16 bits"):
        portio.select(0x10000)
    with pytest.raises(ValueError, match="negative"):
        portio.read(-1)
    with pytest.raises(OverflowError):
        portio.select(-1)


_CHILD = textwrap.dedent(
    """
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("fwcfg_agent.sources._portio", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["fwcfg_agent.sources._portio"] = mod
    import fwcfg_agent.sources
    fwcfg_agent.sources._portio = mod
    from fwcfg_agent.errors import SourceError
    from fwcfg_agent.sources.ports import PortIO
    try:
        PortIO()
    except SourceError as e:
        print("SourceError:", e)
        sys.exit(0)
    mod.release()  # acquired: give it back at once, never touch a port
    print("ACQUIRED")
    """
)


def _unprivileged() -> list[str]:
    """A command prefix that runs without CAP_SYS_RAWIO."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and no setpriv to drop CAP_SYS_RAWIO")
    return [setpriv, "--bounding-set=-sys_rawio", "--"]


def test_ioperm_refused_is_a_clear_source_error(built: Path) -> None:
    proc = subprocess.run(
        [*_unprivileged(), sys.executable, "-c", _CHILD, str(built)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stdout.strip()
    assert out.startswith("SourceError: the kernel refused access to I/O ports 0x510-0x51b (ioperm")
    assert "CAP_SYS_RAWIO" in out or "CONFIG_X86_IOPL_IOPERM" in out


def _setup_py(tmp: Path, *extra_env: tuple[str, str], machine: str | None = None) -> str:
    pytest.importorskip("setuptools")
    tree = tmp / "tree"
    shutil.copytree(
        REPO / "fwcfg_agent",
        tree / "fwcfg_agent",
        ignore=shutil.ignore_patterns("*.so", "__pycache__"),
    )
    for f in ("setup.py", "pyproject.toml"):
        shutil.copy(REPO / f, tree / f)
    (tree / "README.md").write_text("x\n")
    code = "import sys, runpy\n"
    if machine is not None:
        code += f"import platform; platform.machine = lambda: {machine!r}\n"
    code += "sys.argv = ['setup.py', 'build_ext', '--inplace']\n"
    code += "runpy.run_path('setup.py', run_name='__main__')\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tree,
        capture_output=True,
        text=True,
        env={**os.environ, **dict(extra_env)},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = list((tree / "fwcfg_agent/sources").glob("_portio*.so"))
    return proc.stdout + proc.stderr + ("\nBUILT" if built else "\nNOT BUILT")


def test_setup_builds_the_helper(tmp_path: Path) -> None:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    assert _setup_py(tmp_path).endswith("BUILT")


def test_setup_survives_a_broken_compiler(tmp_path: Path) -> None:
    out = _setup_py(tmp_path, ("CC", "false"), ("LDSHARED", "false"))
    assert "WARNING: could not build fwcfg_agent.sources._portio" in out
    assert out.endswith("NOT BUILT")


def test_setup_skips_the_helper_off_x86(tmp_path: Path) -> None:
    out = _setup_py(tmp_path, machine="aarch64")
    assert "building" not in out and out.endswith("NOT BUILT")
