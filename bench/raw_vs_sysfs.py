"""Reads one fw_cfg entry through the kernel's sysfs tree and through the raw reader, in the same
guest, and reports both times and their ratio.

Run inside a QEMU guest as root, with the qemu_fw_cfg module loaded (the raw reader takes the
device from the driver for its read and gives it back):

    python3 bench/raw_vs_sysfs.py opt/org.example/big [--repeat 3] [--json]

Exit status: 0, 2 if the two readers disagree, 3 if the figures are fine but the kernel's driver
could not be given the device back afterwards (release_error; Linux 6.1's qemu_fw_cfg refuses a
rebind after an unbind with EBUSY because its remove() leaves fw_cfg_sel_ko set).

The sysfs read is quadratic in the entry's size (the driver re-selects and skips on every page),
the raw read linear (one select, one `rep insb` run), so the ratio grows with the size.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from fwcfg_agent.errors import AgentError, SourceError
from fwcfg_agent.rootfs import Reader
from fwcfg_agent.sources.raw import PortOpener, SysfsWriter, open_raw_source
from fwcfg_agent.sources.sysfs import SysfsSource

SYSFS_TREE = "sys/firmware/qemu_fw_cfg"


@dataclass
class Result:
    name: str
    size: int
    sysfs_seconds: float  # best of `repeat` reads
    raw_seconds: float  # best of `repeat` reads (the device already open)
    raw_open_seconds: float  # unbind, signature, directory (once)
    sha256_sysfs: str
    sha256_raw: str
    ratio: float  # sysfs_seconds / raw_seconds
    # what went wrong giving the device back to the kernel's driver after the reads (None: fine);
    # the figures are still valid then, but the guest has lost its sysfs tree
    release_error: Optional[str] = None

    @property
    def same(self) -> bool:
        return self.sha256_sysfs == self.sha256_raw


def run(
    root: Path,
    name: str,
    *,
    repeat: int = 1,
    port_opener: Optional[PortOpener] = None,
    sysfs_write: Optional[SysfsWriter] = None,
    machine: Optional[str] = None,
) -> Result:
    sysfs = SysfsSource(Reader(str(root)))
    by_name = {e.name: e for e in sysfs.entries()}
    if name not in by_name:
        raise SourceError(f"{name}: not in {root / SYSFS_TREE} (is qemu_fw_cfg loaded?)")
    entry = by_name[name]
    sysfs_times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        sysfs_data = sysfs.read(entry)
        sysfs_times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    src = open_raw_source(
        root,
        max_entry_size=max(entry.size, 1),
        port_opener=port_opener,
        sysfs_write=sysfs_write,
        machine=machine,
    )
    raw_open = time.perf_counter() - t0
    raw_times: list[float] = []
    raw_data = b""
    release_error: Optional[str] = None
    try:
        with src:
            raw_entry = {e.name: e for e in src.entries()}.get(name)
            if raw_entry is None:
                raise SourceError(f"{name}: in sysfs but not in the device's directory")
            for _ in range(repeat):
                t0 = time.perf_counter()
                raw_data = src.read(raw_entry)
                raw_times.append(time.perf_counter() - t0)
    except AgentError as e:
        if len(raw_times) < repeat:
            raise
        release_error = str(e)  # the reads are done: only the rebind failed
    best_sysfs, best_raw = min(sysfs_times), min(raw_times)
    return Result(
        name=name,
        size=entry.size,
        sysfs_seconds=best_sysfs,
        raw_seconds=best_raw,
        raw_open_seconds=raw_open,
        sha256_sysfs=hashlib.sha256(sysfs_data).hexdigest(),
        sha256_raw=hashlib.sha256(raw_data).hexdigest(),
        ratio=best_sysfs / best_raw if best_raw > 0 else float("inf"),
        release_error=release_error,
    )


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("name", help="the fw_cfg entry to read, e.g. opt/org.example/big")
    p.add_argument("--root", type=Path, default=Path("/"))
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = p.parse_args(argv)
    try:
        r = run(args.root, args.name, repeat=max(1, args.repeat))
    except AgentError as e:
        print(f"raw_vs_sysfs: {e}", file=sys.stderr)
        return 1
    out: dict[str, Any] = {**asdict(r), "same": r.same}
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"{r.name}: {r.size} bytes; sysfs {r.sysfs_seconds:.3f} s, raw {r.raw_seconds:.4f} s "
            f"(+{r.raw_open_seconds:.4f} s to open): raw is {r.ratio:.1f}x faster; "
            f"sha256 {'equal' if r.same else 'DIFFERENT'}"
        )
    if r.release_error:
        print(f"raw_vs_sysfs: after the reads: {r.release_error}", file=sys.stderr)
    return 2 if not r.same else 3 if r.release_error else 0


if __name__ == "__main__":
    sys.exit(main())
