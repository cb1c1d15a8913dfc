"""The DEBs and the RPM, built from a clean clone of HEAD, hold and run what they should.

The packages are built once per session in a fresh clone of the commit the suite runs from, so
uncommitted files never reach them: `make deb SUITE=...` for Debian 11, 12 and 13 (each in a
clean chroot of that release, tools/deb-build; the chroots and the results are cached by their
inputs, so this is quick after the first run), `make deb` (the host's release) and `make rpm`,
side by side. Then: their contents and metadata, each DEB's Depends and lintian with its own
release's lintian, its agent and precompiled templates run by its own release's python3 and
jinja2 (in a copy of the build chroot), the maintainer scripts (enable, never start or restart),
rpmlint, the agent run from the host's DEB against a fake guest root, and the RPM installed into
a scratch root with `rpm --root`. The static checks of the packaging sources (versions, names of
the dependencies, agent.conf, man page) need no build tools.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from fwcfg_agent import __version__
from fwcfg_agent.cli import EXIT_CODES
from fwcfg_agent.config import AgentConfig, load
from fwcfg_agent.log import (
    MSG_APPLIED,
    MSG_FILE,
    MSG_INVALID,
    MSG_NOTHING,
    MSG_UNCHANGED,
    MSG_WARNING,
)
from fwcfg_agent.model import Format

from .conftest import REPO, make_guest_root

UNIT = "fwcfg-agent.service"
SYSTEM_PYTHON = "/usr/bin/python3"
# The distributions' names of pyproject.toml's dependencies: the same in Debian 11 to 13, in
# Fedora and in EL 9 (python3-jinja2 2.11.3 in EL 9's AppStream, python3-pyudev 0.22 and
# python3-systemd 234 in its BaseOS, as in Debian 11: the oldest stack the agent supports).
DISTRO_NAMES = {"jinja2": "python3-jinja2", "pyudev": "python3-pyudev",
                "systemd-python": "python3-systemd"}
# The Debian packages the extracted agent runs with: what the DEB depends on.
DEB_DEPENDS = ("python3-jinja2", "python3-pyudev", "python3-systemd", "kmod")
RPM_REQUIRES = ("python3-jinja2", "python3-pyudev", "python3-systemd", "kmod")


@dataclass(frozen=True)
class Suite:
    """A Debian release a DEB is built for (`make deb SUITE=<name>`)."""

    name: str
    release: int
    python: str  # its python3 (dh-python's Depends: python3 (>= X.Y~), python3 (<< X.Y+1))
    unit_dir: str

    @property
    def revision(self) -> str:
        return f"-1~deb{self.release}u1"


SUITES = {s.name: s for s in (
    Suite("bullseye", 11, "3.9", "/lib/systemd/system"),
    Suite("bookworm", 12, "3.11", "/lib/systemd/system"),
    # Debian 13 ships nothing in the aliased /lib: units are in /usr/lib/systemd/system
    Suite("trixie", 13, "3.13", "/usr/lib/systemd/system"),
)}


def _host_suite() -> Suite | None:
    """The release `make deb` builds for without SUITE: this machine's."""
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return None
    m = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return SUITES.get(m.group(1)) if m else None
PAYLOAD = {
    "opt/GuestInfo": b"HOSTNAME=guest1.example.com\nIPADDR=192.0.2.10/24\nGATEWAY=192.0.2.1\n"
                     b"DNS1=192.0.2.53\n"
}


def _run(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def _clean_env() -> dict[str, str]:
    """The environment without what the outer `make test` or a venv would leak in."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL",
            "INVOCATION_ID", "JOURNAL_STREAM"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _missing(*tools: str) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


# The DEBs are built in mmdebstrap chroots (tools/deb-build), as root (chroot, mounts in a
# private namespace); tools/bootstrap installs mmdebstrap, and CI runs as root.
needs_deb = pytest.mark.skipif(
    bool(_missing("git", "make", "mmdebstrap", "dpkg-deb", "unshare", "tar"))
    or os.geteuid() != 0 or _host_suite() is None,
    reason="the DEB builds need root, mmdebstrap and unshare on Debian 11, 12 or 13 "
           "(tools/bootstrap installs them)",
)
needs_rpm = pytest.mark.skipif(
    bool(_missing("git", "make", "rpmbuild", "rpm", "rpmlint")),
    reason="rpm tools missing (tools/bootstrap installs them)",
)


# --- the clean checkout and the two builds --------------------------------------------------


@dataclass(frozen=True)
class Checkout:
    path: Path

    @property
    def templates(self) -> list[str]:
        return sorted(p.name for p in (self.path / "templates").glob("*.j2"))

    @property
    def launcher(self) -> bytes | None:
        """bin/fwcfg-agent: the lean launcher the packages install instead of the generated
        console_scripts wrapper (where the tree has one)."""
        path = self.path / "bin/fwcfg-agent"
        return path.read_bytes() if path.exists() else None

    @property
    def has_template_cache(self) -> bool:
        """The packages ship the templates precompiled (fwcfg_agent/render/cache.py) and the
        code digest (fwcfg_agent/codeid.py)."""
        return (self.path / "fwcfg_agent/codeid.py").exists()

    @property
    def has_extension(self) -> bool:
        """The raw reader's C extension is part of the tree: the packages are arch-specific."""
        return (self.path / "fwcfg_agent/sources/_portio.c").exists()


@pytest.fixture(scope="session")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Checkout:
    """A fresh clone of the commit under test: no uncommitted or untracked file gets in."""
    head = _run(["git", "-C", str(REPO), "rev-parse", "HEAD"]).stdout.strip()
    dest = tmp_path_factory.mktemp("clean") / "fwcfg-agent"
    _run(["git", "clone", "-q", "--no-checkout", str(REPO), str(dest)])
    _run(["git", "-C", str(dest), "-c", "advice.detachedHead=false", "checkout", "-q", head])
    return Checkout(dest)


@dataclass(frozen=True)
class Builds:
    deb: Path | None
    rpm: Path | None
    deb_stdout: str
    errors: dict[str, str]
    suite_debs: dict[str, Path] = field(default_factory=dict)
    suite_stdout: dict[str, str] = field(default_factory=dict)


# A cold build makes the suite's chroot first (mmdebstrap: minutes); the three run side by side.
BUILD_TIMEOUT = 1800


@pytest.fixture(scope="session")
def builds(checkout: Checkout) -> Builds:
    """`make deb SUITE=...` for each suite, `make deb` and `make rpm` in the clean clone, side
    by side (with warm caches, seconds)."""
    jobs: dict[str, list[str]] = {}
    if not needs_deb.args[0]:
        jobs["deb"] = ["deb"]
        jobs.update({f"deb-{name}": ["deb", f"SUITE={name}"] for name in SUITES})
    if shutil.which("rpmbuild"):
        jobs["rpm"] = ["rpm"]
    procs = {job: subprocess.Popen(
        ["make", "--no-print-directory", *args], cwd=checkout.path, env=_clean_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for job, args in jobs.items()}
    paths: dict[str, Path] = {}
    outs: dict[str, str] = {}
    errors: dict[str, str] = {}
    for job, proc in procs.items():
        out, err = proc.communicate(timeout=BUILD_TIMEOUT)
        outs[job] = out
        if proc.returncode != 0:
            errors[job] = f"make {' '.join(jobs[job])} exited {proc.returncode}\n{out}\n" \
                          f"{err[-6000:]}"
            continue
        paths[job] = checkout.path / out.strip().splitlines()[-1]
    return Builds(paths.get("deb"), paths.get("rpm"), outs.get("deb", ""), errors,
                  {n: paths[f"deb-{n}"] for n in SUITES if f"deb-{n}" in paths},
                  {n: outs.get(f"deb-{n}", "") for n in SUITES})


@pytest.fixture(scope="session")
def deb(builds: Builds) -> Path:
    """The DEB of `make deb`: for this machine's release."""
    assert "deb" not in builds.errors, builds.errors["deb"]
    assert builds.deb is not None and builds.deb.is_file()
    return builds.deb


@pytest.fixture(scope="session")
def host_suite() -> Suite:
    suite = _host_suite()
    assert suite is not None
    return suite


@pytest.fixture(scope="session")
def rpm(builds: Builds) -> Path:
    assert "rpm" not in builds.errors, builds.errors["rpm"]
    assert builds.rpm is not None and builds.rpm.is_file()
    return builds.rpm


@pytest.fixture(scope="session")
def deb_tree(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("deb-x")
    _run(["dpkg-deb", "-x", str(deb), str(dest)])
    return dest


def _deb_control_files(deb: Path) -> dict[str, str]:
    raw = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True,
                         check=True).stdout
    out: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                out[Path(member.name).name] = f.read().decode()
    return out


def _deb_arch() -> str:
    return _run(["dpkg", "--print-architecture"]).stdout.strip()


# --- DEB ------------------------------------------------------------------------------------


@needs_deb
def test_make_deb_prints_the_stable_path_last(builds: Builds, deb: Path, checkout: Checkout,
                                              host_suite: Suite) -> None:
    """Without SUITE, `make deb` builds for this machine's release."""
    arch = _deb_arch() if checkout.has_extension else "all"
    name = f"fwcfg-agent_{__version__}{host_suite.revision}_{arch}.deb"
    assert builds.deb_stdout.strip().splitlines()[-1] == f"dist/{name}"
    assert deb == checkout.path / "dist" / name


@needs_deb
def test_deb_control_fields(deb: Path, checkout: Checkout, host_suite: Suite) -> None:
    fields = _deb_control_files(deb)["control"]
    info = dict(re.findall(r"^([A-Za-z-]+): (.*)$", fields, re.M))
    assert info["Package"] == "fwcfg-agent"
    assert info["Version"] == __version__ + host_suite.revision
    assert info["Architecture"] == (_deb_arch() if checkout.has_extension else "all")
    depends = [d.strip().split()[0] for d in info["Depends"].split(",")]
    for name in (*DEB_DEPENDS, "python3:any"):
        assert name in depends, info["Depends"]
    if checkout.has_extension:
        assert "libc6" in depends, "${shlibs:Depends} missing for the C extension"


@needs_deb
def test_deb_contents(deb: Path, deb_tree: Path, checkout: Checkout, host_suite: Suite) -> None:
    listing = _run(["dpkg-deb", "-c", str(deb)]).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    site = "/usr/lib/python3/dist-packages/fwcfg_agent"
    expected = {
        "/usr/bin/fwcfg-agent",
        f"{host_suite.unit_dir}/{UNIT}",
        "/etc/fwcfg-agent/agent.conf",
        "/etc/fwcfg-agent/templates/",
        "/usr/share/man/man8/fwcfg-agent.8.gz",
        f"{site}/__init__.py",
        f"{site}/cli.py",
        f"{site}/render/env.py",
        f"{site}/sources/sysfs.py",
    } | {f"{site}/templates/{name}" for name in checkout.templates}
    assert checkout.templates, "no templates/*.j2 in the checkout"
    assert expected <= paths, sorted(expected - paths)
    assert not [p for p in paths if p.endswith((".pyc", ".pyo"))]
    assert os.access(deb_tree / "usr/bin/fwcfg-agent", os.X_OK)
    _check_launcher(deb_tree / "usr/bin/fwcfg-agent", checkout)
    # The packaged files are the checkout's, byte for byte.
    assert (deb_tree / host_suite.unit_dir.lstrip("/") / UNIT).read_bytes() == \
        (checkout.path / "units" / UNIT).read_bytes()
    assert (deb_tree / "etc/fwcfg-agent/agent.conf").read_bytes() == \
        (checkout.path / "etc/agent.conf").read_bytes()
    assert gzip.decompress((deb_tree / "usr/share/man/man8/fwcfg-agent.8.gz").read_bytes()) \
        == (checkout.path / "man/fwcfg-agent.8").read_bytes()
    for name in checkout.templates:
        assert (deb_tree / site.lstrip("/") / "templates" / name).read_bytes() == \
            (checkout.path / "templates" / name).read_bytes()
    so = [p for p in paths if re.search(r"/fwcfg_agent/sources/_portio[^/]*\.so$", p)]
    assert bool(so) == checkout.has_extension, so
    assert not [p for p in paths if p.endswith(".c")]
    # That the release's python3 and jinja2 use the precompiled templates is checked in the
    # release's chroot (test_suite_deb_runs_with_the_suites_python_and_jinja2): this machine's
    # jinja2 may be another security update of it, whose modules the agent rightly ignores.


def _check_launcher(installed: Path, checkout: Checkout) -> None:
    if checkout.launcher is not None:
        assert installed.read_bytes() == checkout.launcher
    else:
        assert installed.read_text().startswith("#!/usr/bin/python3")


# Run by the packaged python3 against the packaged tree: the build precompiled every packaged
# template (render/cache.py) with a jinja2 this python3 has, so the agent uses those modules and
# compiles nothing at boot; and the build's code digest (_codeid) is that of the shipped files.
_CACHE_PROBE = """
import os
from fwcfg_agent import codeid
from fwcfg_agent.render.cache import check
from fwcfg_agent.render.env import packaged_template_dir
d = packaged_template_dir()
print(d)
print(len([n for n in os.listdir(d) if n.endswith(".j2")]))
print(check() or "-")
print(codeid.read() is not None and codeid.read() == codeid.compute())
"""


def _check_template_cache(site_root: Path, cwd: Path) -> None:
    env = {**_clean_env(), "PYTHONPATH": str(site_root)}
    out = _run([SYSTEM_PYTHON, "-B", "-c", _CACHE_PROBE], env=env, cwd=cwd).stdout.split("\n")
    assert out[0].startswith(str(site_root)), out
    assert int(out[1]) > 0 and out[2] == "-", f"packaged templates not precompiled: {out[2]}"
    assert out[3] == "True", "fwcfg_agent/_codeid missing or not the digest of the packaged files"


@needs_deb
def test_deb_conffile_and_scripts_enable_but_never_start(deb: Path) -> None:
    ctrl = _deb_control_files(deb)
    assert ctrl["conffiles"].split() == ["/etc/fwcfg-agent/agent.conf"]
    postinst = ctrl["postinst"]
    assert f"deb-systemd-helper enable '{UNIT}'" in postinst
    for name, text in ctrl.items():
        if name in ("preinst", "postinst", "prerm", "postrm"):
            # deb-systemd-invoke is what starts, stops and restarts units in maintainer scripts.
            assert "deb-systemd-invoke" not in text, (name, text)
            assert not re.search(r"systemctl .*\b(start|restart|try-restart|stop)\b", text)
    assert f"deb-systemd-helper purge '{UNIT}'" in ctrl["postrm"]


@needs_deb
def test_deb_agent_runs_from_the_extracted_package(deb_tree: Path, tmp_path: Path,
                                                   checkout: Checkout) -> None:
    """The packaged code, templates and config, with Debian's python3 and the Depends."""
    site = deb_tree / "usr/lib/python3/dist-packages"
    agent = [SYSTEM_PYTHON, str(deb_tree / "usr/bin/fwcfg-agent")]
    env = {**_clean_env(), "PYTHONPATH": str(site)}
    version = _run([*agent, "--version"], env=env, cwd=tmp_path)
    assert version.stdout.strip() == f"fwcfg-agent {__version__}"
    where = _run([SYSTEM_PYTHON, "-c", "import fwcfg_agent.render.env as e, fwcfg_agent as f; "
                  "print(f.__file__); print(e.packaged_template_dir())"], env=env, cwd=tmp_path)
    module, templates = where.stdout.split()
    assert module.startswith(str(site)) and templates.startswith(str(site)), where.stdout

    root = make_guest_root(tmp_path / "root", PAYLOAD)
    (root / "etc/fwcfg-agent").mkdir(parents=True)
    shutil.copy(deb_tree / "etc/fwcfg-agent/agent.conf", root / "etc/fwcfg-agent/agent.conf")
    formats = ["--format", "hostname", "--format", "hosts"]
    networkd = "networkd.network.j2" in checkout.templates
    if networkd:
        formats += ["--format", "networkd"]
    apply = [*agent, "apply", "--root", str(root), *formats]
    r = _run(apply, env=env, cwd=tmp_path, check=False)
    assert r.returncode == 0, r.stderr
    assert (root / "etc/hostname").read_text() == "guest1.example.com\n"
    assert "192.0.2.10\tguest1.example.com guest1" in (root / "etc/hosts").read_text()
    if networkd:
        network = root / "etc/systemd/network/10-fwcfg-enx525400123456.network"
        assert "192.0.2.10/24" in network.read_text()
    journal = _run([*agent, "journal", "--json", "--root", str(root)], env=env, cwd=tmp_path)
    assert '"outcome": "changed"' in journal.stdout
    again = _run(apply, env=env, cwd=tmp_path)
    assert "nothing changed" in again.stderr


# --- the DEB of each Debian release ----------------------------------------------------------

# Run in a copy of the suite's build chroot (`tools/deb-build --run SUITE DIR`, DIR at /work):
# the suite's lintian on its DEB (as nobody: lintian warns when run as root), then the suite's
# python3 and jinja2 on the extracted package: the cache probe, --version and an apply.
_IN_CHROOT = """
deb=$1
echo "=== lintian"
rc=0
cp "/work/$deb" /tmp/ && chmod 0644 "/tmp/$deb"
(cd /tmp && runuser -u nobody -- env HOME=/tmp lintian --pedantic -I -E --tag-display-limit 0 \
  "/tmp/$deb" 2>&1) || rc=$?
echo "=== lintian-status"
echo $rc
echo "=== versions"
python3 -c 'import sys, jinja2; print("%d.%d" % sys.version_info[:2]); print(jinja2.__version__)'
dpkg-deb -x "/work/$deb" /tmp/x
cd /tmp/x
export PYTHONPATH=/tmp/x/usr/lib/python3/dist-packages
echo "=== probe"
python3 -B -c "$2" 2>&1
echo "=== version"
python3 /tmp/x/usr/bin/fwcfg-agent --version 2>&1
echo "=== apply"
python3 /tmp/x/usr/bin/fwcfg-agent apply --root /work/root --format hostname --format hosts \
  --format networkd 2>&1 && cat /work/root/etc/hostname
echo "=== end"
"""


@pytest.fixture(scope="session")
def suite_runs(builds: Builds, checkout: Checkout, tmp_path_factory: pytest.TempPathFactory
               ) -> dict[str, dict[str, str]]:
    """Per suite, the sections of _IN_CHROOT's output (the three suites side by side)."""
    procs: dict[str, subprocess.Popen[str]] = {}
    for name, deb_path in builds.suite_debs.items():
        work = tmp_path_factory.mktemp(f"in-{name}")
        shutil.copy(deb_path, work / deb_path.name)
        make_guest_root(work / "root", PAYLOAD)
        procs[name] = subprocess.Popen(
            [str(checkout.path / "tools/deb-build"), "--run", name, str(work), "--",
             "/bin/sh", "-c", _IN_CHROOT, "sh", deb_path.name, _CACHE_PROBE],
            env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs: dict[str, dict[str, str]] = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=BUILD_TIMEOUT)
        assert proc.returncode == 0 and "=== end" in out, f"{name}: {out}\n{err[-4000:]}"
        parts = re.split(r"^=== (\S+)\n", out, flags=re.M)
        runs[name] = dict(zip(parts[1::2], parts[2::2]))
    return runs


def _suite_deb(builds: Builds, name: str) -> Path:
    assert f"deb-{name}" not in builds.errors, builds.errors[f"deb-{name}"]
    return builds.suite_debs[name]


@needs_deb
@pytest.mark.parametrize("name", SUITES)
def test_suite_deb_path_version_and_changelog(builds: Builds, name: str, checkout: Checkout,
                                              tmp_path: Path) -> None:
    """`make deb SUITE=x` prints the DEB's path last; its version names the release, and so
    does the changelog entry the build added on top of packaging/debian/changelog's."""
    suite = SUITES[name]
    deb = _suite_deb(builds, name)
    arch = _deb_arch() if checkout.has_extension else "all"
    version = f"{__version__}{suite.revision}"
    assert builds.suite_stdout[name].strip().splitlines()[-1] == \
        f"dist/fwcfg-agent_{version}_{arch}.deb"
    info = dict(re.findall(r"^([A-Za-z-]+): (.*)$", _deb_control_files(deb)["control"], re.M))
    assert info["Version"] == version
    _run(["dpkg-deb", "-x", str(deb), str(tmp_path)])
    changelog = gzip.decompress(
        (tmp_path / "usr/share/doc/fwcfg-agent/changelog.Debian.gz").read_bytes()).decode()
    assert changelog.startswith(f"fwcfg-agent ({version}) {name}; urgency=medium\n"), changelog
    upstream = (checkout.path / "packaging/debian/changelog").read_text()
    assert changelog.endswith(upstream), "the upstream changelog is not kept below the entry"


def _depends(deb: Path) -> list[str]:
    info = dict(re.findall(r"^([A-Za-z-]+): (.*)$", _deb_control_files(deb)["control"], re.M))
    return [d.strip() for d in info["Depends"].split(",")]


@needs_deb
@pytest.mark.parametrize("name", SUITES)
def test_suite_deb_depends_on_the_suites_python_and_packages(builds: Builds, name: str,
                                                             checkout: Checkout) -> None:
    suite = SUITES[name]
    depends = _depends(_suite_deb(builds, name))
    major, minor = suite.python.split(".")
    # dh-python's range for an extension built for the suite's only python3
    assert f"python3 (>= {suite.python}~)" in depends, depends
    assert f"python3 (<< {major}.{int(minor) + 1})" in depends, depends
    names = {d.split()[0] for d in depends}
    assert {*DEB_DEPENDS, "python3:any"} <= names, depends
    if checkout.has_extension:
        assert "libc6" in names, depends


@needs_deb
@pytest.mark.parametrize("name", SUITES)
def test_suite_deb_contents(builds: Builds, name: str, checkout: Checkout,
                            tmp_path: Path) -> None:
    """The unit where the suite keeps units, the templates and their precompiled modules, the
    extension built for the suite's python3, and the Python metadata of pyproject.toml (through
    setup.py's translation for bullseye's setuptools 52)."""
    suite = SUITES[name]
    deb = _suite_deb(builds, name)
    _run(["dpkg-deb", "-x", str(deb), str(tmp_path)])
    unit = tmp_path / suite.unit_dir.lstrip("/") / UNIT
    assert unit.read_bytes() == (checkout.path / "units" / UNIT).read_bytes()
    other = "/usr/lib/systemd/system" if suite.unit_dir == "/lib/systemd/system" \
        else "/lib/systemd/system"
    assert not (tmp_path / other.lstrip("/")).exists()
    site = tmp_path / "usr/lib/python3/dist-packages"
    for template in checkout.templates:
        assert (site / "fwcfg_agent/templates" / template).read_bytes() == \
            (checkout.path / "templates" / template).read_bytes()
    if checkout.has_template_cache:
        assert (site / "fwcfg_agent/_codeid").stat().st_size > 0
        assert list((site / "fwcfg_agent/templates/__compiled__").glob("tmpl_*.py"))
    if checkout.has_extension:
        tag = suite.python.replace(".", "")
        assert list(site.glob(f"fwcfg_agent/sources/_portio.cpython-{tag}-*.so")), \
            sorted(p.name for p in (site / "fwcfg_agent/sources").iterdir())
    (meta,) = [*site.glob("fwcfg_agent-*.dist-info/METADATA"),
               *site.glob("fwcfg_agent-*.egg-info/PKG-INFO")]
    text = meta.read_text()
    assert f"\nVersion: {__version__}\n" in text and "\nName: fwcfg-agent\n" in text
    assert "\nRequires-Python: >=3.9\n" in text
    if meta.name == "METADATA":
        requires = set(re.findall(r"^Requires-Dist: ([^;\n]+)$", text, re.M))
        # setuptools 66 (Debian 12) writes `jinja2 (>=2.11)`
        normal = {re.sub(r"[ ()]", "", r) for r in requires}
        assert normal >= set(_pyproject_dependencies()), text
    else:
        # egg-info (Debian 11): dh_python3 turns requires.txt's requirements into Depends (the
        # Depends test) and drops them from the file; pyproject's extras stay.
        requires_txt = (meta.parent / "requires.txt").read_text()
        assert "[test]" in requires_txt, requires_txt


@needs_deb
@pytest.mark.parametrize("name", SUITES)
def test_suite_lintian_has_no_errors_and_only_accepted_tags(suite_runs: dict[str, dict[str, str]],
                                                            name: str) -> None:
    """The suite's own lintian (Debian 11's knows other tags than 13's)."""
    run = suite_runs[name]
    out = run["lintian"]
    tags = re.findall(r"^([EWIPX]): fwcfg-agent[^:]*: (\S+)", out, re.M)
    assert not [t for t in tags if t[0] == "E"], out
    assert run["lintian-status"].strip() == "0", out
    unexplained = {tag for _, tag in tags} - _accepted("lintian")
    assert not unexplained, f"list these in packaging/README.md with a reason: {unexplained}"


@needs_deb
@pytest.mark.parametrize("name", SUITES)
def test_suite_deb_runs_with_the_suites_python_and_jinja2(suite_runs: dict[str, dict[str, str]],
                                                          name: str, checkout: Checkout) -> None:
    """In the suite's chroot, its python3 and jinja2 (2.11 on bullseye) use the templates the
    build precompiled, and the packaged agent applies a payload."""
    suite = SUITES[name]
    run = suite_runs[name]
    python, jinja2_version = run["versions"].split()
    assert python == suite.python
    assert run["version"].strip() == f"fwcfg-agent {__version__}"
    if checkout.has_template_cache:
        probe = run["probe"].split("\n")
        assert probe[0].startswith("/tmp/x/usr/lib/python3/dist-packages/"), probe
        assert int(probe[1]) > 0 and probe[2] == "-", \
            f"templates not precompiled for jinja2 {jinja2_version}: {probe}"
        assert probe[3] == "True", probe
    assert run["apply"].rstrip().endswith("guest1.example.com"), run["apply"]


# --- RPM ------------------------------------------------------------------------------------


def _rpm_q(rpm: Path, *args: str) -> str:
    return _run(["rpm", "-qp", *args, str(rpm)]).stdout


@needs_rpm
def test_rpm_name_and_requires(rpm: Path, checkout: Checkout) -> None:
    arch = "noarch" if not checkout.has_extension else _run(["uname", "-m"]).stdout.strip()
    assert rpm.name == f"fwcfg-agent-{__version__}-1.{arch}.rpm"
    requires = {line.split()[0] for line in _rpm_q(rpm, "--requires").splitlines()}
    assert set(RPM_REQUIRES) <= requires, requires


@needs_rpm
def test_rpm_layout(rpm: Path, checkout: Checkout) -> None:
    files = set(_rpm_q(rpm, "-l").split())
    sitelib = [f for f in files if re.fullmatch(r"/usr/lib(64)?/python3\.\d+/site-packages", f)
               or re.fullmatch(r"/usr/lib(64)?/python3\.\d+/site-packages/fwcfg_agent", f)]
    assert sitelib, sorted(files)
    site = next(f for f in sitelib if f.endswith("/fwcfg_agent"))
    expected = {
        "/usr/bin/fwcfg-agent",
        f"/usr/lib/systemd/system/{UNIT}",
        "/usr/lib/systemd/system-preset/90-fwcfg-agent.preset",
        "/etc/fwcfg-agent/agent.conf",
        "/etc/fwcfg-agent/templates",
        "/usr/share/man/man8/fwcfg-agent.8.gz",
        f"{site}/cli.py",
        f"{site}/sources/sysfs.py",
    } | {f"{site}/templates/{name}" for name in checkout.templates}
    assert expected <= files, sorted(expected - files)
    flags = dict(line.rsplit(" ", 1) for line in _rpm_q(
        rpm, "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}_\n]").splitlines())
    assert "c" in flags["/etc/fwcfg-agent/agent.conf"] and \
        "n" in flags["/etc/fwcfg-agent/agent.conf"]
    assert "n" in flags["/etc/fwcfg-agent/templates"]
    assert ("_portio" in " ".join(files)) == checkout.has_extension


@needs_rpm
def test_rpm_scriptlets_preset_and_never_restart(rpm: Path) -> None:
    scripts = _rpm_q(rpm, "--scripts")
    for section in ("postinstall", "preuninstall", "postuninstall"):
        assert f"{section} scriptlet" in scripts, scripts
    assert UNIT in scripts
    assert "preset" in scripts or "install-system-units" in scripts, scripts
    assert not re.search(r"try-restart|\brestart\b|mark-restart", scripts), scripts


@needs_rpm
def test_rpm_installs_into_a_scratch_root(rpm: Path, tmp_path: Path, checkout: Checkout) -> None:
    root = tmp_path / "rpmroot"
    root.mkdir()
    # --noscripts: the scratch root has no shell to run them (their content is checked above).
    _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-i", "--nodeps",
          "--noscripts", str(rpm)])
    assert os.access(root / "usr/bin/fwcfg-agent", os.X_OK)
    _check_launcher(root / "usr/bin/fwcfg-agent", checkout)
    assert (root / "usr/lib/systemd/system" / UNIT).read_bytes() == \
        (checkout.path / "units" / UNIT).read_bytes()
    preset = (root / "usr/lib/systemd/system-preset/90-fwcfg-agent.preset").read_text()
    assert f"enable {UNIT}" in preset.splitlines()
    assert (root / "etc/fwcfg-agent/templates").is_dir()
    assert load(root / "etc/fwcfg-agent/agent.conf", required=True) == AgentConfig()
    assert (root / "usr/share/man/man8/fwcfg-agent.8.gz").is_file()
    (site,) = root.glob("usr/lib*/python3.*/site-packages")
    for name in checkout.templates:
        assert (site / "fwcfg_agent/templates" / name).is_file()
    if checkout.has_template_cache:
        _check_template_cache(site_root=site, cwd=tmp_path)
    query = _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-q",
                  "--configfiles", "fwcfg-agent"]).stdout.split()
    assert "/etc/fwcfg-agent/agent.conf" in query
    _run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "-V", "--nodeps", "fwcfg-agent"])
    # The installed code runs, with this machine's python3 (the RPM was built for it here).
    version = _run([SYSTEM_PYTHON, str(root / "usr/bin/fwcfg-agent"), "--version"],
                   env={**_clean_env(), "PYTHONPATH": str(site)}, cwd=tmp_path)
    assert version.stdout.strip() == f"fwcfg-agent {__version__}"


@needs_rpm
def test_rpmlint_has_no_errors_and_only_accepted_warnings(rpm: Path,
                                                          checkout: Checkout) -> None:
    config = checkout.path / "packaging/rpm/rpmlint.toml"
    r = _run(["rpmlint", "-c", str(config), str(rpm)], check=False)
    tags = re.findall(r"^fwcfg-agent\.\S+: ([EW]): (\S+)", r.stdout, re.M)
    assert not [t for t in tags if t[0] == "E"], r.stdout
    assert re.search(r"\b0 errors\b", r.stdout), r.stdout
    unexplained = {tag for _, tag in tags} - _accepted("rpmlint")
    assert not unexplained, f"list these in packaging/README.md with a reason: {unexplained}"
    # Without our configuration, the only errors are the three Fedora's configuration filters.
    plain = _run(["rpmlint", str(rpm)], check=False)
    errors = set(re.findall(r"^fwcfg-agent\.\S+: E: (\S+)", plain.stdout, re.M))
    assert errors <= {"no-signature", "no-packager-tag", "no-group-tag"}, plain.stdout


@pytest.mark.skipif(shutil.which("rpmspec") is None, reason="rpmspec missing")
def test_spec_uses_the_fedora_macros_where_they_exist(tmp_path: Path) -> None:
    """With Fedora's macros defined (stand-ins here), the spec uses them and not the fallbacks."""
    fedora = {
        "pyproject_buildrequires": "FEDORA_PYPROJECT_BUILDREQUIRES",
        "pyproject_wheel": "FEDORA_PYPROJECT_WHEEL",
        "pyproject_install": "FEDORA_PYPROJECT_INSTALL",
        "systemd_post()": "FEDORA_SYSTEMD_POST %*",
        "systemd_preun()": "FEDORA_SYSTEMD_PREUN %*",
        "systemd_postun()": "FEDORA_SYSTEMD_POSTUN %*",
        "_unitdir": "/FEDORA/unitdir",
        "_presetdir": "/FEDORA/presetdir",
        "python3_sitearch": "/FEDORA/sitearch",
    }
    defines = [arg for k, v in fedora.items() for arg in ("--define", f"{k} {v}")]
    spec = str(REPO / "packaging/rpm/fwcfg-agent.spec")
    parsed = _run(["rpmspec", "-P", *defines, spec], cwd=tmp_path).stdout
    for stand_in in ("FEDORA_PYPROJECT_BUILDREQUIRES", "FEDORA_PYPROJECT_WHEEL",
                     "FEDORA_PYPROJECT_INSTALL", f"FEDORA_SYSTEMD_POST {UNIT}",
                     f"FEDORA_SYSTEMD_PREUN {UNIT}", f"FEDORA_SYSTEMD_POSTUN {UNIT}",
                     f"/FEDORA/unitdir/{UNIT}", "/FEDORA/presetdir/90-fwcfg-agent.preset",
                     "/FEDORA/sitearch/fwcfg_agent/"):
        assert stand_in in parsed, stand_in
    assert "build_meta" not in parsed and "from installer" not in parsed
    assert "_with_restart" not in parsed
    # Without them (this machine), the fallbacks build it: checked by the rpm tests above.
    plain = _run(["rpmspec", "-P", spec], cwd=tmp_path).stdout
    assert "build_meta" in plain and "systemctl --no-reload preset" in plain


# --- the packaging sources, without building ------------------------------------------------


def _accepted(tool: str) -> set[str]:
    text = (REPO / "packaging/README.md").read_text()
    return set(re.findall(rf"^\| {tool} \| `([a-z0-9.-]+)` \|", text, re.M))


def test_versions_agree() -> None:
    changelog = (REPO / "packaging/debian/changelog").read_text().splitlines()[0]
    m = re.match(r"fwcfg-agent \(([^)]+)\)", changelog)
    assert m and m.group(1) == __version__, changelog
    spec = (REPO / "packaging/rpm/fwcfg-agent.spec").read_text()
    m2 = re.search(r"^Version:\s*(\S+)$", spec, re.M)
    assert m2 and m2.group(1) == __version__
    assert re.search(rf"^\* .* - {re.escape(__version__)}-\d+$", spec, re.M), \
        "the spec's %changelog has no entry for this version"


def _pyproject_dependencies() -> list[str]:
    """pyproject.toml's dependencies, as written (`jinja2>=2.11`)."""
    text = (REPO / "pyproject.toml").read_text()
    start = text.index("\ndependencies = [")
    return re.findall(r'"([^"]+)"', text[start:text.index("]", start)])


def test_dependencies_are_the_distributions_packages_of_pyprojects() -> None:
    """The DEB's Depends and the RPM's Requires name the Debian (11 to 13) and the Fedora/EL 9
    packages of exactly pyproject.toml's dependencies (plus kmod, for modprobe)."""
    dists = {re.split(r"[<>=!~ ;]", d, maxsplit=1)[0] for d in _pyproject_dependencies()}
    expected = {DISTRO_NAMES[d] for d in dists} | {"kmod"}
    control = (REPO / "packaging/debian/control").read_text()
    block = control.split("\nPackage: fwcfg-agent\n", 1)[1]
    depends = re.search(r"^Depends:(.*(?:\n .*)*)", block, re.M)
    assert depends is not None
    names = {d.strip().split()[0] for d in depends.group(1).split(",") if d.strip()}
    assert {n for n in names if not n.startswith("${")} == expected, names
    spec = (REPO / "packaging/rpm/fwcfg-agent.spec").read_text()
    assert set(re.findall(r"^Requires:\s*(\S+)", spec, re.M)) == expected
    assert set(DEB_DEPENDS) == set(RPM_REQUIRES) == expected


def test_setup_py_translates_pyprojects_metadata(tmp_path: Path) -> None:
    """setup.py's metadata for setuptools < 61 (Debian 11) is pyproject.toml's, as this
    setuptools reads it from pyproject.toml itself."""
    probe = (
        "import json, runpy, sys, setuptools\n"
        "setuptools.setup = lambda **kw: None\n"
        "ns = runpy.run_path('setup.py')\n"
        "from setuptools.dist import Distribution\n"
        "d = Distribution()\n"
        "d.parse_config_files()\n"
        "m = d.metadata\n"
        "new = dict(name=m.name, version=m.version, description=m.description,\n"
        "           python_requires=str(m.python_requires), license=m.license,\n"
        "           install_requires=[str(r) for r in d.install_requires],\n"
        "           classifiers=m.classifiers, packages=d.packages, scripts=d.scripts,\n"
        "           package_dir=d.package_dir, package_data=d.package_data,\n"
        "           extras_require={k: [str(r) for r in v] for k, v in d.extras_require.items()})\n"
        "old = ns['legacy_metadata']()\n"
        "print(json.dumps({'old': old, 'new': new}, sort_keys=True, default=list))\n"
    )
    r = _run([sys.executable, "-c", probe], cwd=REPO, env=_clean_env())
    both = json.loads(r.stdout.splitlines()[-1])
    old, new = both["old"], both["new"]
    for key, value in new.items():
        assert old.get(key) == value, (key, old.get(key), value)
    assert old["long_description"] == (REPO / "README.md").read_text()
    assert old["exclude_package_data"] == {"fwcfg_agent.sources": ["*.c"]}


def test_architecture_follows_the_c_extension() -> None:
    has_ext = (REPO / "fwcfg_agent/sources/_portio.c").exists()
    control = (REPO / "packaging/debian/control").read_text()
    assert re.findall(r"^Architecture: (\S+)$", control, re.M) == ["any" if has_ext else "all"]
    spec = (REPO / "packaging/rpm/fwcfg-agent.spec").read_text()
    assert bool(re.search(r"^BuildArch:\s*noarch$", spec, re.M)) == (not has_ext)


def _conf_settings(text: str) -> list[str]:
    """The commented-out settings of agent.conf: lines `#KEY=VALUE`."""
    return [line[1:] for line in text.splitlines() if re.match(r"#[A-Z_]+=", line)]


def test_agent_conf_parses_to_the_defaults() -> None:
    assert load(REPO / "etc/agent.conf", required=True) == AgentConfig()


def test_agent_conf_documents_every_option_with_its_default(tmp_path: Path) -> None:
    text = (REPO / "etc/agent.conf").read_text()
    settings = _conf_settings(text)
    keys = [s.split("=", 1)[0] for s in settings]
    options = [f.upper() for f in AgentConfig._fields]
    assert sorted(keys) == sorted(options)
    # Uncommented, every line states the default: the result is still the default config.
    uncommented = tmp_path / "agent.conf"
    uncommented.write_text("\n".join(settings) + "\n")
    assert load(uncommented, required=True) == AgentConfig()


def test_man_page_covers_the_cli_vocabulary_config_journal_and_exit_codes() -> None:
    page = (REPO / "man/fwcfg-agent.8").read_text()
    text = page.replace("\\-", "-").replace("\\(aq", "'")
    for word in ("apply", "diff", "show", "journal", "rollback", "--root", "--config",
                 "--format", "--dry-run", "--json", "--debug", "--source", "--version",
                 "fwcfg-agent=off", "/etc/fwcfg-agent/templates/", "journal.jsonl",
                 "host", "check", "args", "preview", "SMBIOS", "credential", "--for",
                 "--channel", "--domain-xml", "--agent-conf", "--smbios-files",
                 "/sys/firmware/dmi/tables/DMI", "/run/credentials/@system"):
        assert word in text, word
    for command in ("check", "args", "preview"):
        assert f".B host {command}" in text, command
    format_option = text.split(".BI --format", 1)[1].split(".TP", 1)[0]
    for fmt in Format:
        assert re.search(rf"^\.BR? {fmt.value}\b", format_option, re.M), fmt
    for option in (f.upper() for f in AgentConfig._fields):
        assert f".BI {option}=" in text, option
    for key in ("HOSTNAME", "DOMAIN", "SEARCH", "DNS1", "HWADDR", "DEVICE", "BOOTPROTO",
                "IPADDR", "PREFIX", "NETMASK", "GATEWAY", "IPV6ADDR", "IPV6ADDR_SECONDARIES",
                "IPV6_DEFAULTGW", "ROUTE1", "MTU", "TYPE", "ONBOOT"):
        assert re.search(rf"^\.BR? {key}\b", text, re.M), key
    for msg_id in (MSG_APPLIED, MSG_FILE, MSG_INVALID, MSG_UNCHANGED, MSG_NOTHING, MSG_WARNING):
        assert msg_id in text
    codes = re.findall(r"^  (\d+)  ", EXIT_CODES, re.M)
    assert codes
    section = text.split(".SH EXIT STATUS", 1)[1].split(".SH", 1)[0]
    assert re.findall(r"^\.B (\d+)$", section, re.M) == codes
    assert f'"fwcfg-agent {__version__}"' in page


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff missing")
def test_man_page_renders_without_warnings() -> None:
    r = _run(["groff", "-t", "-man", "-ww", "-z", str(REPO / "man/fwcfg-agent.8")],
             check=False)
    assert r.returncode == 0 and not r.stderr, r.stderr


def test_every_subpackage_is_packaged() -> None:
    """A new subpackage (fwcfg_agent/host, say) must be in pyproject's package list, or the
    wheel, the DEB and the RPM ship without it."""
    text = (REPO / "pyproject.toml").read_text()
    start = text.index("packages = [")
    listed = set(re.findall(r'"([a-z_.]+)"', text[start:text.index("]", start)]))
    found = {".".join(p.relative_to(REPO).parts[:-1])
             for p in (REPO / "fwcfg_agent").rglob("__init__.py")
             if "__pycache__" not in p.parts and "__compiled__" not in p.parts}
    assert found <= listed, f"not packaged: {sorted(found - listed)}"
