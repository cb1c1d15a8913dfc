"""Guest disks: the cached Debian tree from tools/guest-image (Debian 12 by default, or another
suite), the agent installed into a copy of it, and one ext4 disk per network-manager variant, made
with `mkfs.ext4 -d` (no loop mounts)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
GUEST_FILES = HERE / "guestfiles"

# A fixed machine id: an empty one makes systemd treat every boot as a first boot (and run
# `preset-all`, which would enable network managers the test did not choose).
MACHINE_ID = "6f1d3c2b8a0e4b5c9d7e1f2a3b4c5d6e\n"


def cache_dir() -> Path:
    return Path(os.environ.get("FWCFG_CACHE", "/var/cache/fwcfg-agent-dev"))


@dataclass(frozen=True)
class BaseImage:
    """The cached, agent-less image: a root tree plus the kernel and initrd built inside it."""

    path: Path

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def kernel(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.path / "initrd.img"

    def build_seconds(self) -> int:
        return int((self.path / "build-seconds").read_text().strip())

    @property
    def suite(self) -> str:
        """The Debian suite the image was built from (an image without the file: bookworm)."""
        f = self.path / "suite"
        return f.read_text().strip() if f.is_file() else DEFAULT_SUITE

    def package_versions(self) -> dict[str, str]:
        """Package -> version of everything in the tree (packages.txt, dpkg-query at build)."""
        out: dict[str, str] = {}
        for line in (self.path / "packages.txt").read_text().splitlines():
            name, _, version = line.partition(" ")
            if version:
                out[name] = version
        return out


DEFAULT_SUITE = "bookworm"
# The stack the agent depends on, as the support table reports it for each release.
STACK = ("python3", "python3-jinja2", "python3-pyudev", "python3-systemd", "systemd")


def build_base_image(
    extra_packages: tuple[str, ...] = (), suite: str = DEFAULT_SUITE
) -> BaseImage:
    """Runs tools/guest-image, which builds the image once and then answers from the cache.

    `extra_packages` (e.g. ("cloud-init",)) selects a variant image, `suite` the Debian release
    (bullseye, bookworm, trixie); each is cached by its own inputs."""
    argv = [str(REPO / "tools" / "guest-image"), "--suite", suite]
    for pkg in extra_packages:
        argv += ["--with", pkg]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"tools/guest-image failed ({proc.returncode}):\n{proc.stderr}")
    return BaseImage(Path(proc.stdout.strip().splitlines()[-1]))


def _symlink(link: Path, target: str) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def install_agent(repo: Path, root: Path, workdir: Path, suite: str = DEFAULT_SUITE) -> str:
    """Installs the agent from the checkout into the guest tree `root` of Debian `suite`; says
    how.

    The one place that knows how the agent gets into a guest. By default it builds the Debian
    package and installs it with the guest's own apt, which is what users get: on bookworm (the
    host's release) from the working tree (uncommitted changes included), for another suite
    with `make deb SUITE=<suite>` (a clean chroot of that suite, committed HEAD only; see
    suite_deb). FWCFG_GUEST_INSTALL=copy (or a bookworm image on a machine without
    dpkg-buildpackage) copies the sources the way the package lays them out instead.
    """
    mode = os.environ.get("FWCFG_GUEST_INSTALL", "auto")
    if mode not in ("auto", "deb", "copy"):
        raise ValueError(f"FWCFG_GUEST_INSTALL={mode!r}: auto, deb or copy")
    can_deb = (repo / "packaging/debian/control").is_file() and all(
        shutil.which(t) for t in ("dpkg-buildpackage", "dh", "dpkg")
    )
    if suite != DEFAULT_SUITE:
        if mode == "copy":
            raise ValueError(f"FWCFG_GUEST_INSTALL=copy: only for {DEFAULT_SUITE}, not {suite}")
        deb = suite_deb(repo, suite)
        apt_install(root, deb)
        return f"apt {deb.name}"
    if mode == "deb" or (mode == "auto" and can_deb):
        deb = build_deb(repo, workdir)
        apt_install(root, deb)
        return f"apt {deb.name}"
    install_from_checkout(repo, root)
    return "copy"


def suite_deb(repo: Path, suite: str) -> Path:
    """The agent's DEB for Debian `suite`: `make -s -C REPO deb SUITE=suite`, which builds it
    in a clean chroot of that suite and prints its path last. REPO is the checkout under test,
    or $FWCFG_DEB_REPO (a checkout whose packaging builds for other suites)."""
    source = Path(os.environ.get("FWCFG_DEB_REPO") or repo)
    proc = subprocess.run(
        ["make", "-s", "-C", str(source), "deb", f"SUITE={suite}"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    deb = source / lines[-1] if lines else source
    if proc.returncode != 0 or not deb.is_file() or deb.suffix != ".deb":
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise RuntimeError(f"make deb SUITE={suite} in {source} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{tail}")
    return deb


def apt_install(root: Path, deb: Path) -> None:
    """`apt-get install /tmp/the.deb` inside the tree (chroot), as a user installs it: apt checks
    the package's dependencies against the tree's own packages, all already there, and runs its
    maintainer scripts with the tree's dpkg."""
    inside = Path("/tmp") / deb.name
    shutil.copy2(deb, root / inside.relative_to("/"))
    try:
        proc = subprocess.run(
            # (not --no-download: apt then takes the local file for one to fetch from its
            # cache and stops, "Pathname to install is not absolute"; the tree has no package
            # lists, so nothing else could be fetched anyway)
            ["chroot", str(root), "apt-get", "install", "-y", "--no-install-recommends",
             "-o", "Dpkg::Use-Pty=0", "-o", "Dpkg::Options::=--force-unsafe-io", str(inside)],
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C",
                 "DEBIAN_FRONTEND": "noninteractive"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    finally:
        (root / inside.relative_to("/")).unlink()
    if proc.returncode != 0:
        raise RuntimeError(f"apt-get install {deb.name} in {root} failed:\n{proc.stdout}")
    for cache in (root / "var/cache/apt").glob("*.bin"):
        cache.unlink()


def build_deb(repo: Path, workdir: Path) -> Path:
    """dpkg-buildpackage on a copy of the working tree (tracked and new files, not ignored)."""
    src = workdir / "deb-build" / "fwcfg-agent"
    src.mkdir(parents=True)
    files = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-co", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for rel in filter(None, files):
        source = repo / os.fsdecode(rel)
        if source.is_file():
            (src / os.fsdecode(rel)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, src / os.fsdecode(rel))
    shutil.copytree(repo / "packaging/debian", src / "debian")
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C.UTF-8",
        "HOME": str(workdir),
    }
    proc = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b"],
        cwd=src,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    (workdir / "deb-build" / "build.log").write_text(proc.stdout)
    debs = sorted((workdir / "deb-build").glob("fwcfg-agent_*.deb"))
    if proc.returncode != 0 or not debs:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise RuntimeError(f"dpkg-buildpackage failed ({proc.returncode}):\n{tail}")
    return debs[0]


def install_from_checkout(repo: Path, root: Path) -> None:
    """Copies the checkout into the tree the way the Debian package lays it out."""
    site = root / "usr/lib/python3/dist-packages/fwcfg_agent"
    if site.exists():
        shutil.rmtree(site)
    shutil.copytree(
        repo / "fwcfg_agent", site, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    templates = sorted((repo / "templates").glob("*.j2")) if (repo / "templates").is_dir() else []
    if templates:
        (site / "templates").mkdir(exist_ok=True)
        for t in templates:
            shutil.copy2(t, site / "templates" / t.name)
        init = site / "templates" / "__init__.py"
        if not init.exists():
            init.write_text("")
    _build_extensions(repo, site, root)
    script = root / "usr/bin/fwcfg-agent"
    script.write_text((repo / "bin/fwcfg-agent").read_text())
    script.chmod(0o755)
    unit_dir = root / "usr/lib/systemd/system"
    shutil.copy2(repo / "units/fwcfg-agent.service", unit_dir / "fwcfg-agent.service")
    _symlink(
        root / "etc/systemd/system/sysinit.target.wants/fwcfg-agent.service",
        "/usr/lib/systemd/system/fwcfg-agent.service",
    )


def guest_python(root: Path) -> str:
    """The guest's Python version, "3.11" on Debian 12."""
    target = os.readlink(root / "usr/bin/python3")
    return target.rsplit("python", 1)[-1]


def _build_extensions(repo: Path, site: Path, root: Path) -> None:
    """Compiles the agent's C helpers (the raw reader's _portio) for the guest's Python.

    The host is the same Debian release as the guest, so the host's compiler and the guest
    Python's headers (python3-dev) give a module the guest can load. Without them the module is
    left out, as setup.py does: the agent then has no raw reader, and the raw-reader test says so.
    """
    version = guest_python(root)
    include = Path(f"/usr/include/python{version}")
    tag = f"cpython-{version.replace('.', '')}-x86_64-linux-gnu"
    for src in sorted((repo / "fwcfg_agent").rglob("*.c")):
        rel = src.relative_to(repo / "fwcfg_agent").with_suffix("")
        out = site / rel.parent / f"{rel.name}.{tag}.so"
        if not (include / "Python.h").exists() or shutil.which("gcc") is None:
            print(f"guest image: cannot build {rel} (no gcc or {include}/Python.h)")
            continue
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O2", "-Wall", f"-I{include}", str(src), "-o", str(out)],
            check=True,
        )
        (site / rel.parent / src.name).unlink(missing_ok=True)


def agent_available(repo: Path = REPO) -> bool:
    """True once the core agent (its CLI) is in the checkout."""
    return (repo / "fwcfg_agent" / "cli.py").is_file()


def install_test_hooks(root: Path) -> None:
    """The test-only parts of a guest: the result collector and what makes boots reproducible."""
    (root / "etc/machine-id").write_text(MACHINE_ID)
    system = root / "etc/systemd/system"
    _symlink(system / "default.target", "/usr/lib/systemd/system/multi-user.target")
    libexec = root / "usr/local/libexec"
    libexec.mkdir(parents=True, exist_ok=True)
    shutil.copy2(GUEST_FILES / "collect.sh", libexec / "fwcfg-test-collect")
    (libexec / "fwcfg-test-collect").chmod(0o755)
    unit = "fwcfg-test-collect.service"
    shutil.copy2(GUEST_FILES / unit, root / "etc/systemd/system" / unit)
    _symlink(system / "multi-user.target.wants" / unit, f"/etc/systemd/system/{unit}")
    # Nothing on a test guest waits for a login or a timer.
    for masked in (
        "getty@tty1.service",
        "serial-getty@ttyS0.service",
        "systemd-networkd-wait-online.service",
        "NetworkManager-wait-online.service",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
        "dpkg-db-backup.timer",
        "e2scrub_all.timer",
        "fstrim.timer",
    ):
        _symlink(root / "etc/systemd/system" / masked, "/dev/null")


# What each variant enables (systemctl --root on the host: same systemd version as the guest).
VARIANTS: dict[str, tuple[str, ...]] = {
    "networkd": ("systemd-networkd.service",),
    # netplan renders for networkd; Debian/Ubuntu images that use netplan run networkd.
    "netplan": ("systemd-networkd.service",),
    "ifupdown": ("networking.service",),
    "networkmanager": ("NetworkManager.service",),
    "none": (),
}

FORMATS: dict[str, str] = {
    "networkd": "hostname hosts networkd",
    "netplan": "hostname hosts netplan",
    "ifupdown": "hostname hosts ifupdown",
    "networkmanager": "hostname hosts nm",
    "none": "hostname hosts networkd",
}


def configure_variant(root: Path, variant: str, agent_conf: str | None) -> None:
    units = VARIANTS[variant]
    if units:
        subprocess.run(
            ["systemctl", f"--root={root}", "enable", *units],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    conf = agent_conf if agent_conf is not None else f'FORMATS="{FORMATS[variant]}"\n'
    (root / "etc/fwcfg-agent").mkdir(parents=True, exist_ok=True)
    (root / "etc/fwcfg-agent/agent.conf").write_text(conf)


def copy_tree(src: Path, dst: Path) -> None:
    """`cp -a` keeps owners, modes, links and device nodes, which shutil does not fully do."""
    subprocess.run(["cp", "-a", "--reflink=auto", f"{src}/.", str(dst)], check=True)


def make_ext4(tree: Path, image: Path, extra_mib: int = 256) -> None:
    """A raw ext4 image holding `tree`, filled with `mkfs.ext4 -d` (no mounts)."""
    size = subprocess.run(
        ["du", "-sm", "--apparent-size", str(tree)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout.split()[0]
    mib = int(size) * 13 // 10 + extra_mib
    image.unlink(missing_ok=True)
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-L", "fwcfgroot", "-d", str(tree), str(image), f"{mib}M"],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def overlay(base: Path, out: Path) -> None:
    """A qcow2 overlay: each test boots its own writable copy; the base stays untouched."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw", str(out)],
        check=True,
    )


def manifest(root: Path, subdirs: tuple[str, ...]) -> dict[str, str]:
    """Guest path -> sha256 of each file, '-> target' of each symlink, under root/subdirs (the
    host-side twin of the collector's etc-files.sha256 + etc-links.tsv)."""
    out: dict[str, str] = {}
    for sub in subdirs:
        top = root / sub
        if not top.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            for name in sorted(dirnames + filenames):
                p = Path(dirpath) / name
                guest = "/" + str(p.relative_to(root))
                if p.is_symlink():
                    out[guest] = "-> " + os.readlink(p)
                elif p.is_file():
                    out[guest] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out
