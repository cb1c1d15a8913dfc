"""docs/hosts.md shows no hand-written host configuration: every example in it is the output
of `fwcfg-agent host ...` for the command and the files the page shows, and this test runs
them all and compares. `python -m tests.test_host_docs` rewrites the outputs in the page.

The page's ```console blocks are of two kinds:
- `$ cat FILE` then the file's content: a file the later commands use;
- `$ fwcfg-agent host ...` (continued with a trailing backslash) then what it prints, stdout
  and stderr as they interleave.
"""

from __future__ import annotations

import io
import os
import re
import shlex
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from fwcfg_agent.cli import main

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs/hosts.md"
BLOCK = re.compile(r"^```console\n(.*?)^```\n", re.S | re.M)
# What host configuration looks like: only generated blocks may hold it.
HOST_SYNTAX = re.compile(r"-fw_cfg|<sysinfo|--fw-cfg-config|--sysinfo|qm set|(?:^|\s)-smbios\b"
                         r"|oem_strings|oemStrings|smbios11\.")


def _command(block: str) -> tuple[list[str], str]:
    lines = block.splitlines(keepends=True)
    words = lines[0][2:]
    i = 1
    while words.rstrip("\n").endswith("\\"):
        words = words.rstrip("\n")[:-1] + " " + lines[i].strip()
        i += 1
    return shlex.split(words), "".join(lines[i:])


def run(argv: list[str]) -> str:
    assert argv[:2] == ["fwcfg-agent", "host"], argv
    both = io.StringIO()
    with redirect_stdout(both), redirect_stderr(both):
        main(argv[1:])
    return both.getvalue()


def render(text: str, workdir: Path) -> str:
    """The page with every command's output made afresh (files written into WORKDIR, the
    commands run there)."""
    out: list[str] = []
    pos = 0
    old = Path.cwd()
    os.chdir(workdir)
    try:
        for m in BLOCK.finditer(text):
            block = m.group(1)
            out.append(text[pos:m.start(1)])
            pos = m.end(1)
            if block.startswith("$ cat "):
                first, _, content = block.partition("\n")
                (workdir / first[len("$ cat "):].strip()).write_text(content)
                out.append(block)
            elif block.startswith("$ fwcfg-agent host "):
                argv, _ = _command(block)
                head = block[:len(block) - len(_command(block)[1])]
                out.append(head + run(argv))
            else:
                out.append(block)
    finally:
        os.chdir(old)
    out.append(text[pos:])
    return "".join(out)


def test_every_example_is_the_helpers_output(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # preview's throwaway roots
    text = PAGE.read_text()
    assert render(text, tmp_path) == text, (
        "docs/hosts.md differs from what `fwcfg-agent host` prints: run "
        "`python -m tests.test_host_docs` and check the diff")


def test_no_hand_written_host_configuration() -> None:
    text = PAGE.read_text()
    commands = 0
    for m in re.finditer(r"^```[a-z]*\n(.*?)^```\n", text, re.S | re.M):
        block = m.group(1)
        if block.startswith("$ fwcfg-agent host "):
            commands += 1
            continue
        assert not HOST_SYNTAX.search(block), f"hand-written host configuration:\n{block}"
    for line in text.splitlines():  # inline code too
        for code in re.findall(r"`([^`]+)`", line):
            assert not re.search(r"name=opt/.*,(file|string)=|<entry name=", code), line
    assert commands >= 8


@pytest.mark.parametrize("form", ["qemu", "libvirt", "virt-install", "cloud-hypervisor",
                                  "proxmox", "incus"])
def test_every_host_is_shown(form: str) -> None:
    assert re.search(rf"^\$ fwcfg-agent host args --for {form} ", PAGE.read_text(), re.M), form


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        new = render(PAGE.read_text(), Path(tmp))
    PAGE.write_text(new)
    sys.stdout.write(f"rewrote {PAGE}\n")
