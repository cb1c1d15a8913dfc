"""SMBIOS type 11 OEM strings from the kernel's copy of the DMI table.

/sys/firmware/dmi/tables/DMI holds the SMBIOS structure table as the firmware laid it out
(Linux trims it after the end-of-table structure). Facts from the SMBIOS specification (DSP0134):

* a structure is a 4-byte header (type, length of the formatted area including the header,
  handle), the rest of its formatted area, then its string-set: NUL-terminated strings, the set
  ended by one more NUL; a structure without strings ends with two NULs;
* type 11 (OEM Strings) has one byte after the header, Count, the number of its strings;
* type 127 (End-of-Table) ends the table.

The walk is bounded: the table's size (MAX_TABLE), each structure's length (a byte, at least
the header) and string-set (up to the table's end), each type 11's Count (a byte, and no more
strings than the set holds). Every step moves forward, so a table cannot make it loop. A table
that breaks these rules is refused with a SourceError (exit 4): the agent will not guess which
strings a damaged table holds.

An OEM string for the agent is `fwcfg-agent:NAME=TEXT` (TEXT is the entry's payload, newlines
and all) or `fwcfg-agent.base64:NAME=BASE64` (for payloads a host's tools would mangle: commas
for QEMU's option parser, newlines). Other OEM strings are not the agent's and are ignored.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Optional

from ..channels import DMI_TABLE, OEM_BASE64, OEM_TEXT, name_problem
from ..errors import PayloadError, SourceError
from ..rootfs import Reader
from ..tuples import NamedTuple

# Larger than any table a VM manager or firmware makes (QEMU's SMBIOS 2.1 entry point allows
# 64 KiB); SMBIOS 3's 32-bit size field would allow 4 GiB, which the agent will not hold.
MAX_TABLE = 16 << 20
HEADER = 4
TYPE_OEM_STRINGS = 11
TYPE_END = 127


class OemString(NamedTuple):
    number: int  # 1-based, in table order over every type 11 structure
    text: bytes


def _bad(where: str, reason: str) -> SourceError:
    return SourceError(f"{where}: malformed SMBIOS table: {reason}")


def oem_strings(table: bytes, where: str = DMI_TABLE) -> list[OemString]:
    """Every OEM string of the table, in order. SourceError naming WHERE (the table's path)
    when the table is malformed."""
    end = len(table)
    if end > MAX_TABLE:
        raise _bad(where, f"{end} bytes, more than the {MAX_TABLE} the agent reads")
    found: list[OemString] = []
    pos = 0
    while pos < end:
        if end - pos < HEADER:
            raise _bad(where, f"it ends inside the header of a structure at offset {pos}")
        kind, length = table[pos], table[pos + 1]
        what = f"the type {kind} structure at offset {pos}"
        if length < HEADER:
            raise _bad(where, f"{what} has length {length}, less than its {HEADER}-byte header")
        strings_at = pos + length
        if strings_at + 2 > end:
            raise _bad(where, f"{what} (length {length}) runs past the end of the table "
                              f"({end} bytes)")
        stop = table.find(b"\0\0", strings_at)
        if stop < 0:
            raise _bad(where, f"the strings of {what} run past the end of the table")
        if kind == TYPE_OEM_STRINGS:
            if length < HEADER + 1:
                raise _bad(where, f"{what} has no Count byte (length {length})")
            count = table[pos + HEADER]
            strings = table[strings_at:stop].split(b"\0") if stop > strings_at else []
            if len(strings) < count:
                raise _bad(where, f"{what} has Count {count} but holds {len(strings)} strings")
            for text in strings[:count]:
                if not text:
                    raise _bad(where, f"{what} holds an empty string")
                found.append(OemString(len(found) + 1, text))
        if kind == TYPE_END:
            break
        pos = stop + 2
    return found


def _shown(text: bytes) -> str:
    """An OEM string as a message may show it: the start of it, escaped to printable ASCII."""
    head = text[:60].decode("utf-8", "replace")
    return ascii(head)[1:-1] + ("..." if len(text) > 60 else "")


class AgentString(NamedTuple):
    """An OEM string for the agent: the entry NAME and its value as written."""

    number: int
    name: str
    value: bytes
    encoded: bool  # fwcfg-agent.base64:

    @property
    def where(self) -> str:
        return f"SMBIOS OEM string {self.number}"

    def payload(self) -> bytes:
        """The entry's bytes: TEXT as it is, or BASE64 decoded (ASCII whitespace, as `base64`
        wraps its output, is dropped first; anything else outside the alphabet, or bad padding,
        is an error naming the string)."""
        if not self.encoded:
            return self.value
        compact = b"".join(self.value.split())
        try:
            return binascii.a2b_base64(_strict(compact))
        except (binascii.Error, ValueError) as e:
            raise PayloadError(self.name, f"{self.where} ({OEM_BASE64.decode()}{self.name}=...)"
                                          f" is not valid base64: {e}") from None


_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _strict(data: bytes) -> bytes:
    """DATA if it is canonical base64 (standard alphabet, padded to a multiple of 4), else
    ValueError. binascii alone skips characters outside the alphabet on Python 3.9."""
    body = data.rstrip(b"=")
    pad = len(data) - len(body)
    if pad > 2 or len(data) % 4:
        raise ValueError(f"{len(data)} characters with {pad} '=': not a multiple of 4 with at "
                         "most 2 padding characters")
    bad = next((c for c in body if c not in _ALPHABET), None)
    if bad is not None:
        raise ValueError(f"{chr(bad)!r} is not a base64 character")
    return data


def agent_string(s: OemString,
                 wants: Optional[Callable[[str], bool]] = None) -> Optional[AgentString]:
    """The OEM string as the agent's, None when it is not for the agent, or when WANTS (the
    config's INCLUDE and EXCLUDE) leaves its NAME out: a string the config excludes is ignored,
    even with a NAME the agent could not take. A string with the agent's prefix but no NAME=,
    or a bad NAME the config does not leave out, is an error (exit 3) naming the string."""
    if s.text.startswith(OEM_BASE64):
        rest, encoded = s.text[len(OEM_BASE64):], True
    elif s.text.startswith(OEM_TEXT):
        rest, encoded = s.text[len(OEM_TEXT):], False
    else:
        return None
    where = f"SMBIOS OEM string {s.number}"
    raw_name, eq, value = rest.partition(b"=")
    if not eq:
        raise PayloadError(where, f"{_shown(s.text)}: no '=' after the entry's name")
    if wants is not None and not wants(raw_name.decode("ascii", "backslashreplace")):
        return None
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        raise PayloadError(where, f"{_shown(s.text)}: the name is not ASCII") from None
    problem = name_problem(name)
    if problem:
        raise PayloadError(where, f"{_shown(s.text)}: {problem}")
    return AgentString(s.number, name, value, encoded)


def read_table(reader: Reader) -> Optional[bytes]:
    """The DMI table through the run's Reader (recorded), None where there is none."""
    return reader.read(DMI_TABLE)


def agent_strings(reader: Reader, table: Optional[bytes],
                  wants: Optional[Callable[[str], bool]] = None) -> list[AgentString]:
    """The agent's OEM strings of TABLE (read by read_table) whose names WANTS takes, in table
    order."""
    if table is None:
        return []
    found = []
    for s in oem_strings(table, reader.path(DMI_TABLE)):
        mine = agent_string(s, wants)
        if mine is not None:
            found.append(mine)
    return found
