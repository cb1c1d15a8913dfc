"""The raw reader's protocol logic against the device model: every trap of the fw_cfg reference."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwcfg_agent.errors import NoDeviceError, SourceError
from fwcfg_agent.sources.base import EntryInfo
from fwcfg_agent.sources.protocol import probe, read_directory, read_item
from fwcfg_agent.sources.raw import RawSource
from tests.fakeroot import QEMU_Q35_ITEMS

from .fwcfg_model import (
    FwCfgModel,
    ModelViolation,
    dir_record,
    encode_directory,
    filler,
    rd,
    sel,
)

MIB = 1 << 20
USER = {
    "opt/org.example/net": b"address=10.0.0.2/24\ngateway=10.0.0.1\n",
    "opt/org.example/net/eth0": b"mac=52:54:00:12:34:56\n",  # beside a name that is its prefix
    "opt/io.systemd.credentials/system.hostname": b"web1",
}


def source(model: FwCfgModel, max_entry_size: int = 4 * MIB) -> RawSource:
    return RawSource(model, max_entry_size=max_entry_size)


# --- the happy paths, per profile ---------------------------------------------------------------


@pytest.mark.parametrize("profile", ["qemu", "qemu-nodma", "cloud-hypervisor"])
def test_entries_and_reads_match_the_device(profile: str) -> None:
    model = FwCfgModel(profile, USER)
    with source(model) as src:
        entries = src.entries()
        assert [(e.name, e.key, e.size) for e in entries] == model.directory
        for e in entries:
            assert src.read(e) == model.items[e.key]
        for name, data in USER.items():
            (e,) = [x for x in entries if x.name == name]
            assert src.read(e) == data
    assert model.closed


def test_qemu_directory_order_and_features() -> None:
    model = FwCfgModel("qemu", USER)
    src = source(model)
    names = [e.name for e in src.entries()]
    assert names == sorted([n for n, _ in QEMU_Q35_ITEMS] + list(USER))
    assert src.features == 3 and src.dma
    assert not source(FwCfgModel("qemu-nodma")).dma


def test_cloud_hypervisor_keeps_insertion_order() -> None:
    files = [("opt/z", b"1"), ("opt/a", b"22"), ("opt/m", b"333")]
    src = source(FwCfgModel("cloud-hypervisor", files))
    assert [e.name for e in src.entries()] == ["etc/e820", "opt/z", "opt/a", "opt/m"]


def test_open_sequence_is_exact() -> None:
    """Signature (4 bytes), features (4 bytes), directory (count + count records): nothing else."""
    model = FwCfgModel("qemu", USER)
    source(model)
    n = len(QEMU_Q35_ITEMS) + len(USER)
    assert model.log == [sel(0), rd(4), sel(1), rd(4), sel(0x19), rd(4 + 64 * n)]


def test_cloud_hypervisor_reads_exactly_each_size() -> None:
    """The CH model raises on any byte past an item's end; reading every entry must not."""
    files = [(f"opt/f{i}", filler(str(i), i)) for i in range(0, 9)]
    model = FwCfgModel("cloud-hypervisor", files)
    src = source(model)
    for e in src.entries():
        before = len(model.log)
        assert src.read(e) == model.items[e.key]
        expected = [sel(e.key), rd(e.size)] if e.size else []  # an empty item is never touched
        assert model.log[before:] == expected
    # the signature item is 8 bytes on CH: the reader read 4, within it
    assert model.log[:2] == [sel(0), rd(4)]


def test_read_is_linear_one_select_one_sequential_run() -> None:
    big = filler("big", 3 * MIB + 17)
    model = FwCfgModel("qemu", {"opt/big": big})
    src = source(model, max_entry_size=4 * MIB)
    (e,) = [x for x in src.entries() if x.name == "opt/big"]
    before = len(model.log)
    assert src.read(e) == big
    assert model.log[before:] == [sel(e.key), rd(len(big))]


def test_read_item_chunks_do_not_reselect() -> None:
    model = FwCfgModel("qemu", {"opt/x": filler("x", 1000)})
    key = model.key_of("opt/x")
    calls: list[int] = []
    real_read = model.read

    def spy(n: int) -> bytes:
        calls.append(n)
        return real_read(n)

    model.read = spy  # type: ignore[method-assign]
    assert read_item(model, key, 1000, chunk=300) == model.items[key]
    assert calls == [300, 300, 300, 100]
    assert model.selects() == [key]


# --- signature and features ---------------------------------------------------------------------


def test_absent_device_one_select_four_reads_then_stop() -> None:
    model = FwCfgModel("absent")
    with pytest.raises(NoDeviceError, match="all 0xff"):
        source(model)
    assert model.log == [sel(0), rd(4)]
    assert model.closed  # released on failure too


def test_wrong_signature_stops_after_four_bytes() -> None:
    model = FwCfgModel("qemu")
    model.items[0] = b"XEMU"
    with pytest.raises(SourceError, match="not fw_cfg: signature b'XEMU'") as info:
        source(model)
    assert not isinstance(info.value, NoDeviceError)
    assert model.log == [sel(0), rd(4)]


def test_feature_bit_tested_not_compared() -> None:
    for value in (1, 3, 0x80000003):
        model = FwCfgModel("qemu")
        model.items[1] = struct.pack("<I", value)
        assert source(model).features == value
    model = FwCfgModel("qemu")
    model.items[1] = struct.pack("<I", 2)  # DMA without the traditional interface
    with pytest.raises(SourceError, match="bit 0"):
        source(model)


def test_feature_bitmap_is_little_endian() -> None:
    model = FwCfgModel("qemu")
    model.items[1] = struct.pack(">I", 3)  # a big-endian 3 has bit 0 clear as little-endian
    with pytest.raises(SourceError, match="0x3000000"):
        source(model)


# --- the directory's traps ----------------------------------------------------------------------


def doctored(records: list[bytes], *, count: int | None = None, slots: int = 32) -> FwCfgModel:
    model = FwCfgModel("qemu", strict=False)
    model.items[0x19] = encode_directory(records, slots=slots, count=count)
    return model


def test_directory_is_big_endian() -> None:
    model = doctored([dir_record("opt/a", 0x20, 0x0102)])
    model.items[0x20] = filler("a", 0x0102)
    (e,) = source(model).entries()
    assert e == EntryInfo("opt/a", 0x20, 258)
    # the same directory written little-endian is refused, not misread
    le = struct.pack("<I", 1) + struct.pack("<IHH56s", 0x0102, 0x20, 0, b"opt/a")
    model = doctored([])
    model.items[0x19] = le + bytes(64 * 31)
    with pytest.raises(SourceError, match="16777216 entries"):
        source(model)


def test_directory_count_all_ones_refused_before_reading_records() -> None:
    model = doctored([], count=0xFFFFFFFF)
    with pytest.raises(SourceError, match="4294967295 entries"):
        source(model)
    assert model.log[-2:] == [sel(0x19), rd(4)]


def test_directory_count_bounded_by_what_we_are_willing_to_read() -> None:
    model = doctored([], count=0x3FE0, slots=0)
    with pytest.raises(SourceError, match="refusing more than 64"):
        RawSource(model, max_entry_size=MIB, max_dir_entries=64)
    assert model.bytes_read() == 12  # signature, features, count: no record


def test_directory_count_above_key_space_refused() -> None:
    model = doctored([], count=0x3FE1, slots=0)
    with pytest.raises(SourceError, match="refusing more than"):
        RawSource(model, max_entry_size=MIB, max_dir_entries=1 << 20)


def test_name_without_nul_refused() -> None:
    model = doctored([dir_record(b"o" * 56, 0x20, 1)])
    with pytest.raises(SourceError, match="not NUL-terminated"):
        source(model)


def test_empty_name_refused() -> None:
    model = doctored([dir_record("", 0x20, 1)])
    with pytest.raises(SourceError, match="empty name"):
        source(model)


def test_name_not_utf8_refused() -> None:
    model = doctored([dir_record(b"opt/\xff\xfe", 0x20, 1)])
    with pytest.raises(SourceError, match="not UTF-8"):
        source(model)


@pytest.mark.parametrize("key", [0x0000, 0x0019, 0x001F, 0x4000, 0x8020, 0xFFFF])
def test_key_out_of_range_refused(key: int) -> None:
    model = doctored([dir_record("opt/a", key, 1)])
    with pytest.raises(SourceError, match="outside 0x20..0x3fff"):
        source(model)


def test_duplicate_names_refused() -> None:
    model = doctored([dir_record("opt/a", 0x20, 1), dir_record("opt/a", 0x21, 1)])
    with pytest.raises(SourceError, match="listed twice"):
        source(model)


def test_colliding_keys_refused() -> None:
    model = doctored([dir_record("opt/a", 0x20, 1), dir_record("opt/b", 0x20, 1)])
    with pytest.raises(SourceError, match="already belongs to 'opt/a'"):
        source(model)


def test_names_that_share_a_prefix_are_distinct() -> None:
    model = FwCfgModel("qemu", {"opt/a": b"1", "opt/a/b": b"2", "opt/a\u00e9": b"3"})
    names = {e.name for e in source(model).entries()}
    assert {"opt/a", "opt/a/b", "opt/a\u00e9"} <= names


def test_oversized_size_field_listed_but_never_read() -> None:
    model = doctored([dir_record("opt/huge", 0x20, 0xFFFFFFFF), dir_record("opt/ok", 0x21, 2)])
    model.items[0x21] = b"ok"
    src = source(model, max_entry_size=MIB)
    huge, ok = src.entries()
    assert huge.size == 0xFFFFFFFF
    before = list(model.log)
    with pytest.raises(SourceError, match="more than the limit"):
        src.read(huge)
    assert model.log == before  # the device was not touched
    assert src.read(ok) == b"ok"


def test_made_up_entry_is_never_read() -> None:
    """A caller's EntryInfo with a larger size than the directory's would run past the end."""
    model = FwCfgModel("cloud-hypervisor", [("opt/a", b"abc")])
    src = source(model)
    e = next(x for x in src.entries() if x.name == "opt/a")
    for fake in (
        EntryInfo(e.name, e.key, e.size + 1),
        EntryInfo("opt/b", e.key, e.size),
        EntryInfo(e.name, 0x30, e.size),
    ):
        with pytest.raises(SourceError, match="not in the device's directory"):
            src.read(fake)
    assert src.read(e) == b"abc"


def test_zero_count_directory() -> None:
    model = FwCfgModel("cloud-hypervisor", builtin=[])
    assert source(model).entries() == []
    assert model.log[-2:] == [sel(0x19), rd(4)]


def test_read_after_close_refused() -> None:
    model = FwCfgModel("qemu", USER)
    src = source(model)
    e = src.entries()[0]
    src.close()
    src.close()  # idempotent
    with pytest.raises(SourceError, match="closed"):
        src.read(e)


def test_short_port_read_detected() -> None:
    class Short:
        def __init__(self) -> None:
            self.m = FwCfgModel("qemu")

        def select(self, key: int) -> None:
            self.m.select(key)

        def read(self, n: int) -> bytes:
            return self.m.read(n)[: max(0, n - 1)]

        def close(self) -> None:
            pass

    with pytest.raises(SourceError, match="returned 3 bytes, not 4"):
        probe(Short())


def test_one_byte_select_would_misread() -> None:
    """Why select must be a 16-bit write: QEMU ignores a byte write, so the selection (and offset)
    stays where it was. A reader doing `outb(0x510, key)` would read the wrong item."""
    model = FwCfgModel("qemu", USER, strict=False)
    model.select(0)
    model.read(4)
    model.outb(0x510, 0x19)  # a "select" of the directory
    assert model.read(4) == b"\0\0\0\0"  # still item 0, past its end: not the count
    with pytest.raises(ModelViolation, match="only a 16-bit write selects"):
        FwCfgModel("qemu").outb(0x510, 0x19)


def test_guard_runs_around_every_access() -> None:
    model = FwCfgModel("qemu", USER)
    calls: list[int] = []
    src = RawSource(model, max_entry_size=MIB, guard=lambda: calls.append(len(model.log)))
    assert len(calls) == 2  # before the probe, after the directory
    src.read(src.entries()[-1])
    assert len(calls) == 4


def test_guard_failure_releases() -> None:
    model = FwCfgModel("qemu", USER)
    released: list[bool] = []

    def guard() -> None:
        raise SourceError("driver came back")

    with pytest.raises(SourceError, match="driver came back"):
        RawSource(model, max_entry_size=MIB, guard=guard, release=lambda: released.append(True))
    assert released == [True]
    assert model.log == []


# --- random directories round-trip --------------------------------------------------------------

name_char = st.characters(min_codepoint=0x21, max_codepoint=0x2FF, blacklist_characters="\x7f")
names = (
    st.text(name_char, min_size=1, max_size=30)
    .map(lambda s: "opt/" + s)
    .filter(lambda s: len(s.encode()) <= 55)
)
files_st = st.dictionaries(names, st.binary(max_size=300), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=files_st, profile=st.sampled_from(["qemu", "qemu-nodma", "cloud-hypervisor"]))
def test_random_directories_round_trip(files: dict[str, bytes], profile: str) -> None:
    model = FwCfgModel(profile, files, slots=64)
    src = source(model)
    got = {e.name: src.read(e) for e in src.entries()}
    for name, data in files.items():
        assert got[name] == data
    assert len(got) == len(model.directory)
    # one select per non-empty item read, plus the three of the open sequence
    assert len(model.selects()) == 3 + sum(1 for _, _, size in model.directory if size)


@settings(max_examples=200, deadline=None)
@given(count=st.integers(0, 40), data=st.data())
def test_garbage_records_never_crash_or_overread(count: int, data: st.DataObject) -> None:
    """Any record bytes behind an honest count: the reader lists valid entries or raises
    SourceError, and reads nothing past the directory item (the model would raise). (A count
    larger than the item cannot be detected by any reader: the item's size is not published.)"""
    body = data.draw(st.binary(min_size=64 * count, max_size=64 * count + 128))
    model = FwCfgModel("qemu", builtin=[])
    model.items[0x19] = struct.pack(">I", count) + body
    try:
        entries = source(model).entries()
    except SourceError:
        return
    assert len(entries) == count
    assert 4 + 64 * count <= len(model.items[0x19])


def test_directory_reader_alone() -> None:
    model = FwCfgModel("qemu-nodma", USER)
    entries = read_directory(model)
    assert {e.name for e in entries} >= set(USER)
    assert model.log == [sel(0x19), rd(4 + 64 * len(entries))]
