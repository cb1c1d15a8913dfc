"""Every path the agent reads or writes, under one root (`--root`, default `/`)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class Root(NamedTuple):
    path: Path

    @property
    def is_host(self) -> bool:
        """True when the agent works on the running system, so it may touch the kernel."""
        return self.path.resolve() == Path("/")

    def __truediv__(self, rel: str) -> Path:
        return self.path / rel.lstrip("/")

    @property
    def fwcfg_sysfs(self) -> Path:
        return self / "sys/firmware/qemu_fw_cfg"

    @property
    def class_net(self) -> Path:
        return self / "sys/class/net"

    @property
    def config_file(self) -> Path:
        return self / "etc/fwcfg-agent/agent.conf"

    @property
    def template_dir(self) -> Path:
        return self / "etc/fwcfg-agent/templates"

    @property
    def state_dir(self) -> Path:
        return self / "var/lib/fwcfg-agent"

    @property
    def template_cache(self) -> Path:
        return self / "var/cache/fwcfg-agent/templates"

    @property
    def lock_file(self) -> Path:
        return self / "run/fwcfg-agent.lock"

    def guest_path(self, path: Path) -> str:
        """The path as the guest sees it (`/etc/hostname`), for logs and the journal."""
        return "/" + str(path.relative_to(self.path))
