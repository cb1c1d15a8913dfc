"""After writing: what the running system needs so the new files take effect on this boot.

The agent runs before the network managers start, so they read its files. netplan is the
exception: its systemd generator turned /etc/netplan into /run/systemd/network before any unit
ran, so a changed netplan file must be generated again now, before networkd starts.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from .formats import SPECS
from .log import Log

NETPLAN_TIMEOUT = 20.0
# netplan's generator itself: `netplan generate` (a Python program) only runs it, and its start-up
# costs many times the generator's work (seconds in a slow guest).
GENERATORS = ("/usr/lib/netplan/generate", "/lib/netplan/generate",
              "/usr/libexec/netplan/generate")


def _generator() -> list[str] | None:
    for path in GENERATORS:
        if os.access(path, os.X_OK):
            return [path]
    import shutil

    tool = shutil.which("netplan", path="/usr/sbin:/usr/bin:/sbin:/bin")
    return [tool, "generate"] if tool else None


def netplan_generate(root: Path, log: Log) -> bool:
    argv = _generator()
    if argv is None:
        log.warning("netplan files changed but the netplan command is missing: they take "
                    "effect at the next boot")
        return False
    if root != Path("/"):
        argv += ["--root-dir", str(root)]
    import subprocess  # only here: a boot that changed no netplan file does not load it

    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=NETPLAN_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        log.warning(f"netplan generate: {e}")
        return False
    if done.returncode != 0:
        log.warning(f"netplan generate failed ({done.returncode}): {done.stderr.strip()}")
        return False
    log.info("netplan generate: networkd configuration regenerated for this boot")
    return True


ACTIVATIONS = {"netplan-generate": netplan_generate}


def after_write(root: Path, changed_formats: Iterable[str], log: Log) -> None:
    """Each changed format's activation (formats.SPECS), once."""
    done = set()
    for name in changed_formats:
        spec = next((s for f, s in SPECS.items() if f.value == name), None)
        if spec is not None and spec.activation and spec.activation not in done:
            done.add(spec.activation)
            ACTIVATIONS[spec.activation](root, log)
