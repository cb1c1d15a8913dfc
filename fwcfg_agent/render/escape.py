"""One escaping function per output format, used by the templates through filters.

The values reaching a template passed the checks of `fwcfg_agent.validate` (addresses written
with str(), numbers, names from a whitelist) or, for the keys the agent passes through, are text
without control characters. Escaping is the second line of defence: each function returns its
value in the syntax of its format so that the file's reader takes it as exactly that value, and
raises EscapeError (a ValueError, and an AgentError with the payload's exit code 3) when the
format cannot carry the value as one datum: then rendering fails and nothing is written. No
function but `yaml` and `comment` (which escape them) lets a control character through: every
format here is read line by line, and some readers end a line at characters other than LF
(systemd at a lone CR).

    format (file)                               function   what a value becomes
    ifcfg-<dev> (sourced by bash, read by NM)   shell      a single-quoted word
    ifupdown `up`/`pre-up` command lines (sh)   shell      a single-quoted word
    shell variable names (ifcfg keys)           shell_name the name itself, or EscapeError
    ifupdown options, route-<dev> lines         word       the word itself, or EscapeError
    NetworkManager keyfile                      keyfile    GKeyFile escapes (\\\\, \\s)
    systemd-networkd .network                   unit       the word itself, or EscapeError
    netplan YAML                                yaml       a number, or a double-quoted scalar
    /etc/hosts, /etc/hostname                   hosts      the name itself, or EscapeError
    comments (fw_cfg entry names)               comment    a JSON string: ASCII, one line

This module loads nothing beyond the C half of json, like the filters that use it.
"""

from __future__ import annotations

from ..errors import AgentError

try:  # the C half of json: json.dumps without loading json (and re)
    from _json import encode_basestring_ascii as _json_str
except ImportError:  # pragma: no cover - CPython always has it
    from json import dumps as _json_str

# C0, DEL, C1, LINE SEPARATOR, PARAGRAPH SEPARATOR: what validate.text refuses.
CONTROL = frozenset([chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)]
                    + ["\u2028", "\u2029"])
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
# Words that no shell splits, expands or globs, and that ifupdown's option parser and the
# network-scripts' `ip route add $line` take as they are: addresses (with /prefix), numbers,
# interface names, domain names.
_WORD = _ASCII_ALNUM | frozenset("_.:/-")
# Names and addresses in /etc/hosts and /etc/hostname: RFC 1123 names, IPv4 and IPv6 addresses.
_HOSTS = _ASCII_ALNUM | frozenset(".:-")
_SHELL_NAME_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_SHELL_NAME = _SHELL_NAME_START | frozenset("0123456789")
# Never a part of a systemd unit-file word: whitespace (list settings split on it; the ends of
# a value are stripped), quotes and backslash (list settings unquote and unescape), '%'
# (specifiers, in unit files proper).
_UNIT_SPECIAL = frozenset(" \"'\\%")


class EscapeError(AgentError, ValueError):
    """A value that its format cannot carry. The checks in `validate` make this unreachable
    for values from payloads; it stops a value that escaped them from reaching a file."""

    exit_code = 3

    def __init__(self, reason: str) -> None:
        super().__init__(f"a value cannot be written: {reason}")


def _one_line(s: str, what: str) -> str:
    for c in s:
        if c in CONTROL:
            raise EscapeError(f"{what}: {s[:60]!r} holds the control character U+{ord(c):04X}")
    return s


def _only(s: str, allowed: frozenset[str], what: str) -> str:
    if not s:
        raise EscapeError(f"{what}: an empty value")
    for c in s:
        if c not in allowed:
            raise EscapeError(f"{what}: {s[:60]!r} holds {c!r}, which this format cannot carry "
                             "as it is")
    return s


def shell(value: object) -> str:
    """A word for a POSIX shell (bash sourcing ifcfg, sh running ifupdown's commands): single
    quotes, with each ' written as '"'"'. Inside single quotes nothing is special, so the word
    is the value whatever it holds; only a control character is refused, since NetworkManager's
    ifcfg reader and ifupdown read their files line by line."""
    s = _one_line(str(value), "shell")
    return "'" + s.replace("'", "'\"'\"'") + "'"


def shell_name(value: object) -> str:
    """A shell variable name, written as it is: a name cannot be quoted, only checked."""
    s = str(value)
    if not s or s[0] not in _SHELL_NAME_START:
        raise EscapeError(f"shell: {s[:60]!r} is not a variable name")
    return _only(s, _SHELL_NAME, "shell")


def word(value: object) -> str:
    """A word for ifupdown's options (ifupdown pastes them into the sh commands it runs, unquoted)
    and for route-<dev> lines (which ifup-routes passes to `ip route add` unquoted): only the
    characters of addresses, numbers and names, which no shell splits, expands or globs."""
    return _only(str(value), _WORD, "ifupdown/route")


def keyfile(value: object) -> str:
    """A GKeyFile (NetworkManager keyfile) string: backslash doubled, spaces at either end as
    \\s (GKeyFile strips them otherwise). ';' and ',' are refused: NetworkManager splits lists
    and its address and route values on them, and GKeyFile has no escape that every one of
    those readers undoes."""
    s = _one_line(str(value), "keyfile")
    for c in ";,":
        if c in s:
            raise EscapeError(f"keyfile: {s[:60]!r} holds {c!r}, a separator in NetworkManager's "
                             "values")
    s = s.replace("\\", "\\\\")
    body = s.strip(" ")
    if not body:
        return "\\s" * len(s)
    start = s.index(body)
    return "\\s" * start + body + "\\s" * (len(s) - start - len(body))


def unit(value: object) -> str:
    """A word in a systemd unit-file setting (systemd-networkd's .network files). systemd's
    parser strips whitespace at both ends of a value, continues a line that ends in a backslash,
    unquotes and unescapes list settings (DNS=, Domains=, Name=) and takes an empty value as
    "reset the list". A value is therefore written only when none of that applies: non-empty,
    no whitespace, quotes, backslash, '%' or control characters. The templates join list items
    with spaces themselves."""
    s = _one_line(str(value), "unit file")
    if not s:
        raise EscapeError("unit file: an empty value (systemd takes it as a reset)")
    for c in s:
        if c in _UNIT_SPECIAL or c.isspace():
            raise EscapeError(f"unit file: {s[:60]!r} holds {c!r}, which systemd's parser "
                             "would not take as a part of the value")
    return s


def yaml(value: object) -> str:
    """A YAML scalar for netplan: an int as a plain number (what netplan's numeric settings
    expect), true/false for a bool, anything else as a double-quoted scalar, ASCII only: '"' and
    '\\' escaped, every other character outside printable ASCII as \\xXX, \\uXXXX or
    \\UXXXXXXXX. (Not a JSON string: JSON writes a character beyond U+FFFF as a surrogate pair,
    which YAML parsers, libyaml among them, refuse.)"""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # int(): an IntEnum's str() would be its name
    out = ['"']
    for c in str(value):
        n = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 0x20 <= n < 0x7F:
            out.append(c)
        elif n <= 0xFF:
            out.append(f"\\x{n:02X}")
        elif n <= 0xFFFF:
            out.append(f"\\u{n:04X}")
        else:
            out.append(f"\\U{n:08X}")
    out.append('"')
    return "".join(out)


def hosts(value: object) -> str:
    """A field of /etc/hosts or /etc/hostname: whitespace separates fields and '#' starts a
    comment there, and nothing can be quoted, so only name and address characters pass."""
    return _only(str(value), _HOSTS, "hosts")


def comment(value: object) -> str:
    """Text inside a comment line of any format (the fw_cfg entry names a file came from): a
    JSON string, ASCII with every control character escaped, so that it cannot end the line."""
    return str(_json_str(str(value)))
