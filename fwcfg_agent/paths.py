"""The root as the fw_cfg sources see it (`--root`, default `/`). Everything else resolves
paths under the root with rootfs.chase()."""

from __future__ import annotations

from pathlib import Path

from .tuples import NamedTuple


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
