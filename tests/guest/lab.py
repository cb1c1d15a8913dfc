"""The session's guest lab: one base image, the agent installed once into a copy of its tree, one
disk per network-manager variant, qcow2 overlays per test, and a record of every boot."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import image
from .results import BootResult
from .vm import Boot, FwCfg, Nic, OemString, run_boot

MAC0 = "52:54:00:fc:00:01"

# Extra files for a disk: (guest path, content, mode), hashable so disks are cached by them.
Files = tuple[tuple[str, bytes, int], ...]


@dataclass
class BootRecord:
    name: str
    wall_seconds: float
    userspace: str  # `systemd-analyze time`, first line
    blame: str  # the fwcfg-agent.service line of `systemd-analyze blame`
    agent_run_ms: float | None  # ExecMainExit - ExecMainStart of fwcfg-agent.service


@dataclass
class Lab:
    base: image.BaseImage
    workdir: Path
    with_agent: bool
    setup_seconds: dict[str, float] = field(default_factory=dict)
    records: list[BootRecord] = field(default_factory=list)
    # Figures a test measured (raw vs sysfs, cloud-init vs the agent): name -> JSON-able value,
    # written into the report and printed in the run's summary.
    measurements: dict[str, Any] = field(default_factory=dict)
    _tree: Path | None = None
    _variant_disks: dict[tuple[str, str | None, Files], Path] = field(default_factory=dict)
    _variant_trees: dict[Path, Path] = field(default_factory=dict)
    _disk_trees: dict[Path, Path] = field(default_factory=dict)
    _counter: int = 0

    @property
    def lock(self) -> Path:
        """The directory of QEMU's slot locks (vm.qemu_slot): shared by every guest test on
        this machine."""
        return image.cache_dir() / "qemu-slots"

    def tree(self) -> Path:
        """The base tree with the agent (if in the checkout) and the test hooks installed."""
        if self._tree is None:
            t0 = time.monotonic()
            tree = self.workdir / "tree"
            tree.mkdir()
            image.copy_tree(self.base.root, tree)
            how = "no agent"
            if self.with_agent:
                how = image.install_agent(image.REPO, tree, self.workdir, self.base.suite)
            image.install_test_hooks(tree)
            self._tree = tree
            self.setup_seconds[f"copy tree + install agent ({how})"] = time.monotonic() - t0
        return self._tree

    def variant_disk(self, variant: str, agent_conf: str | None = None, files: Files = ()) -> Path:
        """A raw ext4 disk for one variant (built once per session, never booted directly).
        `files`: (guest path, content, mode) written into the disk's tree on top."""
        key = (variant, agent_conf, files)
        if key not in self._variant_disks:
            t0 = time.monotonic()
            n = len(self._variant_disks)
            vtree = self.workdir / f"tree-{variant}-{n}"
            vtree.mkdir()
            image.copy_tree(self.tree(), vtree)
            image.configure_variant(vtree, variant, agent_conf)
            for path, content, mode in files:
                target = vtree / path.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
                target.chmod(mode)
            disk = self.workdir / f"disk-{variant}-{n}.raw"
            image.make_ext4(vtree, disk)
            self._variant_disks[key] = disk
            self._variant_trees[disk] = vtree
            self.setup_seconds[f"disk {variant}-{n}"] = time.monotonic() - t0
        return self._variant_disks[key]

    def original_etc(self, disk: Path) -> dict[str, str]:
        """/etc (and the agent's state) of a disk before its first boot, as BootResult.etc()."""
        return image.manifest(self._disk_trees[disk], ("etc", "var/lib/fwcfg-agent"))

    def new_disk(
        self, variant: str = "networkd", agent_conf: str | None = None, files: Files = ()
    ) -> Path:
        """A fresh writable disk (qcow2 overlay) that can be booted several times."""
        self._counter += 1
        out = self.workdir / f"overlay-{self._counter}-{variant}.qcow2"
        base = self.variant_disk(variant, agent_conf, files)
        image.overlay(base, out)
        self._disk_trees[out] = self._variant_trees[base]
        return out

    def boot(
        self,
        name: str,
        disk: Path,
        fw_cfg: Sequence[FwCfg] = (),
        nics: Sequence[Nic] = (Nic(MAC0, 3),),
        cmdline: Sequence[str] = (),
        pre: str | None = None,
        smbios: Sequence[OemString] = (),
    ) -> BootResult:
        result = run_boot(
            Boot(
                name=name,
                disk=disk,
                kernel=self.base.kernel,
                initrd=self.base.initrd,
                workdir=self.workdir / "boots",
                fw_cfg=fw_cfg,
                smbios=smbios,
                nics=nics,
                cmdline=cmdline,
                pre=pre,
            ),
            self.lock,
        )
        start = result.monotonic("fwcfg-agent.service", "ExecMainStartTimestampMonotonic")
        end = result.monotonic("fwcfg-agent.service", "ExecMainExitTimestampMonotonic")
        self.records.append(
            BootRecord(
                name=name,
                wall_seconds=round(result.wall_seconds, 1),
                userspace=(result.text("analyze-time.txt").splitlines() or [""])[0],
                blame=result.blame(),
                agent_run_ms=round((end - start) / 1000, 1) if start and end >= start else None,
            )
        )
        return result

    def report(self) -> dict[str, Any]:
        return {
            "image": str(self.base.path),
            "image_build_seconds": self.base.build_seconds(),
            "setup_seconds": {k: round(v, 1) for k, v in self.setup_seconds.items()},
            "boots": [r.__dict__ for r in self.records],
            "measurements": self.measurements,
        }

    def write_report(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(), indent=2) + "\n")
