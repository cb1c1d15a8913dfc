"""`shquote`, the one thing between a payload value and a shell: any text comes back unchanged."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from fwcfg_agent.render.filters import shquote

# Anything a Python str can hold that can also be passed to a process: no NUL, no lone
# surrogates. Newlines included: the payload parser cannot produce them, shquote must cope.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
SHELL_NASTIES = st.text(st.sampled_from(list("'\"`$(){};&|<>\\\n\t *?[]~!#=% ab")), max_size=40)

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
@given(TEXT)
def test_shquote_round_trips_any_text(value: str) -> None:
    _round_trip(value)


@settings(max_examples=150, deadline=None)
@given(SHELL_NASTIES)
def test_shquote_round_trips_shell_syntax(value: str) -> None:
    _round_trip(value)


def test_shquote_known_values() -> None:
    assert shquote("") == "''"
    assert shquote("a b") == "'a b'"
    assert shquote("it's") == "'it'\"'\"'s'"
    for value in ("$(touch /tmp/pwned)", "`id`", "a;b", "'", '"', "\n", "x\ny'z"):
        _round_trip(value)
