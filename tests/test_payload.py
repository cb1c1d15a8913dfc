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
        (b"A=1\nB=\x00\n", 2, None, "NUL"),
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


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,10}", fullmatch=True),
                       st.text(alphabet=st.characters(blacklist_characters="\n\r\x00",
                                                      codec="utf-8"),
                               max_size=30), max_size=6))
def test_single_quoted_values_round_trip(d: dict[str, str]) -> None:
    def q(v: str) -> str:
        return "'" + v.replace("'", "'\"'\"'") + "'"

    data = "".join(f"{k}={q(v)}\n" for k, v in d.items()).encode()
    assert values(data) == d
