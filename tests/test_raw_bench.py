"""bench/raw_vs_sysfs.py against a fake guest root and the device model (the real figure comes
from a guest)."""

from __future__ import annotations

from pathlib import Path

from bench.raw_vs_sysfs import run
from tests.fakeroot import write_fwcfg_tree

from .fwcfg_model import FakeKernel, FwCfgModel, filler


def test_bench_reads_the_same_bytes_both_ways(tmp_path: Path) -> None:
    big = filler("big", 1 << 20)
    write_fwcfg_tree(tmp_path, {"opt/org.example/big": big})
    kernel = FakeKernel(tmp_path, driver_bound=True)  # sysfs is there: the driver holds it
    model = FwCfgModel("qemu", {"opt/org.example/big": big})
    r = run(
        tmp_path,
        "opt/org.example/big",
        repeat=2,
        port_opener=lambda: model,
        sysfs_write=kernel.write,
        machine="x86_64",
    )
    assert r.same and r.size == 1 << 20
    assert r.sysfs_seconds > 0 and r.raw_seconds > 0
    assert kernel.events == [("unbind", "QEMU0002:00"), ("bind", "QEMU0002:00")]
    key = model.key_of("opt/org.example/big")
    assert model.selects().count(key) == 2  # one select per read
