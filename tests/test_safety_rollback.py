"""Rollback is exact and all or nothing (issue 12, part 4; the project's DECISIONS for the safety
work): every backup and record is checked before any file changes; bytes, modes (setuid, setgid
and sticky included) and symlinks come back exactly; each `rollback` steps one apply run further
back; directories the agent created go with the run that created them. A damaged journal never
leads it outside the root."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakeroot import write_fwcfg_tree

from .agent import Outcome, agent, guard, journal_runs, temp_files, tree
from .conftest import make_guest_root

STATE_DIR = "var/lib/fwcfg-agent"
NET = "etc/systemd/network/10-fwcfg-enx525400123456.network"


def payload(n: int) -> dict[str, bytes]:
    return {"opt/GuestInfo": f"HOSTNAME=guest{n}.example.com\nIPADDR=192.0.2.{10 + n}/24\n"
                             .encode()}


def guest(root: Path, n: int = 1) -> Path:
    make_guest_root(root, payload(n))
    cfg = root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("FORMATS='hostname hosts networkd'\n")
    return root


def run(root: Path, *args: str) -> Outcome:
    with guard.confined(root):
        return agent(root, *args)


def etc(root: Path) -> dict[str, tuple[str, ...]]:
    return tree(root, "etc")


def applied_runs(root: Path) -> list[str]:
    """Ids of the apply runs that changed files, oldest first (last record of each id)."""
    last: dict[str, dict[str, Any]] = {}
    for rec in journal_runs(root):
        last[str(rec.get("run"))] = rec
    return [r for r, rec in last.items() if rec.get("command") == "apply" and rec.get("files")]


def assert_state_error(r: Outcome) -> None:
    assert r.code == 6, (r.code, r.err)
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    assert len(r.errors()) == 1, r.err


def rewrite_journal(root: Path, old: str, new: str) -> None:
    """Replace a string in every journal record (a damaged or forged journal)."""
    path = root / STATE_DIR / "journal.jsonl"
    text = path.read_text()
    assert old in text, (old, text)
    path.write_text(text.replace(old, new))


# --- all or nothing ----------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_bad_backup_stops_rollback_before_any_change(guest_root: Path, damage: str) -> None:
    guest(guest_root)
    (guest_root / "etc/hostname").write_text("old-name\n")
    assert run(guest_root, "apply").code == 0
    (run_id,) = applied_runs(guest_root)
    # /etc/hosts sorts after /etc/hostname: a rollback that checks as it goes has already
    # restored /etc/hostname when it finds this
    backup = guest_root / STATE_DIR / "backups" / run_id / "etc/hosts"
    assert backup.is_file()
    if damage == "missing":
        backup.unlink()
    else:
        backup.write_bytes(b"127.0.0.1\tsomething else\n")
    before = etc(guest_root)
    r = run(guest_root, "rollback")
    assert_state_error(r)
    assert etc(guest_root) == before


# --- exact restore -------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["hostname.real", "/etc/hostname.real", "../etc/hostname.real"])
def test_a_symlink_comes_back_as_the_same_symlink(guest_root: Path, target: str) -> None:
    guest(guest_root)
    (guest_root / "etc/hostname.real").write_text("linked-name\n")
    (guest_root / "etc/hostname").symlink_to(target)
    before = etc(guest_root)
    assert run(guest_root, "apply").code == 0
    # the final component is never followed: the link is replaced, its target left alone
    assert not (guest_root / "etc/hostname").is_symlink()
    assert (guest_root / "etc/hostname").read_text() == "guest1.example.com\n"
    assert (guest_root / "etc/hostname.real").read_text() == "linked-name\n"
    r = run(guest_root, "rollback")
    assert r.code == 0, r.err
    assert os.readlink(guest_root / "etc/hostname") == target
    assert etc(guest_root) == before


@pytest.mark.parametrize("mode", [0o4751, 0o2755, 0o1644, 0o6711], ids=oct)
def test_special_mode_bits_come_back(guest_root: Path, mode: int) -> None:
    guest(guest_root)
    hostname = guest_root / "etc/hostname"
    hostname.write_bytes(b"old-name\r\n\x00binary\xff")
    os.chmod(hostname, mode)
    assert hostname.stat().st_mode & 0o7777 == mode
    before = etc(guest_root)
    assert run(guest_root, "apply").code == 0
    assert hostname.stat().st_mode & 0o7777 == 0o644
    r = run(guest_root, "rollback")
    assert r.code == 0, r.err
    assert f"{hostname.stat().st_mode & 0o7777:04o}" == f"{mode:04o}"
    assert hostname.read_bytes() == b"old-name\r\n\x00binary\xff"
    assert etc(guest_root) == before


def test_created_directories_go_with_a_full_rollback(guest_root: Path) -> None:
    guest(guest_root)
    assert not (guest_root / "etc/systemd").exists()
    before = etc(guest_root)
    assert run(guest_root, "apply").code == 0
    assert (guest_root / NET).is_file()
    r = run(guest_root, "rollback")
    assert r.code == 0, r.err
    assert not (guest_root / "etc/systemd").exists()
    assert etc(guest_root) == before


def test_a_directory_that_holds_other_files_stays(guest_root: Path) -> None:
    guest(guest_root)
    assert run(guest_root, "apply").code == 0
    (guest_root / "etc/systemd/network/50-admin.network").write_text("[Match]\nName=x\n")
    assert run(guest_root, "rollback").code == 0
    assert not (guest_root / NET).exists()
    assert (guest_root / "etc/systemd/network/50-admin.network").is_file()


# --- stepping back, no toggling ----------------------------------------------------------------

def _three_runs(root: Path) -> list[dict[str, tuple[str, ...]]]:
    """Apply payloads 1, 2, 3 in turn; the etc tree before each and after the last."""
    guest(root, 1)
    (root / "etc/hostname").write_text("old-name\n")
    states = [etc(root)]
    for n in (1, 2, 3):
        write_fwcfg_tree(root, payload(n))
        r = run(root, "apply")
        assert r.code == 0, r.err
        states.append(etc(root))
    assert len({json.dumps(s, sort_keys=True) for s in states}) == 4
    return states


def test_each_rollback_steps_one_run_further_back(guest_root: Path) -> None:
    states = _three_runs(guest_root)
    for expected in (states[2], states[1], states[0]):
        r = run(guest_root, "rollback")
        assert r.code == 0, r.err
        assert etc(guest_root) == expected
    # nothing left to undo: the rollbacks themselves are not undone
    r = run(guest_root, "rollback")
    assert r.code in (0, 6), r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert etc(guest_root) == states[0]


def test_rollback_run_undoes_it_and_every_later_run(guest_root: Path) -> None:
    states = _three_runs(guest_root)
    first, second, _third = applied_runs(guest_root)
    r = run(guest_root, "rollback", second)
    assert r.code == 0, r.err
    assert etc(guest_root) == states[1]
    # the next rollback steps further back, to before the first run
    r = run(guest_root, "rollback")
    assert r.code == 0, r.err
    assert etc(guest_root) == states[0]
    assert first in applied_runs(guest_root)  # the journal still lists the runs undone


def test_apply_after_rollback_goes_forward_again(guest_root: Path) -> None:
    states = _three_runs(guest_root)
    assert run(guest_root, "rollback").code == 0
    assert run(guest_root, "rollback").code == 0
    assert etc(guest_root) == states[1]
    r = run(guest_root, "apply")  # fw_cfg still holds payload 3
    assert r.code == 0, r.err
    assert etc(guest_root) == states[3]
    assert run(guest_root, "diff").code == 0
    assert temp_files(guest_root) == []


# --- a damaged or forged journal: exit 6, nothing changed, nothing outside touched --------

@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    return d


def _applied(root: Path) -> str:
    guest(root)
    (root / "etc/hostname").write_text("old-name\n")
    assert run(root, "apply").code == 0
    (run_id,) = applied_runs(root)
    return run_id


@pytest.mark.parametrize("hostile", ["/etc/../../outside/keep",
                                     "/etc/systemd/network/../../../../outside/keep",
                                     "/etc/passwd", "etc/systemd/network/x.network",
                                     "/etc/systemd/network/", "/etc//hostname"])
def test_journal_path_outside_is_refused(guest_root: Path, outside: Path, hostile: str) -> None:
    _applied(guest_root)
    network = (guest_root / NET).read_bytes()
    (outside / "keep").write_bytes(network)  # same digest: a digest check would not save it
    (guest_root / "etc/passwd").write_bytes(network)
    rewrite_journal(guest_root, "/" + NET, hostile)
    before = etc(guest_root)
    r = run(guest_root, "rollback")
    assert_state_error(r)
    assert etc(guest_root) == before
    assert (outside / "keep").read_bytes() == network


def _secret(outside: Path) -> bytes:
    data = b"secret-" + hashlib.sha256(str(outside).encode()).hexdigest().encode() + b"\n"
    (outside / "secret").write_bytes(data)
    return data


def test_journal_backup_outside_is_refused(guest_root: Path, outside: Path) -> None:
    run_id = _applied(guest_root)
    secret = _secret(outside)
    rewrite_journal(guest_root, f"backups/{run_id}/etc/hostname",
                    "backups/" + "../" * 5 + "outside/secret")
    rewrite_journal(guest_root, hashlib.sha256(b"old-name\n").hexdigest(),
                    hashlib.sha256(secret).hexdigest())
    before = etc(guest_root)
    r = run(guest_root, "rollback")
    assert_state_error(r)
    assert etc(guest_root) == before


def test_journal_backup_of_another_path_is_refused(guest_root: Path) -> None:
    """Backups are backups/<run>/<the path>: /etc/hosts' backup is no backup of
    /etc/hostname, even with a matching digest."""
    run_id = _applied(guest_root)
    hosts_backup = guest_root / STATE_DIR / "backups" / run_id / "etc/hosts"
    rewrite_journal(guest_root, f"backups/{run_id}/etc/hostname", f"backups/{run_id}/etc/hosts")
    rewrite_journal(guest_root, hashlib.sha256(b"old-name\n").hexdigest(),
                    hashlib.sha256(hosts_backup.read_bytes()).hexdigest())
    before = etc(guest_root)
    r = run(guest_root, "rollback")
    assert_state_error(r)
    assert etc(guest_root) == before


def _damage_record(root: Path, run_id: str, damage: dict[str, Any]) -> None:
    path = root / STATE_DIR / "journal.jsonl"
    lines = []
    for line in path.read_bytes().splitlines():
        rec = json.loads(line)
        if rec.get("run") == run_id:
            files = rec.get("files") or [{}]
            files[0].update(damage)
            rec["files"] = files
        lines.append(json.dumps(rec).encode())
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize("damage", [{"path": 3}, {"sha256_before": 5}, {"backup": ["x"]},
                                    {"mode_before": "rwx"}, {"path": None}])
def test_rollback_needing_a_damaged_record_is_exit_6(guest_root: Path,
                                                     damage: dict[str, Any]) -> None:
    guest(guest_root, 1)
    (guest_root / "etc/hostname").write_text("old-name\n")
    assert run(guest_root, "apply").code == 0
    write_fwcfg_tree(guest_root, payload(2))
    assert run(guest_root, "apply").code == 0
    first, second = applied_runs(guest_root)
    _damage_record(guest_root, second, damage)
    before = etc(guest_root)
    for args in (("rollback", first), ("rollback", second)):
        r = run(guest_root, *args)
        assert_state_error(r)
        assert etc(guest_root) == before
    # `journal` still lists the good run and skips the damaged one, with a warning
    r = run(guest_root, "journal", "--json")
    assert r.code == 0 and r.warnings(), r.err
    assert first in [x["run"] for x in r.json()]
