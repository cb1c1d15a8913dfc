"""Kill the agent (a real SIGKILL of a child process) before each of its file-system mutations
in a run that removes a NIC's files, and in a rollback: every file is wholly old or wholly new
at every instant, the next run converges (`diff` finds nothing, no file of the removed NIC
remains, no temp file is left), as the project's DECISIONS for the safety work require (issue
12, part 4). The children run under the write guard (tests/agent.py): a write outside the root
is exit 86 and fails the test."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from tests.fakeroot import write_fwcfg_tree

from .agent import Outcome, agent, guard, run_child, temp_files, tree
from .conftest import make_guest_root

MAC1, MAC2 = "52:54:00:12:34:56", "52:54:00:12:34:57"
NICS = (("ens3", MAC1), ("ens4", MAC2))
NET1 = "etc/systemd/network/10-fwcfg-enx525400123456.network"
NET2 = "etc/systemd/network/10-fwcfg-enx525400123457.network"
# B: two NICs, one entry each. C: the second NIC's entry is gone, the rest changed.
B = {"opt/GuestInfo": b"HOSTNAME=b.example.com\nIPADDR=192.0.2.10/24\n",
     "opt/net1": f"HWADDR={MAC2}\nIPADDR=198.51.100.10/24\n".encode()}
C = {"opt/GuestInfo": b"HOSTNAME=c.example.com\nIPADDR=192.0.2.20/28\nGATEWAY=192.0.2.17\n"}

Files = dict[str, tuple[str, ...]]


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """Where the killed roots live: a tmpfs where one can be mounted (the agent fsyncs every
    step; a SIGKILL leaves the same files on any file system), else tmp_path."""
    d = tmp_path / "work"
    d.mkdir()
    mounted = os.geteuid() == 0 and shutil.which("mount") is not None and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(d)],
        capture_output=True).returncode == 0
    try:
        yield d
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(d)], check=False)


def run(root: Path, *args: str) -> Outcome:
    with guard.confined(root):
        return agent(root, *args)


def files(root: Path) -> Files:
    return tree(root, "etc", dirs=False)


def guest(root: Path, entries: dict[str, bytes]) -> Path:
    make_guest_root(root, entries, nics=NICS)
    cfg = root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("FORMATS='hostname hosts networkd'\n")
    (root / "etc/hostname").write_text("old-name\n")
    return root


def assert_whole(now: Files, old: Files, new: Files, n: int) -> None:
    """Every file is wholly as before the run or wholly as after it (temp files aside)."""
    for path in set(old) | set(new) | set(now):
        if path in now and ".fwcfg-agent." in path:
            continue  # a temp file: never read by anything, removed by the next run
        assert now.get(path) in (old.get(path), new.get(path)), (n, path, now.get(path))


def kill_at_every_step(base: Path, work: Path, args: tuple[str, ...],
                       check: Callable[[Path, int], None]) -> tuple[int, int]:
    """Copy `base`, run the agent with `args` in a child killed before its n-th mutation,
    call check(root, n), for n = 1, 2, ... until a run completes. Returns (kills, kills that
    left a temp file)."""
    with_temps = 0
    for n in range(1, 500):
        root = work / f"kill{n}"
        shutil.copytree(base, root, symlinks=True)
        proc = run_child(root, *args, kill_at=n)
        if proc.returncode != -9:
            assert proc.returncode == 0, proc.stderr
            shutil.rmtree(root)
            return n - 1, with_temps
        with_temps += bool(temp_files(root))
        check(root, n)
        shutil.rmtree(root)
    raise AssertionError("the run never completed")


def test_kill_while_a_nic_is_removed_converges(work: Path) -> None:
    base = guest(work / "base", B)
    assert run(base, "apply").code == 0
    assert (base / NET2).is_file()
    old = files(base)
    write_fwcfg_tree(base, C)
    expected = work / "expected"
    shutil.copytree(base, expected, symlinks=True)
    assert run(expected, "apply").code == 0
    new = files(expected)
    assert NET2 not in new and old != new

    def check(root: Path, n: int) -> None:
        assert_whole(files(root), old, new, n)
        r = run(root, "apply")  # the next boot
        assert r.code == 0, (n, r.err)
        d = run(root, "diff")
        assert d.code == 0, (n, d.out)
        assert not (root / NET2).exists(), n  # no orphan of the removed NIC
        assert files(root) == new, n
        assert temp_files(root) == [], n

    killed, with_temps = kill_at_every_step(base, work, ("apply",), check)
    assert killed > 10 and with_temps > 0, (killed, with_temps)


def test_apply_rollback_apply_leaves_no_orphans(guest_root: Path) -> None:
    guest(guest_root, B)
    assert run(guest_root, "apply").code == 0
    write_fwcfg_tree(guest_root, C)
    assert run(guest_root, "apply").code == 0
    expected = files(guest_root)
    assert not (guest_root / NET2).exists()
    r = run(guest_root, "rollback")
    assert r.code == 0, r.err
    assert (guest_root / NET2).is_file()  # B's files are back
    r = run(guest_root, "apply")  # fw_cfg still holds C
    assert r.code == 0, r.err
    assert not (guest_root / NET2).exists()
    assert run(guest_root, "diff").code == 0
    assert files(guest_root) == expected
    assert temp_files(guest_root) == []


def test_kill_during_rollback_converges(work: Path) -> None:
    base = guest(work / "base", B)
    before = files(base)
    assert run(base, "apply").code == 0
    after = files(base)
    assert before != after

    def check(root: Path, n: int) -> None:
        assert_whole(files(root), after, before, n)
        again = work / f"again{n}"
        shutil.copytree(root, again, symlinks=True)
        # a second rollback finishes the job: every file as before the apply
        r = run(root, "rollback")
        assert r.code in (0, 6), (n, r.err)
        assert "Traceback" not in r.err and "internal error" not in r.err, (n, r.err)
        assert files(root) == before, n
        assert temp_files(root) == [], n
        # or the next boot applies fw_cfg again, and converges
        r = run(again, "apply")
        assert r.code == 0, (n, r.err)
        assert run(again, "diff").code == 0, n
        assert files(again) == after, n
        assert temp_files(again) == [], n
        shutil.rmtree(again)

    killed, with_temps = kill_at_every_step(base, work, ("rollback",), check)
    assert killed > 5 and with_temps > 0, (killed, with_temps)


def test_kill_during_a_rollback_of_two_runs_converges(work: Path) -> None:
    """`rollback RUN` undoing two runs (B, then C which removed a NIC), killed at every step:
    each file is as before B, after B or after C; `rollback RUN` again finishes the job."""
    base = guest(work / "base", B)
    before = files(base)
    assert run(base, "apply").code == 0
    after_b = files(base)
    first = run(base, "journal", "--json").json()[-1]["run"]
    write_fwcfg_tree(base, C)
    assert run(base, "apply").code == 0
    after_c = files(base)
    assert len({str(sorted(s.items())) for s in (before, after_b, after_c)}) == 3

    def check(root: Path, n: int) -> None:
        now = files(root)
        for path in set(before) | set(after_b) | set(after_c) | set(now):
            if path in now and ".fwcfg-agent." in path:
                continue
            assert now.get(path) in (before.get(path), after_b.get(path), after_c.get(path)), \
                (n, path, now.get(path))
        r = run(root, "rollback", first)
        assert r.code in (0, 6), (n, r.err)
        assert "Traceback" not in r.err and "internal error" not in r.err, (n, r.err)
        assert files(root) == before, n
        assert temp_files(root) == [], n

    killed, with_temps = kill_at_every_step(base, work, ("rollback", first), check)
    assert killed > 5 and with_temps > 0, (killed, with_temps)
