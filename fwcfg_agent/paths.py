"""The root as the fw_cfg sources see it (`--root`, default `/`). Everything else resolves
paths under the root with rootfs.chase()."""

from __future__ import annotations

import os

from .tuples import NamedTuple


class Root(NamedTuple):
    path: str

    @property
    def is_host(self) -> bool:
        """True when the agent works on the running system, so it may touch the kernel."""
        return os.path.realpath(self.path) == "/"

    def __truediv__(self, rel: str) -> str:
        return os.path.join(self.path, rel.lstrip("/"))

    @property
    def fwcfg_sysfs(self) -> str:
        return self / "sys/firmware/qemu_fw_cfg"
