"""The device model itself follows QEMU's and Cloud Hypervisor's rules (the reader's tests rely
on it being faithful)."""

from __future__ import annotations

import struct

import pytest

from .fwcfg_model import (
    DATA,
    SELECTOR,
    Access,
    FwCfgModel,
    ModelViolation,
    dir_record,
    encode_directory,
    rd,
    sel,
)

USER = {"opt/org.example/net": b"addr=10.0.0.2\n", "opt/org.example/host": b"web1\n"}


def test_two_byte_write_selects_and_resets_offset() -> None:
    m = FwCfgModel("qemu")
    m.select(0)
    assert m.read(2) == b"QE"
    m.select(0)  # selecting again starts over
    assert m.read(4) == b"QEMU"
    assert m.log == [sel(0), rd(2), sel(0), rd(4)]


def test_one_byte_writes_are_ignored_by_qemu() -> None:
    m = FwCfgModel("qemu", strict=False)
    m.select(0)
    assert m.read(1) == b"Q"
    m.outb(SELECTOR, 0x01)  # not a select: the signature read goes on
    m.outb(DATA, 0x01)
    assert m.read(1) == b"E"
    assert m.log[1:4] == [rd(1), Access("out", SELECTOR, 1, 1), Access("out", DATA, 1, 1)]


def test_strict_mode_fails_a_one_byte_select() -> None:
    m = FwCfgModel("qemu")
    with pytest.raises(ModelViolation, match="only a 16-bit write selects"):
        m.outb(SELECTOR, 0x19)


def test_read_past_end_gives_zeros_without_advancing() -> None:
    m = FwCfgModel("qemu", strict=False)
    m.select(0)
    assert m.read(6) == b"QEMU\0\0"
    assert m.offset == 4
    assert m.read(2) == b"\0\0"


def test_strict_mode_fails_read_past_end() -> None:
    m = FwCfgModel("qemu")
    m.select(0)
    m.read(4)
    with pytest.raises(ModelViolation, match="past the end of key 0x0"):
        m.read(1)


def test_feature_bitmap_little_endian_by_profile() -> None:
    for profile, value in (("qemu", 3), ("qemu-nodma", 1), ("cloud-hypervisor", 3)):
        m = FwCfgModel(profile)
        m.select(1)
        assert struct.unpack("<I", m.read(4)) == (value,)


def test_legacy_numeric_items_little_endian() -> None:
    m = FwCfgModel("qemu")
    m.select(0x03)
    assert struct.unpack("<Q", m.read(8)) == (128 << 20,)
    m.select(0x05)
    assert m.read(2) == b"\x01\x00"


def test_qemu_directory_big_endian_sorted_sized_for_all_slots() -> None:
    m = FwCfgModel("qemu", USER)
    d = m.items[0x19]
    assert len(d) == 4 + 64 * 32
    (count,) = struct.unpack(">I", d[:4])
    assert count == 11 + 2
    names = []
    for i in range(count):
        size, key, _res, raw = struct.unpack_from(">IHH56s", d, 4 + 64 * i)
        name = raw.split(b"\0")[0].decode()
        names.append(name)
        assert key == 0x20 + i  # keys reassigned in name order
        assert size == len(m.items[key])
    assert names == sorted(names)
    assert d[4 + 64 * count :] == bytes(64 * (32 - count))  # unused slots zeroed
    assert m.items[m.key_of("opt/org.example/net")] == USER["opt/org.example/net"]


def test_qemu_invalid_keys_read_zeros() -> None:
    m = FwCfgModel("qemu", strict=False)
    m.select(0x20 + 32)  # beyond the last slot
    assert m.read(3) == b"\0\0\0"
    m.select(0x10)  # in range, no item
    assert m.read(2) == b"\0\0"
    with pytest.raises(ModelViolation, match="beyond the last slot"):
        FwCfgModel("qemu").select(0x3FFF)
    with pytest.raises(ModelViolation, match="holds no item"):
        FwCfgModel("qemu").select(0x10)


def test_qemu_refuses_too_many_files_and_duplicates() -> None:
    with pytest.raises(ValueError, match="slots"):
        FwCfgModel("qemu", {f"opt/f{i}": b"x" for i in range(30)})
    with pytest.raises(ValueError, match="duplicate"):
        FwCfgModel("qemu", [("opt/a", b"1"), ("opt/a", b"2")])


def test_cloud_hypervisor_signature_directory_and_crash() -> None:
    files = [("opt/z", b"zz"), ("opt/a", b"a")]
    m = FwCfgModel("cloud-hypervisor", files)
    m.select(0)
    assert m.read(8) == b"QEMU CFG"
    assert m.items[0x19] == encode_directory(
        [
            dir_record("etc/e820", 0x20, 40),
            dir_record("opt/z", 0x21, 2),
            dir_record("opt/a", 0x22, 1),
        ]
    )
    m.select(0x21)
    assert m.read(2) == b"zz"
    with pytest.raises(ModelViolation, match="Cloud Hypervisor panics"):
        m.read(1)
    with pytest.raises(ModelViolation, match="crashed"):
        m.select(0)


def test_cloud_hypervisor_crashes_even_when_not_strict() -> None:
    m = FwCfgModel("cloud-hypervisor", strict=False)
    m.select(0)
    with pytest.raises(ModelViolation, match="panics"):
        m.read(9)
    m = FwCfgModel("cloud-hypervisor", strict=False)
    m.select(0x08)  # a known item it never set: empty
    with pytest.raises(ModelViolation, match="panics"):
        m.read(1)


def test_absent_device_reads_ones_and_ignores_selects() -> None:
    m = FwCfgModel("absent")
    m.select(0)
    assert m.read(4) == b"\xff" * 4
    assert m.inw(DATA) == 0xFFFF
    assert m.log == [sel(0), rd(4), Access("in", DATA, 2)]


def test_dma_registers_and_foreign_ports_fail() -> None:
    with pytest.raises(ModelViolation, match="DMA is not modelled"):
        FwCfgModel("qemu").outl(0x518, 0)
    with pytest.raises(ModelViolation, match="without DMA"):
        FwCfgModel("qemu-nodma").inl(0x514)
    with pytest.raises(ModelViolation, match="unimplemented"):
        FwCfgModel("cloud-hypervisor", strict=False).outl(0x518, 0)
    with pytest.raises(ModelViolation, match="not fw_cfg's"):
        FwCfgModel("qemu").inb(0x80)


def test_wide_reads_of_data_port_rejected_by_qemu() -> None:
    m = FwCfgModel("qemu")
    m.select(0)
    with pytest.raises(ModelViolation, match="2-byte read"):
        m.inw(DATA)


def test_access_after_close_fails() -> None:
    m = FwCfgModel("qemu")
    m.close()
    with pytest.raises(ModelViolation, match="after close"):
        m.select(0)


def test_reads_coalesce_in_the_log() -> None:
    m = FwCfgModel("qemu")
    m.select(0)
    for _ in range(4):
        m.inb(DATA)
    assert m.log == [sel(0), rd(4)]
    assert m.selects() == [0]
    assert m.bytes_read() == 4
