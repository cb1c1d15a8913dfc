"""`host preview`: the files each kind of guest would get, from the guest's own dry run.

A temporary root is made to look like a freshly booted guest of that kind (as the tests make
theirs): the ACPI fw_cfg device, the fw_cfg sysfs tree holding the entries, one NIC per MAC,
os-release, and the marker files and enabled units the agent's detection looks at
(facts.MANAGER_MARKERS, facts.MANAGER_UNITS). Then `apply --dry-run` runs on it: the same
pipeline, detection and templates as at boot, nothing written outside the temporary root.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Sequence
from contextlib import redirect_stdout
from pathlib import Path
from typing import Optional

from ..device import ACPI_DEVICES, ACPI_HID, FWCFG_SYSFS
from ..facts import MANAGER_MARKERS, MANAGER_UNITS
from ..log import Log
from ..tuples import NamedTuple
from .check import HostEntry

FIRST_FILE_KEY = 0x20
DEFAULT_MAC = "52:54:00:12:34:56"


class Distro(NamedTuple):
    os_release: tuple[tuple[str, str], ...]
    installed: tuple[str, ...]  # keys of MANAGER_MARKERS
    enabled: tuple[str, ...]  # keys of MANAGER_UNITS
    what: str


DISTROS: dict[str, Distro] = {
    "debian12": Distro((("ID", "debian"), ("VERSION_ID", "12")), ("ifupdown", "networkd"),
                       ("ifupdown",), "Debian 12: ifupdown (networking.service)"),
    "ubuntu": Distro((("ID", "ubuntu"), ("ID_LIKE", "debian"), ("VERSION_ID", "24.04")),
                     ("netplan", "networkd", "cloud-init"), ("networkd",),
                     "Ubuntu cloud image: netplan on systemd-networkd, cloud-init installed"),
    "el8": Distro((("ID", "rhel"), ("ID_LIKE", "fedora"), ("VERSION_ID", "8.10")),
                  ("nm", "ifcfg"), ("nm",), "RHEL 8 and rebuilds: ifcfg files"),
    "el9": Distro((("ID", "rhel"), ("ID_LIKE", "fedora"), ("VERSION_ID", "9.4")),
                  ("nm",), ("nm",), "RHEL 9 and rebuilds: NetworkManager keyfiles"),
    "fedora": Distro((("ID", "fedora"), ("VERSION_ID", "41")), ("nm", "networkd"), ("nm",),
                     "Fedora: NetworkManager keyfiles"),
    "networkd": Distro((("ID", "arch"),), ("networkd",), ("networkd",),
                       "any systemd-networkd guest"),
}


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def make_root(root: Path, distro: Distro, entries: Sequence[HostEntry],
              macs: Sequence[str]) -> None:
    """A guest-like root: what the agent reads at boot, and nothing else."""
    (root / ACPI_DEVICES / f"{ACPI_HID}:00").mkdir(parents=True)
    tree = root / FWCFG_SYSFS
    _write(tree / "rev", b"3\n")
    for i, e in enumerate(sorted(entries, key=lambda e: e.name)):
        d = tree / "by_key" / str(FIRST_FILE_KEY + i)
        data = e.data or b""
        _write(d / "key", f"{FIRST_FILE_KEY + i}\n".encode())
        _write(d / "name", f"{e.name}\n".encode())
        _write(d / "size", f"{len(data)}\n".encode())
        _write(d / "raw", data)
    for i, mac in enumerate(macs):
        d = root / "sys/class/net" / f"enp{i + 1}s0"
        _write(d / "address", f"{mac}\n".encode())
        _write(d / "type", b"1\n")
        _write(d / "ifindex", f"{i + 2}\n".encode())
        (d / "device").mkdir()
    _write(root / "etc/os-release",
           "".join(f'{k}="{v}"\n' for k, v in distro.os_release).encode())
    _write(root / "etc/hosts", b"127.0.0.1\tlocalhost\n")
    for manager in distro.installed:
        _write(root / MANAGER_MARKERS[manager][0], b"")
    for manager in distro.enabled:
        _write(root / "etc/systemd/system/multi-user.target.wants" / MANAGER_UNITS[manager], b"")


def dry_run(distro: Distro, entries: Sequence[HostEntry], macs: Sequence[str],
            agent_conf: Optional[Path] = None) -> tuple[int, str]:
    """The guest's `apply --dry-run` on a root of that kind: exit code and output. AGENT_CONF
    (the guest's agent.conf) goes where the guest has it, etc/fwcfg-agent/agent.conf, so that
    its INCLUDE, EXCLUDE, FORMATS, ... decide as they will at boot."""
    from ..commands import CONFIG, Options, cmd_apply
    from ..errors import AgentError, ConfigError

    conf = None
    if agent_conf is not None:
        try:
            conf = agent_conf.read_bytes()
        except OSError as e:
            raise ConfigError(f"{agent_conf}: {e.strerror}") from None
    with tempfile.TemporaryDirectory(prefix="fwcfg-agent-preview-") as tmp:
        root = Path(tmp) / "root"
        make_root(root, distro, entries, macs or (DEFAULT_MAC,))
        if conf is not None:
            _write(root / CONFIG, conf)
        log = Log(quiet=True, use_journal=False)
        out = io.StringIO()
        opts = Options(root=os.path.realpath(root), config_file=None, source="sysfs",
                       formats=None, dry_run=True, log=log)
        try:
            with redirect_stdout(out):
                code = cmd_apply(opts)
        except AgentError as e:
            log.error(str(e))
            code = e.exit_code
        finally:
            log.close()
    return code, out.getvalue()
