"""Environment-style payloads, parsed as data.

A payload is UTF-8 text of `KEY=VALUE` lines as in RHEL ifcfg files: `#` comments, blank lines,
an optional `export ` prefix, single quotes (literal) and double quotes (with `\\"`, `\\\\`,
`\\$` and `` \\` `` escapes). Nothing is expanded or executed: a `$` or a backtick that a shell
would expand, or any other shell syntax, is an error rather than a literal, so that the same file
means the same thing to this parser and to a shell.

No value may hold a control character (C0 but for the tab that separates words outside quotes,
DEL, C1) or a Unicode line or paragraph separator: some reader of the files the values end up in
takes each of them as a line end (systemd a lone CR, Python's splitlines VT, FF, NEL, U+2028...).
"""

from __future__ import annotations

import re
from typing import Optional

from .errors import PayloadError
from .tuples import NamedTuple

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters that end or change an unquoted shell word.
_SHELL_SPECIAL = set(" \t\"'\\$`;&|<>(){}*?[]~!")
_DQ_ESCAPABLE = set('"\\$`')
# C0, DEL, C1, and the Unicode line and paragraph separators: everything that some reader
# (systemd: a lone CR; Python's splitlines: VT, FF, FS, GS, RS, NEL, U+2028/9) takes as the end
# of a line, and every other control character besides. A set, not a regular expression: a
# character class beyond Latin-1 takes re 2.6M instructions to compile, on every first boot.
CONTROL_CHARS = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


def control_char(text: str) -> Optional[str]:
    """The first of CONTROL_CHARS in `text`, or None."""
    if CONTROL_CHARS.isdisjoint(text):
        return None
    return next(c for c in text if c in CONTROL_CHARS)


class Assignment(NamedTuple):
    key: str
    value: str
    line: int


class Payload(NamedTuple):
    """One fw_cfg entry's assignments in file order, keys unique."""

    entry: str
    assignments: tuple[Assignment, ...]

    def as_dict(self) -> dict[str, Assignment]:
        return {a.key: a for a in self.assignments}


def printable(name: str) -> str:
    """`name` with each control character written as an escape (\\x0a, \\u2028): one line."""
    return "".join(c if c not in CONTROL_CHARS else f"\\x{ord(c):02x}" if ord(c) < 0x100
                   else f"\\u{ord(c):04x}" for c in name.replace("\\", "\\\\"))


def parse(entry: str, data: bytes) -> Payload:
    """Parse an entry's bytes; raise PayloadError naming the entry, line and key."""
    if control_char(entry):
        # the name (from the host, like the data) would end up in messages and files
        raise PayloadError(printable(entry), "the entry's name holds a control character")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise PayloadError(
            entry, f"not UTF-8 text (invalid byte 0x{data[e.start]:02x})", line=line
        ) from None
    seen: dict[str, int] = {}
    out: list[Assignment] = []
    for number, raw in enumerate(text.split("\n"), start=1):
        assignment = _parse_line(entry, number, raw)
        if assignment is None:
            continue
        first = seen.get(assignment.key)
        if first is not None:
            raise PayloadError(
                entry, f"repeated (first set on line {first})", line=number, key=assignment.key
            )
        seen[assignment.key] = number
        out.append(assignment)
    return Payload(entry, tuple(out))


def _parse_line(entry: str, number: int, raw: str) -> Assignment | None:
    line = raw[:-1] if raw.endswith("\r") else raw
    stripped = line.strip(" \t")
    if stripped.startswith("export") and stripped[6:7] in (" ", "\t"):
        stripped = stripped[7:].lstrip(" \t")
    m = _KEY.match(stripped)
    if "\0" in line:  # anywhere, comments included: text files hold no NUL
        named = m.group() if m and stripped[m.end():m.end() + 1] == "=" else None
        raise PayloadError(entry, "contains a NUL byte", line=number, key=named)
    if not stripped or stripped.startswith("#"):
        return None
    if not m:
        raise PayloadError(entry, f"expected KEY=VALUE, got {_shorten(stripped)!r}", line=number)
    key = m.group()
    rest = stripped[m.end() :]
    if not rest.startswith("="):
        if rest[:1] in (" ", "\t") and rest.lstrip(" \t").startswith("="):
            raise PayloadError(entry, "no spaces allowed around '='", line=number, key=key)
        raise PayloadError(entry, f"expected '=' after the key, got {_shorten(rest)!r}",
                           line=number, key=key)
    value = _parse_value(entry, number, key, rest[1:])
    bad = control_char(value)
    if bad:
        raise PayloadError(entry, f"the value holds the control character U+{ord(bad):04X} "
                           "(values are one line of text without control characters)",
                           line=number, key=key)
    return Assignment(key, value, number)


def _parse_value(entry: str, number: int, key: str, s: str) -> str:
    out: list[str] = []
    i, n = 0, len(s)

    def fail(reason: str) -> PayloadError:
        return PayloadError(entry, reason, line=number, key=key)

    while i < n:
        c = s[i]
        if c == "'":
            end = s.find("'", i + 1)
            if end < 0:
                raise fail("unterminated single quote (values are one line)")
            out.append(s[i + 1 : end])
            i = end + 1
        elif c == '"':
            i += 1
            while True:
                if i >= n:
                    raise fail("unterminated double quote (values are one line)")
                c = s[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and s[i + 1] in _DQ_ESCAPABLE:
                    out.append(s[i + 1])
                    i += 2
                    continue
                if c in "$`":
                    raise fail(f"{c!r} would be expanded by a shell; escape it or use single "
                               "quotes")
                out.append(c)
                i += 1
        elif c in " \t":
            rest = s[i:].lstrip(" \t")
            if rest and not rest.startswith("#"):
                raise fail(f"unexpected text after the value: {_shorten(rest)!r} (quote values "
                           "that contain spaces)")
            break
        elif c == "\\":
            raise fail("backslash outside quotes; quote the value instead")
        elif c in _SHELL_SPECIAL:
            raise fail(f"{c!r} is shell syntax; quote the value (single quotes take it literally)")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _shorten(s: str, limit: int = 40) -> str:
    return s if len(s) <= limit else s[: limit - 3] + "..."
