"""The escaping functions (fwcfg_agent/render/escape.py), one per format, against their readers:
each returns its value so that the reader takes it as exactly that value, or refuses it.

shell: bash and dash read the word back byte for byte; keyfile: GKeyFile's unescaping rules,
and NetworkManager itself (nmcli --offline) for a sample; yaml: a YAML parser (PyYAML) reads the
same string or number back; unit, word, hosts: what passes is only what their readers take
literally. No function but yaml and comment lets a control character through.
"""

from __future__ import annotations

import subprocess

import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fwcfg_agent.errors import AgentError
from fwcfg_agent.render import escape
from fwcfg_agent.render.filters import FILTERS, keyfile, shquote, yamlstr

# Anything a Python str can hold that can also be passed to a process: no NUL, no lone
# surrogates. Newlines included: the payload parser cannot produce them, shquote must cope.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
# The same without the control characters that every line-based format refuses.
ONE_LINE = st.text(st.characters(exclude_categories=["Cs", "Cc", "Zl", "Zp"]))
SHELL_NASTIES = st.text(st.sampled_from(list("'\"`$(){};&|<>\\\t *?[]~!#=% ab")), max_size=40)
CONTROL = sorted(escape.CONTROL)

# The value as a command's word, then as an assignment line like those of a sourced ifcfg file.
SCRIPT = r"""
set -eu
printf '%s' {quoted}
printf '\0'
eval "$1"
printf '%s' "$X"
"""


def _round_trip(value: str) -> None:
    quoted = shquote(value)
    for shell in ("bash", "dash"):
        out = subprocess.run(
            [shell, "-c", SCRIPT.format(quoted=quoted), shell, f"X={quoted}"],
            capture_output=True, check=True, env={"LC_ALL": "C"}, cwd="/",
        ).stdout
        assert out == value.encode() + b"\0" + value.encode(), (shell, value, quoted)


@settings(max_examples=150, deadline=None)
@given(ONE_LINE)
def test_shquote_round_trips_any_line_of_text(value: str) -> None:
    _round_trip(value)


@settings(max_examples=150, deadline=None)
@given(SHELL_NASTIES)
def test_shquote_round_trips_shell_syntax(value: str) -> None:
    if "\t" in value:
        with pytest.raises(escape.EscapeError):
            shquote(value)
        return
    _round_trip(value)


def test_shquote_known_values() -> None:
    assert shquote("") == "''"
    assert shquote("a b") == "'a b'"
    assert shquote("it's") == "'it'\"'\"'s'"
    for value in ("$(touch /tmp/pwned)", "`id`", "a;b", "'", '"', "x y'z", "\\", "héllo ✓"):
        _round_trip(value)


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_line_based_escapers_refuse_control_characters(value: str) -> None:
    """Every escaper but yaml and comment: a value with a control character in it fails with
    EscapeError (exit code 3), never reaches the file."""
    bad = any(c in escape.CONTROL for c in value)
    for fn in (escape.shell, escape.keyfile, escape.unit, escape.word, escape.hosts,
               escape.shell_name):
        try:
            out = fn(value)
        except escape.EscapeError as e:
            assert isinstance(e, AgentError) and e.exit_code == 3
            continue
        assert not bad, (fn.__name__, value)
        assert not any(c in escape.CONTROL for c in out)


@pytest.mark.parametrize("char", CONTROL)
def test_each_control_character_is_refused(char: str) -> None:
    for fn in (escape.shell, escape.keyfile, escape.unit, escape.word, escape.hosts):
        with pytest.raises(escape.EscapeError, match="U\\+|cannot carry"):
            fn("a" + char + "b")
    for fn in (escape.yaml, escape.comment):  # escaped, not refused
        out = fn("a" + char + "b")
        assert out.isascii() and out.isprintable()


def _gkeyfile_unescape(s: str) -> str:
    """GKeyFile's string unescaping (g_key_file_parse_value_as_string): \\s \\n \\t \\r \\\\;
    any other escape is an error."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            nxt = s[i + 1]
            out.append({"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


@settings(max_examples=300, deadline=None)
@given(ONE_LINE)
def test_keyfile_round_trips_through_gkeyfile_rules(value: str) -> None:
    try:
        out = keyfile(value)
    except escape.EscapeError:
        assert ";" in value or "," in value
        return
    # GKeyFile strips the whitespace around the value on the line: the escapes must survive it
    assert out == out.strip(" \t")
    assert _gkeyfile_unescape(out) == value


def test_keyfile_known_values() -> None:
    assert keyfile("fwcfg-eth0") == "fwcfg-eth0"
    assert keyfile(" x ") == "\\sx\\s"
    assert keyfile("  ") == "\\s\\s"
    assert keyfile("a\\b") == "a\\\\b"
    for bad in ("a;b", "a,b", "a\nb", "a\rb"):
        with pytest.raises(escape.EscapeError):
            keyfile(bad)


def test_keyfile_values_read_back_by_networkmanager() -> None:
    values = ["fwcfg-x", " lead", "trail ", "back\\slash", "ümlaut ✓", "#not a comment",
              "[not a group]", "a=b"]
    for value in values:
        text = (f"[connection]\nid={keyfile(value)}\ntype=ethernet\ninterface-name=eth0\n"
                "[ipv4]\nmethod=disabled\n[ipv6]\nmethod=ignore\n")
        r = subprocess.run(["nmcli", "--offline", "-g", "connection.id", "connection", "modify",
                            "connection.autoconnect", "yes"], input=text.encode(),
                           capture_output=True)
        assert r.returncode == 0, r.stderr.decode()
        # nmcli writes the connection back as a keyfile: the id line is GKeyFile-escaped again
        (line,) = [x for x in r.stdout.decode().splitlines() if x.startswith("id=")]
        assert _gkeyfile_unescape(line[3:]) == value


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXT, st.integers(min_value=0, max_value=2**32)))
def test_yaml_reads_back_the_same_value(value: object) -> None:
    out = yamlstr(value)
    assert "\n" not in out and out.isascii()
    # libyaml is netplan's parser. Before: a character beyond U+FFFF became a JSON surrogate
    # pair ("\ud83d\ude00"), which libyaml refuses ("invalid Unicode character escape code").
    for loader in (pyyaml.CSafeLoader, pyyaml.SafeLoader):
        assert pyyaml.load(f"key: {out}\n", Loader=loader) == {"key": value}


def test_yaml_astral_character() -> None:
    assert yamlstr("\U0001F600") == '"\\U0001F600"'
    assert pyyaml.load('k: "\\U0001F600"', Loader=pyyaml.CSafeLoader) == {"k": "\U0001F600"}


@settings(max_examples=300, deadline=None)
@given(ONE_LINE)
def test_unit_passes_only_single_literal_words(value: str) -> None:
    try:
        out = escape.unit(value)
    except escape.EscapeError:
        assert (not value or any(c.isspace() or c in "\"'\\%" for c in value))
        return
    assert out == value and out and not any(c.isspace() for c in out)


def test_word_hosts_shell_name() -> None:
    for ok in ("10.0.0.0/8", "2001:db8::1", "fe80::1", "eth0", "9000", "enx525400aa0001",
               "mac/52:54:00:aa:00:01/=x"[:3]):
        assert escape.word(ok) == ok
    for bad in ("", "a b", "a;b", "$IFACE", "'x'", "a*", "fe80::1%eth0", "é"):
        with pytest.raises(escape.EscapeError):
            escape.word(bad)
    for ok in ("web1.example.com", "127.0.1.1", "2001:db8::1"):
        assert escape.hosts(ok) == ok
    for bad in ("", "a b", "a#b", "a\tb", "a/b", "_x"):
        with pytest.raises(escape.EscapeError):
            escape.hosts(bad)
    for ok in ("ZONE", "_x", "NM_CONTROLLED", "lower_case"):
        assert escape.shell_name(ok) == ok
    for bad in ("", "1X", "A-B", "A B", "A=B", "$A"):
        with pytest.raises(escape.EscapeError):
            escape.shell_name(bad)


def test_every_escaper_is_registered_as_a_filter() -> None:
    for name, fn in (("sh", escape.shell), ("shquote", escape.shell),
                     ("shvar", escape.shell_name), ("word", escape.word),
                     ("keyfile", escape.keyfile), ("unit", escape.unit), ("yaml", escape.yaml),
                     ("yamlstr", escape.yaml), ("hosts", escape.hosts),
                     ("comment", escape.comment)):
        assert FILTERS[name] is fn
