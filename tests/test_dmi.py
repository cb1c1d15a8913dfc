"""The SMBIOS table walk and the OEM strings for the agent (fwcfg_agent/sources/dmi.py), on tables
built to the SMBIOS specification (tests/fakeroot.py) and on one a QEMU 7.2 guest saw."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwcfg_agent import channels
from fwcfg_agent.errors import PayloadError, SourceError
from fwcfg_agent.rootfs import Reader
from fwcfg_agent.sources.dmi import (
    MAX_TABLE,
    AgentString,
    OemString,
    agent_string,
    agent_strings,
    oem_strings,
)

from .conftest import REPO
from .fakeroot import (
    QEMU72_OEM_TABLE,
    QEMU_DNS,
    QEMU_NET1,
    smbios_structure,
    smbios_table,
    write_dmi_table,
)

GUESTINFO = (REPO / "examples/GuestInfo.env").read_bytes()


def texts(table: bytes) -> list[bytes]:
    return [s.text for s in oem_strings(table)]


# --- the walk ------------------------------------------------------------------------------


def test_the_table_qemu_made() -> None:
    strings = oem_strings(QEMU72_OEM_TABLE)
    assert [s.number for s in strings] == [1, 2, 3, 4, 5]
    mine = [agent_string(s) for s in strings]
    assert [m.name if m else None for m in mine] == [
        "opt/GuestInfo", "opt/org.example/dns", None, None, "opt/org.example/net1"]
    guest, dns, _, _, net1 = mine
    assert guest is not None and dns is not None and net1 is not None
    # value= keeps newlines and the comma QEMU's parser needed doubled; base64 decodes; path=
    # keeps the file as it is
    assert guest.payload() == GUESTINFO and not guest.encoded
    assert dns.payload() == QEMU_DNS and dns.encoded
    assert net1.payload() == QEMU_NET1
    assert strings[3].text == b"vendor string, with a comma"
    # systemd's own string is not the agent's, though it names an agent credential
    assert strings[2].text.startswith(b"io.systemd.credential:fwcfg-agent.net0=")


def test_every_truncation_of_a_real_table_is_refused_or_ends_on_a_structure() -> None:
    """Cut anywhere: the walk either ends cleanly at a structure's end (the table lacks only its
    end-of-table, as a count-bounded SMBIOS 2 table may) or refuses the table; it never returns
    a string the cut damaged."""
    whole = oem_strings(QEMU72_OEM_TABLE)
    ends = {0}
    for cut in range(len(QEMU72_OEM_TABLE)):
        try:
            got = oem_strings(QEMU72_OEM_TABLE[:cut])
        except SourceError as e:
            assert "malformed SMBIOS table" in str(e)
            continue
        ends.add(cut)
        assert got in ([], whole), cut
    # the cuts accepted are exactly the structure boundaries before the end-of-table
    assert sorted(ends) == [0, 67, 142, 181, 246, 817, 842, 895, 928, 941]


@pytest.mark.parametrize(("table", "says"), [
    # a structure whose length is below its header: a naive walker never moves on (loops)
    (smbios_table([b"a"]) [:-6] + bytes([1, 0, 0, 0]) + b"\0\0", "less than its 4-byte header"),
    (bytes([11, 0, 0, 0, 0, 0]), "has length 0"),
    (bytes([11, 3, 0, 0]) + b"\0\0", "has length 3"),
    # the header itself cut
    (smbios_table([b"a"], end=False) + bytes([127, 4]), "ends inside the header"),
    # the formatted area runs past the end
    (bytes([1, 27, 0, 1]) + bytes(10), "runs past the end of the table"),
    # the string-set is never terminated
    (bytes([11, 5, 0, 14, 1]) + b"fwcfg-agent:opt/x=unterminated", "run past the end"),
    (bytes([11, 5, 0, 14, 1]) + b"fwcfg-agent:opt/x=a\0", "run past the end"),
    # type 11 without its Count byte, or claiming more strings than it holds
    (smbios_structure(11, 0x0E00, b"", [b"a"]), "no Count byte"),
    (bytes([11, 5, 0, 14, 3]) + b"a\0b\0\0", "Count 3 but holds 2 strings"),
    (bytes([11, 5, 0, 14, 2]) + b"\0a\0\0", "holds an empty string"),
])
def test_malformed_tables_are_refused(table: bytes, says: str) -> None:
    with pytest.raises(SourceError, match="malformed SMBIOS table") as err:
        oem_strings(table, "ROOT/sys/firmware/dmi/tables/DMI")
    assert says in str(err.value)
    assert str(err.value).startswith("ROOT/sys/firmware/dmi/tables/DMI: ")
    assert err.value.exit_code == 4


def test_the_table_size_is_bounded() -> None:
    table = smbios_table([b"fwcfg-agent:opt/x=y"])
    padded = table + bytes(MAX_TABLE + 1 - len(table))
    with pytest.raises(SourceError, match=f"more than the {MAX_TABLE}"):
        oem_strings(padded)
    # up to the bound, what follows the end-of-table is not looked at
    assert texts(table + bytes(MAX_TABLE - len(table))) == [b"fwcfg-agent:opt/x=y"]


def test_count_bounds_the_strings_taken() -> None:
    """Strings past Count are not OEM strings (nothing refers to them)."""
    table = bytes([11, 5, 0, 14, 1]) + b"fwcfg-agent:opt/a=1\0fwcfg-agent:opt/b=2\0\0"
    assert texts(table) == [b"fwcfg-agent:opt/a=1"]


def test_strings_of_several_type_11_structures_are_numbered_in_table_order() -> None:
    table = (smbios_structure(11, 1, bytes([2]), [b"a", b"b"])
             + smbios_structure(8, 2, bytes(5), [b"not", b"oem"])
             + smbios_structure(11, 3, bytes([1]), [b"c"])
             + smbios_structure(11, 4, bytes([0]))
             + smbios_structure(127, 5))
    assert oem_strings(table) == [OemString(1, b"a"), OemString(2, b"b"), OemString(3, b"c")]


def test_tables_without_oem_strings() -> None:
    assert oem_strings(b"") == []
    assert oem_strings(smbios_table()) == []
    assert oem_strings(smbios_structure(11, 1, bytes([0])) + smbios_structure(127, 2)) == []


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=1, max_size=300).filter(lambda b: b"\0" not in b),
                max_size=255))
def test_tables_built_to_the_spec_give_back_their_strings(strings: list[bytes]) -> None:
    assert texts(smbios_table(strings)) == strings


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_give_strings_or_a_source_error(data: bytes) -> None:
    """Any table: the walk ends, and either refuses it or returns strings that are in it, each
    non-empty and NUL-free (IndexError or anything else would fail here)."""
    try:
        got = oem_strings(data)
    except SourceError:
        return
    for s in got:
        assert s.text and b"\0" not in s.text and s.text in data


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaging_a_real_table_gives_strings_or_a_source_error(data: st.DataObject) -> None:
    table = bytearray(QEMU72_OEM_TABLE)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(table) - 1))
        table[at] = data.draw(st.integers(0, 255))
    try:
        got = oem_strings(bytes(table))
    except SourceError:
        return
    assert all(s.text and s.text in table for s in got)


# --- the agent's strings --------------------------------------------------------------------


def one(text: bytes, number: int = 3) -> AgentString | None:
    return agent_string(OemString(number, text))


@pytest.mark.parametrize(("text", "name", "value", "encoded"), [
    (b"fwcfg-agent:opt/GuestInfo=HOSTNAME=a\nIPADDR=192.0.2.1\n", "opt/GuestInfo",
     b"HOSTNAME=a\nIPADDR=192.0.2.1\n", False),
    (b"fwcfg-agent:opt/x=", "opt/x", b"", False),  # an empty payload
    (b"fwcfg-agent:opt/x==a=b", "opt/x", b"=a=b", False),  # the name ends at the first '='
    (b"fwcfg-agent.base64:opt/org.example/net0=SE9TVE5BTUU9YQo=", "opt/org.example/net0",
     b"SE9TVE5BTUU9YQo=", True),
])
def test_agent_strings(text: bytes, name: str, value: bytes, encoded: bool) -> None:
    assert one(text) == AgentString(3, name, value, encoded)


@pytest.mark.parametrize("text", [
    b"io.systemd.credential:fwcfg-agent.net0=HOSTNAME=a",
    b"fwcfg-agentopt/x=1", b"fwcfg-agent.other:opt/x=1", b"FWCFG-AGENT:opt/x=1",
    b" fwcfg-agent:opt/x=1", b"vendor", b"fwcfg-agent.base64opt/x=1",
])
def test_other_strings_are_not_the_agents(text: bytes) -> None:
    assert one(text) is None


@pytest.mark.parametrize(("text", "says"), [
    (b"fwcfg-agent:opt/GuestInfo", "no '=' after the entry's name"),
    (b"fwcfg-agent:=HOSTNAME=a", "the name is empty"),
    (b"fwcfg-agent:opt/my entry=HOSTNAME=a", "only printable ASCII"),
    (b"fwcfg-agent:opt/\x1b[2J=HOSTNAME=a", "only printable ASCII"),
    ("fwcfg-agent:opt/caf\u00e9=x".encode(), "the name is not ASCII"),
    (b"fwcfg-agent.base64:" + b"o" * 256 + b"=", "more than 255"),
])
def test_bad_names_are_errors_naming_the_string(text: bytes, says: str) -> None:
    with pytest.raises(PayloadError) as err:
        one(text)
    assert err.value.entry == "SMBIOS OEM string 3" and err.value.exit_code == 3
    assert says in str(err.value)
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("b64", [
    b"SE9TVE5BTUU9YQo",  # padding missing
    b"SE9TVE5BTUU9YQo=x",
    b"SE9TVE5B-UU9YQo=",  # the URL-safe alphabet
    b"SE9TVE5BTUU9YQo=====",
    b"SE9T=VE5BTUU9YQo=",
    b"SE9TVE5BTUU9YQ*=",
])
def test_bad_base64_is_an_error_naming_entry_and_string(b64: bytes) -> None:
    s = one(b"fwcfg-agent.base64:opt/org.example/net0=" + b64, number=7)
    assert s is not None
    with pytest.raises(PayloadError) as err:
        s.payload()
    assert err.value.entry == "opt/org.example/net0"
    assert "SMBIOS OEM string 7" in str(err.value) and "not valid base64" in str(err.value)


def test_base64_may_be_wrapped_as_base64_wraps_it() -> None:
    payload = b"HOSTNAME=wrapped.example.com\n" * 5
    wrapped = base64.encodebytes(payload)  # 76 columns, newline-terminated
    assert b"\n" in wrapped.rstrip(b"\n")
    s = one(b"fwcfg-agent.base64:opt/x=" + wrapped)
    assert s is not None and s.payload() == payload


@settings(deadline=None)
@given(st.binary(max_size=200))
def test_any_string_with_the_prefix_gives_an_entry_or_a_payload_error(rest: bytes) -> None:
    for prefix in (channels.OEM_TEXT, channels.OEM_BASE64):
        try:
            s = one(prefix + rest)
            assert s is not None
            data = s.payload()
        except PayloadError:
            continue
        assert isinstance(data, bytes)
        if prefix == channels.OEM_TEXT:
            assert data == rest.partition(b"=")[2]


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_base64_round_trip(payload: bytes) -> None:
    s = one(b"fwcfg-agent.base64:opt/x=" + base64.b64encode(payload))
    assert s is not None and s.payload() == payload


# --- through the Reader ----------------------------------------------------------------------


def test_the_table_is_read_through_the_runs_reader(tmp_path: Path) -> None:
    write_dmi_table(tmp_path, QEMU72_OEM_TABLE)
    reader = Reader(str(tmp_path))
    table = reader.read(channels.DMI_TABLE)
    assert [s.name for s in agent_strings(reader, table)] == [
        "opt/GuestInfo", "opt/org.example/dns", "opt/org.example/net1"]
    assert reader.record() == [("f", channels.DMI_TABLE, QEMU72_OEM_TABLE)]


def test_the_cheap_check_never_misses_an_agent_string() -> None:
    assert channels.dmi_mentions_agent(QEMU72_OEM_TABLE)
    assert not channels.dmi_mentions_agent(smbios_table([b"vendor", b"io.systemd.x=1"]))
    assert not channels.dmi_mentions_agent(None)


_NO_NUL = st.binary(min_size=1, max_size=80).filter(lambda b: b"\0" not in b)
_OEM = st.one_of(_NO_NUL, st.builds(lambda p, b: p + b.replace(b"\0", b""),
                                    st.sampled_from([channels.OEM_TEXT, channels.OEM_BASE64,
                                                     b"io.systemd.credential:"]),
                                    st.binary(max_size=60)))


@settings(deadline=None)
@given(st.lists(_OEM, max_size=20))
def test_a_table_with_an_agent_string_always_mentions_the_agent(strings: list[bytes]) -> None:
    table = smbios_table(strings)
    mine = [s for s in oem_strings(table) if s.text.startswith((channels.OEM_TEXT,
                                                                 channels.OEM_BASE64))]
    assert channels.dmi_mentions_agent(table) or not mine
