"""The DEB and the RPM, built from a clean clone of HEAD, hold and run what they should.

The packages are built once per session (`make deb` and `make rpm`, side by side) in a fresh
clone of the commit the suite runs from, so uncommitted files never reach them. Then: their
contents and metadata, the maintainer scripts (enable, never start or restart), lintian and
rpmlint, the agent run from the extracted DEB against a fake guest root, and the RPM installed
into a scratch root with `rpm --root`. The static checks of the packaging sources (versions,
agent.conf, man page) need no build tools.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
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
# The Debian packages the extracted agent runs with: what the DEB depends on.
DEB_DEPENDS = ("python3-jinja2", "python3-pyudev", "python3-systemd", "kmod")
RPM_REQUIRES = ("python3-jinja2", "python3-pyudev", "python3-systemd", "kmod")
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


needs_deb = pytest.mark.skipif(
    bool(_missing("git", "make", "dpkg-buildpackage", "dh", "dpkg-deb", "lintian")),
    reason="Debian build tools missing (tools/bootstrap installs them)",
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


@pytest.fixture(scope="session")
def builds(checkout: Checkout) -> Builds:
    """`make deb` and `make rpm` in the clean clone, run side by side (each takes seconds)."""
    procs: dict[str, subprocess.Popen[str]] = {}
    for target, tool in (("deb", "dpkg-buildpackage"), ("rpm", "rpmbuild")):
        if shutil.which(tool):
            procs[target] = subprocess.Popen(
                ["make", "--no-print-directory", target], cwd=checkout.path, env=_clean_env(),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
    paths: dict[str, Path | None] = {"deb": None, "rpm": None}
    outs: dict[str, str] = {}
    errors: dict[str, str] = {}
    for target, proc in procs.items():
        out, err = proc.communicate(timeout=600)
        outs[target] = out
        if proc.returncode != 0:
            errors[target] = f"make {target} exited {proc.returncode}\n{out}\n{err[-6000:]}"
            continue
        paths[target] = checkout.path / out.strip().splitlines()[-1]
    return Builds(paths["deb"], paths["rpm"], outs.get("deb", ""), errors)


@pytest.fixture(scope="session")
def deb(builds: Builds) -> Path:
    assert "deb" not in builds.errors, builds.errors["deb"]
    assert builds.deb is not None and builds.deb.is_file()
    return builds.deb


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
def test_make_deb_prints_the_stable_path_last(builds: Builds, deb: Path,
                                              checkout: Checkout) -> None:
    arch = _deb_arch() if checkout.has_extension else "all"
    name = f"fwcfg-agent_{__version__}_{arch}.deb"
    assert builds.deb_stdout.strip().splitlines()[-1] == f"dist/{name}"
    assert deb == checkout.path / "dist" / name


@needs_deb
def test_deb_control_fields(deb: Path, checkout: Checkout) -> None:
    fields = _deb_control_files(deb)["control"]
    info = dict(re.findall(r"^([A-Za-z-]+): (.*)$", fields, re.M))
    assert info["Package"] == "fwcfg-agent"
    assert info["Version"] == __version__
    assert info["Architecture"] == (_deb_arch() if checkout.has_extension else "all")
    depends = [d.strip().split()[0] for d in info["Depends"].split(",")]
    for name in (*DEB_DEPENDS, "python3:any"):
        assert name in depends, info["Depends"]
    if checkout.has_extension:
        assert "libc6" in depends, "${shlibs:Depends} missing for the C extension"


@needs_deb
def test_deb_contents(deb: Path, deb_tree: Path, checkout: Checkout) -> None:
    listing = _run(["dpkg-deb", "-c", str(deb)]).stdout
    paths = {line.split()[-1].lstrip(".") for line in listing.splitlines()}
    site = "/usr/lib/python3/dist-packages/fwcfg_agent"
    expected = {
        "/usr/bin/fwcfg-agent",
        f"/lib/systemd/system/{UNIT}",
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
    assert (deb_tree / "lib/systemd/system" / UNIT).read_bytes() == \
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
    if checkout.has_template_cache:
        _check_template_cache(site_root=deb_tree / "usr/lib/python3/dist-packages", cwd=deb_tree)


def _check_launcher(installed: Path, checkout: Checkout) -> None:
    if checkout.launcher is not None:
        assert installed.read_bytes() == checkout.launcher
    else:
        assert installed.read_text().startswith("#!/usr/bin/python3")


# Run by the packaged python3 against the packaged tree: the build precompiled every packaged
# template (render/cache.py) with a jinja2 this python3 has, so the agent uses those modules and
# compiles nothing at boot; and the build's code digest (_codeid) is that of the shipped files.
_CACHE_PROBE = """
from fwcfg_agent import codeid
from fwcfg_agent.render.cache import check
from fwcfg_agent.render.env import packaged_template_dir
d = packaged_template_dir()
print(d)
print(len(list(d.glob("*.j2"))))
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


@needs_deb
def test_lintian_has_no_errors_and_only_accepted_tags(deb: Path) -> None:
    r = _run(["lintian", "--pedantic", "-I", "-E", "--tag-display-limit", "0", str(deb)],
             check=False)
    tags = re.findall(r"^([EWIPX]): fwcfg-agent[^:]*: (\S+)", r.stdout, re.M)
    assert not [t for t in tags if t[0] == "E"], r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
    unexplained = {tag for _, tag in tags} - _accepted("lintian")
    assert not unexplained, f"list these in packaging/README.md with a reason: {unexplained}"


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
