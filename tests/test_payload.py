from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fwcfg_agent.errors import PayloadError
from fwcfg_agent.payload import parse


def values(data: bytes) -> dict[str, str]:
    return {a.key: a.value for a in parse("opt/test", data).assignments}


def test_somlo_payload() -> None:
    assert values(b"HOSTNAME=guest1\nIPADDR=10.0.2.15\n") == {
        "HOSTNAME": "guest1", "IPADDR": "10.0.2.15"}


def test_comments_blank_lines_export_quotes_crlf() -> None:
    data = (b"# a comment\n\n  export A=1\r\nB='two words'  # trailing\n"
            b'C="say \\"hi\\" \\$HOME \\`x\\`"\nD=a\'b c\'"d"\nE=\nF=x#y\n')
    assert values(data) == {"A": "1", "B": "two words", "C": 'say "hi" $HOME `x`',
                            "D": "ab cd", "E": "", "F": "x#y"}


def test_single_quotes_are_literal() -> None:
    assert values(b"A='$(reboot) `id` ; \\n'\n") == {"A": "$(reboot) `id` ; \\n"}


def test_line_numbers_are_recorded() -> None:
    p = parse("opt/x", b"\n# c\nA=1\n\nB=2\n")
    assert [(a.key, a.line) for a in p.assignments] == [("A", 3), ("B", 5)]


@pytest.mark.parametrize(
    ("data", "line", "key", "reason"),
    [
        (b"A=$(reboot)\n", 1, "A", "shell syntax"),
        (b"A=`id`\n", 1, "A", "shell syntax"),
        (b'A="$HOME"\n', 1, "A", "expanded"),
        (b'A="`id`"\n', 1, "A", "expanded"),
        (b"A=1;reboot\n", 1, "A", "shell syntax"),
        (b"A=1 && reboot\n", 1, "A", "unexpected text"),
        (b"\nA=two words\n", 2, "A", "unexpected text"),
        (b"A = 1\n", 1, "A", "no spaces"),
        (b"A='open\n", 1, "A", "unterminated single quote"),
        (b'A="open\n', 1, "A", "unterminated double quote"),
        (b"A=1\nB=2\nA=3\n", 3, "A", "repeated (first set on line 1)"),
        (b"1A=2\n", 1, None, "expected KEY=VALUE"),
        (b"just words\n", 1, "just", "expected '='"),
        (b"A=x\\y\n", 1, "A", "backslash"),
        (b"A=\xff\n", 1, None, "not UTF-8"),
        (b"A=1\nB=\x00\n", 2, "B", "NUL"),
        (b"A=1\n# a comment \x00\n", 2, None, "NUL"),
        (b"A=a|b\n", 1, "A", "shell syntax"),
        (b"A=*\n", 1, "A", "shell syntax"),
    ],
)
def test_errors_name_entry_line_key(data: bytes, line: int, key: str | None, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse("opt/GuestInfo", data)
    e = info.value
    assert (e.entry, e.line, e.key) == ("opt/GuestInfo", line, key)
    assert reason in e.reason
    assert str(e).startswith(f"opt/GuestInfo, line {line}")


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_raise_payload_error(data: bytes) -> None:
    try:
        p = parse("opt/fuzz", data)
    except PayloadError as e:
        assert e.entry == "opt/fuzz"
        assert e.line is None or 1 <= e.line <= data.count(b"\n") + 1
        return
    keys = [a.key for a in p.assignments]
    assert len(keys) == len(set(keys))


_text_lines = st.lists(
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40), max_size=8
)


@settings(max_examples=300, deadline=None)
@given(_text_lines)
def test_arbitrary_text_parse_or_raise_payload_error(lines: list[str]) -> None:
    data = "\n".join(lines).encode()
    try:
        parse("opt/fuzz", data)
    except PayloadError as e:
        assert e.entry == "opt/fuzz"


# Every character a value may hold: anything but C0, DEL, C1 (category Cc) and the Unicode line
# and paragraph separators (Zl, Zp).
VALUE_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cc", "Zl", "Zp", "Cs"],
                                            codec="utf-8"), max_size=30)
CONTROL = st.sampled_from(["\r", "\n", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9b",
                           "\u2028", "\u2029", "\t", "\x00", "\x1c"])


def _sq(v: str) -> str:
    return "'" + v.replace("'", "'\"'\"'") + "'"


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True), VALUE_TEXT,
                       max_size=6))
def test_single_quoted_values_round_trip(d: dict[str, str]) -> None:
    data = "".join(f"{k}={_sq(v)}\n" for k, v in d.items()).encode()
    assert values(data) == d


# Control characters (issue 12): systemd ends a line at a lone CR, Python's splitlines at VT, FF,
# FS..RS, NEL, U+2028/9. Before the fix, each of these was kept inside the value and the first
# one reached a .network file as `DNS=fe80::53%x` + a line `Domains=evil.example`.


@pytest.mark.parametrize(
    ("data", "line", "key", "char"),
    [
        (b'IPADDR=10.0.0.5\nDNS1="fe80::53%x\rDomains=evil.example"\n', 2, "DNS1", "U+000D"),
        (b"A=1\rB=2\n", 1, "A", "U+000D"),  # unquoted: a shell would read A as "1\rB=2"
        (b"A=1\r\r\n", 1, "A", "U+000D"),  # one CR before LF is a CRLF line end, two are not
        (b"A='x\x0by'\n", 1, "A", "U+000B"),
        (b"A='x\x0cy'\n", 1, "A", "U+000C"),
        (b"A='\tindented'\n", 1, "A", "U+0009"),
        (b"A='esc \x1b[2J'\n", 1, "A", "U+001B"),
        (b"A=x\x7f\n", 1, "A", "U+007F"),
        ("A='next\x85line'\n".encode(), 1, "A", "U+0085"),
        ("A='csi\x9b'\n".encode(), 1, "A", "U+009B"),
        ("\nZONE='a\u2028b'\n".encode(), 2, "ZONE", "U+2028"),
        ("ZONE=\"a\u2029b\"\n".encode(), 1, "ZONE", "U+2029"),
        (b"export HOSTNAME='a\x1eb'\n", 1, "HOSTNAME", "U+001E"),
    ],
)
def test_control_characters_in_values_are_errors(data: bytes, line: int, key: str,
                                                 char: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse("opt/GuestInfo", data)
    e = info.value
    assert (e.entry, e.line, e.key) == ("opt/GuestInfo", line, key)
    assert char in e.reason and "control character" in e.reason


def test_crlf_line_ends_and_tabs_between_words_are_still_fine() -> None:
    assert values(b"A=1\r\nB='x y'\t# tab before a comment\r\n\tC=3\n") == {
        "A": "1", "B": "x y", "C": "3"}


@settings(max_examples=300, deadline=None)
@given(VALUE_TEXT, CONTROL, VALUE_TEXT, st.sampled_from(["single", "double"]),
       st.integers(min_value=0, max_value=3))
def test_a_control_character_anywhere_in_a_value_is_an_error(
        before: str, char: str, after: str, quoting: str, blank_lines: int) -> None:
    value = before + char + after
    if quoting == "single":
        text = _sq(value)
    else:
        text = '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'
    data = ("\n" * blank_lines + f"KEY={text}\n").encode()
    with pytest.raises(PayloadError) as info:
        parse("opt/fuzz", data)
    e = info.value
    if char == "\n":  # the line ends inside the quotes
        assert "unterminated" in e.reason
    else:
        assert "control character" in e.reason or "NUL" in e.reason
    assert (e.line, e.key) == (blank_lines + 1, "KEY")
