"""After writing: what the running system needs so the new files take effect on this boot.

The agent runs before the network managers start, so they read its files. netplan is the
exception: its systemd generator turned /etc/netplan into /run/systemd/network before any unit
ran, so a changed netplan file must be generated again now, before networkd starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from .formats import SPECS
from .log import Log

NETPLAN_TIMEOUT = 20.0
# netplan's generator itself: `netplan generate` (a Python program) only runs it, and its start-up
# costs many times the generator's work (seconds in a slow guest).
GENERATORS = ("/usr/lib/netplan/generate", "/lib/netplan/generate",
              "/usr/libexec/netplan/generate")
# ... and where systemd runs it from at boot. Started under one of these names it works as the
# systemd generator it is (the only way netplan 1.x's binary runs at all): it writes networkd's
# files for /etc/netplan, and its unit links into the directories it is given.
SYSTEMD_GENERATORS = ("/usr/lib/systemd/system-generators/netplan",
                      "/lib/systemd/system-generators/netplan")
# The generator asks udevd to reload its rules (`udevadm control --reload`) and waits for the
# answer. In early boot udevd answers only once it has worked through the coldplug's events:
# in a slow guest the generator then took 8 s, and over 20 s on a loaded host. udevd reloads
# changed rules and .link files by itself (it checks their directories as it handles events), so
# the generator runs where the control socket does not answer and the question fails at once.
UDEV_CONTROL = "/run/udev/control"
CLONE_NEWNS, MS_BIND, MS_REC, MS_PRIVATE = 0x00020000, 4096, 16384, 1 << 18


def _first_executable(paths: Iterable[str]) -> str | None:
    return next((p for p in paths if os.access(p, os.X_OK)), None)


def _generator() -> list[str] | None:
    found = _first_executable(GENERATORS)
    if found is not None:
        return [found]
    import shutil

    tool = shutil.which("netplan", path="/usr/sbin:/usr/bin:/sbin:/bin")
    return [tool, "generate"] if tool else None


def shadow(paths: Iterable[str]) -> bool:
    """In this process (a child about to exec): a mount namespace of its own, in which each of
    `paths` that exists is /dev/null, so that connecting to it fails at once. The rest of the
    file system is shared as it is. False when the kernel refused (then nothing changed)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False  # (a namespace of our own that still shares everything: harmless)
    for path in paths:
        if os.path.exists(path):
            libc.mount(b"/dev/null", os.fsencode(path), None, MS_BIND, None)
    return True


def _without_udev_round_trip() -> None:
    import contextlib

    with contextlib.suppress(Exception):  # the generator then only waits, as it always did
        shadow([UDEV_CONTROL])


def netplan_generate(root: str | os.PathLike[str], log: Log) -> bool:
    import subprocess  # only here: a boot that changed no netplan file does not load it

    root = os.fspath(root)
    generator = _first_executable(SYSTEMD_GENERATORS) if root == "/" else None
    scratch = None
    if generator is not None:
        import tempfile

        # its unit links go to a scratch directory: systemd reads its own only at a reload
        scratch = tempfile.mkdtemp(prefix="fwcfg-agent-netplan-")
        argv = [generator, scratch, scratch, scratch]
        preexec = _without_udev_round_trip
    else:
        found = _generator()
        if found is None:
            log.warning("netplan files changed but the netplan command is missing: they take "
                        "effect at the next boot")
            return False
        argv = found if root == "/" else [*found, "--root-dir", root]
        preexec = None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=NETPLAN_TIMEOUT,
                              preexec_fn=preexec)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning(f"netplan generate: {e}")
        return False
    finally:
        if scratch is not None:
            import shutil

            shutil.rmtree(scratch, ignore_errors=True)
    if done.returncode != 0:
        log.warning(f"netplan generate failed ({done.returncode}): {done.stderr.strip()}")
        return False
    log.info("netplan generate: networkd configuration regenerated for this boot")
    return True


ACTIVATIONS = {"netplan-generate": netplan_generate}


def after_write(root: str | os.PathLike[str], changed_formats: Iterable[str], log: Log) -> None:
    """Each changed format's activation (formats.SPECS), once."""
    done = set()
    for name in changed_formats:
        spec = next((s for f, s in SPECS.items() if f.value == name), None)
        if spec is not None and spec.activation and spec.activation not in done:
            done.add(spec.activation)
            ACTIVATIONS[spec.activation](root, log)
