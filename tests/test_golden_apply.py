"""Whole runs against golden output: `apply --dry-run` on guest-like roots, every format.

The dry-run text lists every file the run would write (path, mode, format) with its content, so
each golden file pins both the set of files and their bytes. FWCFG_REGEN_GOLDEN=1 rewrites them
(read the diff before committing it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .agent import agent, snapshot
from .conftest import REPO, make_guest_root

GOLDEN = Path(__file__).parent / "golden/apply"
NICS = (("enp0s2", "52:54:00:12:34:56"), ("enp0s3", "52:54:00:12:34:57"))
CASES: dict[str, dict[str, bytes]] = {
    "somlo": {"opt/GuestInfo": b"HOSTNAME=guest1\nIPADDR=10.0.2.15\n"},
    "examples": {"opt/" + p.stem.replace("__", "/"): p.read_bytes()
                 for p in sorted((REPO / "examples").glob("*.env"))},
    # issue 14: one example per shape (examples/vlan, bond, bridge)
    **{f"shape-{shape}": {"opt/" + p.stem.replace("__", "/"): p.read_bytes()
                          for p in sorted((REPO / "examples" / shape).glob("*.env"))}
       for shape in ("vlan", "bond", "bridge")},
    "dhcp-and-static": {
        "opt/org.example/a": b"DEVICE=enp0s2\nBOOTPROTO=dhcp\nMTU=1400\n",
        "opt/org.example/b": b"HWADDR=52:54:00:12:34:57\nIPADDR=192.0.2.5/28\n"
                             b"GATEWAY=192.0.2.1\nROUTE1='default via 2001:db8::1'\n"
                             b"IPV6ADDR=2001:db8::5\nHOSTNAME=mixed.example.org\n",
    },
}
FORMATS = ("networkd", "netplan", "nm", "ifcfg", "ifupdown")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_dry_run_matches_golden(tmp_path: Path, case: str, fmt: str) -> None:
    root = make_guest_root(tmp_path / "root", CASES[case], nics=NICS)
    before = snapshot(root, "etc", "var")
    r = agent(root, "apply", "--dry-run", "--format", "hostname", "--format", "hosts",
              "--format", fmt)
    assert r.code == 0, r.err
    assert snapshot(root, "etc", "var") == before  # a dry run writes nothing
    golden = GOLDEN / case / f"{fmt}.txt"
    if os.environ.get("FWCFG_REGEN_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(r.out)
    assert r.out == golden.read_text()


@pytest.mark.parametrize("case", sorted(CASES))
def test_apply_writes_exactly_what_dry_run_showed(tmp_path: Path, case: str) -> None:
    root = make_guest_root(tmp_path / "root", CASES[case], nics=NICS)
    shown = agent(root, "apply", "--dry-run").out
    assert agent(root, "apply").code == 0
    blocks = [b for b in shown.split("### Write ")[1:]]
    written = {b.split(" ", 1)[0] for b in blocks}
    for block in blocks:
        header, content = block.split("\n", 1)
        path, mode = header.split(" ")[0], header.split("mode ")[1][:4]
        p = root / path.lstrip("/")
        assert p.read_text() == content, path
        assert f"{p.stat().st_mode & 0o7777:04o}" == mode, path
    etc = {"/" + k for k in snapshot(root, "etc")} - {"/etc/os-release"}
    assert etc == written  # nothing more, nothing less
