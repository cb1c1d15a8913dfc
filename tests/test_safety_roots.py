"""Broken roots and roots that try to lead the agent outside (issue 12, parts 2 and 3; the
decisions are in the project's DECISIONS for the safety work).

A root the agent cannot use (a path of the wrong type, read-only, full) is exit 7 with one
error line naming the path, no traceback, and nothing half-written: what a run changed before
it failed is put back. Nothing the agent does under --root touches anything outside it: every
agent run here is made under `guard.confined(root)` (tests/agent.py), which refuses and reports
any write, rename, unlink or mkdir outside the root, and the tests also check sentinel files
outside.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.fakeroot import write_fwcfg_tree, write_netdev

from .agent import Outcome, agent, guard, journal_runs, temp_files, tree
from .conftest import make_guest_root

SOMLO = {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\nIPADDR=192.0.2.10\n"}
MAC1, MAC2 = "52:54:00:12:34:56", "52:54:00:12:34:57"
NET1 = "etc/systemd/network/10-fwcfg-enx525400123456.network"
NET2 = "etc/systemd/network/10-fwcfg-enx525400123457.network"
STATE_DIR = "var/lib/fwcfg-agent"
FORMATS = {"networkd": "FORMATS='hostname hosts networkd'\n",
           "ifcfg": "FORMATS='hostname hosts ifcfg'\n"}


def guest(root: Path, entries: dict[str, bytes] | None = None, fmt: str = "networkd",
          conf: str = "", **kw: Any) -> Path:
    make_guest_root(root, SOMLO if entries is None else entries, **kw)
    cfg = root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(FORMATS[fmt] + conf)
    return root


def run(root: Path, *args: str) -> Outcome:
    """The agent, allowed to write only under root."""
    with guard.confined(root):
        return agent(root, *args)


def assert_root_error(r: Outcome, code: int, *names: str) -> str:
    """Exit `code`, ONE error line naming (one of) `names`, no traceback, no internal error."""
    assert r.code == code, (r.code, r.err)
    assert "Traceback" not in r.err and "internal error" not in r.err, r.err
    errors = r.errors()
    assert len(errors) == 1, r.err
    assert any(n in errors[0] for n in names), (names, errors[0])
    return errors[0]


def etc_files(root: Path) -> dict[str, tuple[str, ...]]:
    """Files and symlinks under etc (directories the agent may leave empty are not compared)."""
    return tree(root, "etc", dirs=False)


def by_run(root: Path, before: int) -> dict[str, list[dict[str, Any]]]:
    """The journal records appended since `before` records, grouped by run id."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rec in journal_runs(root)[before:]:
        out.setdefault(str(rec.get("run")), []).append(rec)
    return out


# --- file-system helpers: tmpfs, immutable flags ---------------------------------------------

@pytest.fixture
def mounts() -> Iterator[Callable[..., Path]]:
    """mount(path, size=..., ro=False): a tmpfs at path (skips the test where that is not
    possible); unmounted at the end."""
    done: list[Path] = []

    def mount(path: Path, *, size: str = "64k", ro: bool = False) -> Path:
        if os.geteuid() != 0 or not shutil.which("mount"):
            pytest.skip("mounting a tmpfs needs root and mount(8)")
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size}" + (",ro" if ro else "")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        done.append(path)
        return path

    yield mount
    for path in reversed(done):
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def immutable() -> Iterator[Callable[[Path], None]]:
    """immutable(path): chattr +i (skips where the file system does not support it); undone at
    the end so that the temp dir can be removed."""
    done: list[Path] = []

    def set_flag(path: Path) -> None:
        if not shutil.which("chattr"):
            pytest.skip("chattr is not installed")
        r = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot make {path} immutable: {r.stderr.strip()}")
        done.append(path)

    yield set_flag
    for path in reversed(done):
        subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)


def fill(directory: Path) -> None:
    """Use up every byte of the file system holding `directory`."""
    with open(directory / ".filler", "wb", buffering=0) as f:
        for chunk in (b"\0" * 65536, b"\0" * 4096, b"\0"):
            while True:
                try:
                    if not f.write(chunk):
                        break
                except OSError as e:
                    assert e.errno == errno.ENOSPC, e
                    break


# --- the guard itself (a harness check: these pass on any agent) ---------------------------

def test_guard_refuses_and_reports_writes_outside(tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "link").symlink_to(tmp_path)  # a directory symlink leading out of `inside`
    before = len(guard.violations)
    with pytest.raises(AssertionError, match="write outside"), guard.confined(inside):
        (inside / "ok").write_text("fine")
        with pytest.raises(PermissionError):
            (inside / "link" / "escaped").write_text("no")
        fd = os.open(inside, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(PermissionError):
                os.mkdir("../escaped-dir", dir_fd=fd)
        finally:
            os.close(fd)
    assert len(guard.violations) == before + 2
    del guard.violations[before:]  # seen: do not fail this test at teardown
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "escaped-dir").exists()
    assert (inside / "ok").read_text() == "fine"


# --- A. roots the agent cannot use: exit 7 ---------------------------------------------------

def test_hostname_is_a_directory(guest_root: Path) -> None:
    guest(guest_root)
    (guest_root / "etc/hostname").mkdir()
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    assert_root_error(r, 7, "etc/hostname")
    assert etc_files(guest_root) == before
    assert (guest_root / "etc/hostname").is_dir()


def test_network_dir_is_a_file(guest_root: Path) -> None:
    guest(guest_root)
    (guest_root / "etc/systemd").mkdir(parents=True)
    (guest_root / "etc/systemd/network").write_text("not a directory\n")
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    assert_root_error(r, 7, "etc/systemd/network")
    assert etc_files(guest_root) == before
    assert temp_files(guest_root) == []


def test_state_dir_is_a_file(guest_root: Path) -> None:
    guest(guest_root)
    (guest_root / "var/lib").mkdir(parents=True)
    (guest_root / STATE_DIR).write_text("not a directory\n")
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    assert_root_error(r, 7, STATE_DIR)
    assert etc_files(guest_root) == before
    assert (guest_root / STATE_DIR).read_text() == "not a directory\n"


def test_lock_is_a_directory(guest_root: Path) -> None:
    guest(guest_root)
    (guest_root / "run/fwcfg-agent.lock").mkdir(parents=True)
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    assert_root_error(r, 7, "run/fwcfg-agent.lock")
    assert etc_files(guest_root) == before


def test_root_without_run_dir_is_fine_and_quiet(guest_root: Path) -> None:
    guest(guest_root)
    assert not (guest_root / "run").exists()
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert "fwcfg-agent.lock" not in r.err and "cannot open" not in r.err, r.err
    assert (guest_root / "etc/hostname").read_text() == "guest1.example.com\n"



def _agent_process(root: Path) -> subprocess.CompletedProcess[str]:
    """The agent in a process of its own, as the unit runs it: a hang fails the test."""
    repo = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "fwcfg_agent", "apply", "--root", str(root)],
                          cwd=repo, capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "PYTHONPATH": str(repo)})


@pytest.mark.parametrize("configured", [False, True], ids=["first-run", "fast-path"])
def test_fifo_in_place_of_a_file_does_not_hang(guest_root: Path, configured: bool) -> None:
    """A FIFO where the agent reads a file (here /etc/hosts, which it also manages): opening it
    would wait for a writer, so the unit hung until its timeout. Now it is not a file to the
    reader, and the writer names the path: exit 7, one line, on the full path and the fast."""
    guest(guest_root)
    if configured:
        assert _agent_process(guest_root).returncode == 0
    hosts = guest_root / "etc/hosts"
    hosts.unlink(missing_ok=True)
    os.mkfifo(hosts)
    r = _agent_process(guest_root)
    assert r.returncode == 7, r.stderr
    assert "etc/hosts" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert stat.S_ISFIFO(hosts.lstat().st_mode)


def test_device_in_place_of_an_input_is_not_read(guest_root: Path) -> None:
    """A character device where the agent reads an input (os-release; a device like /dev/zero
    would never end): not a file to the reader, read as absent."""
    guest(guest_root)
    release = guest_root / "etc/os-release"
    release.unlink(missing_ok=True)
    try:
        os.mknod(release, 0o644 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    r = _agent_process(guest_root)
    assert r.returncode == 0, r.stderr
    assert (guest_root / "etc/hostname").read_text() == "guest1.example.com\n"


# state.json that is valid JSON of the wrong shape: the guest must still come up.
BAD_STATES = {
    "list": b"[]\n",
    "null": b"null\n",
    "files-not-a-map": b'{"version": 1, "files": 3}\n',
    "entry-not-a-map": b'{"version": 1, "files": {"/etc/hostname": "x"}}\n',
    "entry-wrong-types": (b'{"version": 1, "files": {"/etc/hostname": {"sha256": 5, '
                          b'"mode": "x", "format": null, "original": 7, "shared": "no"}}}\n'),
}


@pytest.mark.parametrize("damage", sorted(BAD_STATES))
def test_damaged_state_is_moved_aside(guest_root: Path, damage: str) -> None:
    guest(guest_root)
    state = guest_root / STATE_DIR / "state.json"
    state.parent.mkdir(parents=True)
    state.write_bytes(BAD_STATES[damage])
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err and "internal error" not in r.err and not r.errors()
    warned = [w for w in r.warnings() if "state.json" in w]
    assert len(warned) == 1, r.err
    assert (guest_root / "etc/hostname").read_text() == "guest1.example.com\n"
    assert (guest_root / NET1).is_file()
    assert (state.parent / "state.json.damaged").read_bytes() == BAD_STATES[damage]
    saved = json.loads(state.read_bytes())
    assert isinstance(saved, dict) and "/etc/hostname" in state.read_text()


BAD_RECORDS = [
    b'{"run": 5, "command": "apply", "outcome": "changed", "files": "x"}',
    b'{"run": "20300101T000000.000000Z-aaaaaa", "command": "apply", "outcome": "changed", '
    b'"files": [{"path": 3, "action": [], "backup": 7}]}',
    b'{"run": "20300101T000000.000001Z-bbbbbb", "command": ["apply"], "files": {}}',
    b'{"run": "20300101T000000.000002Z-cccccc", "command": "apply", "outcome": "changed", '
    b'"files": ["/etc/hostname"]}',
    b"[1, 2]",
    b'"a string"',
    b"null",
]


@pytest.mark.parametrize("as_json", [False, True])
def test_journal_skips_records_of_the_wrong_shape(guest_root: Path, as_json: bool) -> None:
    guest(guest_root)
    assert run(guest_root, "apply").code == 0
    good = journal_runs(guest_root)[-1]  # a run's last record counts (pending, then final)
    assert {r["run"] for r in journal_runs(guest_root)} == {good["run"]}
    with open(guest_root / STATE_DIR / "journal.jsonl", "ab") as f:
        f.write(b"\n".join(BAD_RECORDS) + b"\n")
    r = run(guest_root, "journal", *(["--json"] if as_json else []))
    assert r.code == 0, r.err
    assert "Traceback" not in r.err and "internal error" not in r.err and not r.errors()
    assert r.warnings(), "a skipped record deserves a warning"
    if as_json:
        runs = r.json()
        assert [x["run"] for x in runs] == [good["run"]]
    else:
        assert good["run"] in r.out
        for bad in ("aaaaaa", "bbbbbb", "cccccc"):
            assert bad not in r.out


# --- A. full and read-only file systems --------------------------------------------------------

def test_etc_full(guest_root: Path, mounts: Callable[..., Path]) -> None:
    mounts(guest_root / "etc")
    guest(guest_root)
    fill(guest_root / "etc")
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    line = assert_root_error(r, 7, "etc/")
    assert re.search(r"/etc/\S", line), line
    assert etc_files(guest_root) == before
    assert temp_files(guest_root) == []


def test_state_dir_full(guest_root: Path, mounts: Callable[..., Path]) -> None:
    guest(guest_root)
    (guest_root / "etc/hostname").write_text("old-name\n")  # a backup is needed
    mounts(guest_root / STATE_DIR)
    fill(guest_root / STATE_DIR)
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    assert_root_error(r, 7, STATE_DIR)
    assert etc_files(guest_root) == before
    assert temp_files(guest_root) == []


def test_full_network_dir_after_writing_began_is_undone(guest_root: Path,
                                                        mounts: Callable[..., Path]) -> None:
    """hostname and hosts are on a roomy file system, the network directory on a full one:
    whatever the run changed before it hit ENOSPC is put back, and the journal says so."""
    guest(guest_root)
    (guest_root / "etc/hostname").write_text("old-name\n")
    mounts(guest_root / "etc/systemd/network")
    fill(guest_root / "etc/systemd/network")
    before = etc_files(guest_root)
    count = len(journal_runs(guest_root))
    r = run(guest_root, "apply")
    assert_root_error(r, 7, "etc/systemd/network")
    assert etc_files(guest_root) == before
    assert temp_files(guest_root) == []
    runs = by_run(guest_root, count)
    assert len(runs) == 1, runs
    (records,) = runs.values()
    assert records[-1]["outcome"] == "failed", records
    shown = run(guest_root, "journal", "--json").json()
    assert shown[-1]["run"] == records[-1]["run"] and shown[-1]["outcome"] == "failed"


def _ro_etc(root: Path, immutable: Callable[[Path], None], mounts: Callable[..., Path]) -> str:
    immutable(root / "etc")
    return "etc"


def _immutable_hosts(root: Path, immutable: Callable[[Path], None],
                     mounts: Callable[..., Path]) -> str:
    immutable(root / "etc/hosts")
    return "etc/hosts"


def _ro_mount_network(root: Path, immutable: Callable[[Path], None],
                      mounts: Callable[..., Path]) -> str:
    mounts(root / "etc/systemd/network", ro=True)
    return "etc/systemd/network"


def _immutable_state_dir(root: Path, immutable: Callable[[Path], None],
                         mounts: Callable[..., Path]) -> str:
    (root / STATE_DIR).mkdir(parents=True)
    immutable(root / STATE_DIR)
    return STATE_DIR


@pytest.mark.parametrize("make_ro", [_ro_etc, _immutable_hosts, _ro_mount_network,
                                     _immutable_state_dir],
                         ids=["immutable-etc", "immutable-hosts", "ro-mount-network",
                              "immutable-state-dir"])
def test_read_only(guest_root: Path, immutable: Callable[[Path], None],
                   mounts: Callable[..., Path],
                   make_ro: Callable[[Path, Callable[[Path], None], Callable[..., Path]],
                                     str]) -> None:
    guest(guest_root)
    (guest_root / "etc/hostname").write_text("old-name\n")
    (guest_root / "etc/systemd").mkdir(parents=True)
    where = make_ro(guest_root, immutable, mounts)
    before = etc_files(guest_root)
    r = run(guest_root, "apply")
    assert_root_error(r, 7, where)
    assert etc_files(guest_root) == before
    assert temp_files(guest_root) == []


# --- E. a run that fails part-way is recorded before it writes, and undone -----------------

TWO_NICS = ((("ens3", MAC1), ("ens4", MAC2)))
B = {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\nIPADDR=192.0.2.10\n",
     "opt/net1": f"HWADDR={MAC2}\nIPADDR=198.51.100.10/24\n".encode()}
B2 = {"opt/GuestInfo": b"HOSTNAME=guest2.example.com\nIPADDR=192.0.2.20\n",
      "opt/net1": f"HWADDR={MAC2}\nIPADDR=198.51.100.20/24\n".encode()}


def test_failed_apply_is_journalled_and_undone(guest_root: Path,
                                               immutable: Callable[[Path], None]) -> None:
    guest(guest_root, B, nics=TWO_NICS)
    assert run(guest_root, "apply").code == 0
    assert (guest_root / NET2).is_file()
    write_fwcfg_tree(guest_root, B2)
    immutable(guest_root / NET2)  # the second NIC's file cannot be replaced
    before = etc_files(guest_root)
    count = len(journal_runs(guest_root))
    with guard.watching() as changed:
        r = run(guest_root, "apply")
    assert_root_error(r, 7, NET2)
    # everything the run changed is back as it was
    assert etc_files(guest_root) == before
    assert temp_files(guest_root) == []
    # and the journal covered every file it touched before it touched it
    runs = by_run(guest_root, count)
    assert len(runs) == 1, runs
    (records,) = runs.values()
    assert records[-1]["outcome"] == "failed", records
    journalled = {f["path"] for rec in records for f in rec.get("files") or []}
    prefix = str(guest_root.resolve() / "etc") + "/"
    touched = {"/etc/" + p[len(prefix):] for p in changed if p.startswith(prefix)
               and not re.match(r"\..*\.tmp\Z", os.path.basename(p))}
    assert touched <= journalled, (touched, journalled)
    # once the file can be written, the next run finishes the job
    subprocess.run(["chattr", "-i", str(guest_root / NET2)], check=True)
    assert run(guest_root, "apply").code == 0
    assert run(guest_root, "diff").code == 0
    assert "198.51.100.20/24" in (guest_root / NET2).read_text()


# --- B. nothing outside the root -------------------------------------------------------------

@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A sibling of the root holding a sentinel; what a naive agent would reach."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "keep").write_text("sentinel\n")
    return d


def _network_link(kind: str, root: Path, outside: Path) -> tuple[str, Path, Path]:
    """(link text, where it leads under the root, where a naive agent would go)."""
    if kind == "absolute":
        return "/elsewhere-fwcfg-test", root / "elsewhere-fwcfg-test", \
            Path("/elsewhere-fwcfg-test")
    if kind == "absolute-to-sibling":
        return str(outside), root / str(outside).lstrip("/"), outside
    if kind == "relative-to-sibling":  # from ROOT/etc/systemd, three levels up is tmp_path
        return "../../../outside", root / "outside", outside
    assert kind == "relative-deep"
    return "../" * 12 + "outside-fwcfg-test", root / "outside-fwcfg-test", \
        Path("/outside-fwcfg-test")


@pytest.mark.parametrize("kind", ["absolute", "absolute-to-sibling", "relative-to-sibling",
                                  "relative-deep"])
def test_symlinked_network_dir_stays_inside_the_root(guest_root: Path, outside: Path,
                                                     kind: str) -> None:
    guest(guest_root)
    link, inside, naive = _network_link(kind, guest_root, outside)
    assert not os.path.lexists(naive / "10-fwcfg-enx525400123456.network")
    inside.mkdir(parents=True)
    (guest_root / "etc/systemd").mkdir(parents=True)
    (guest_root / "etc/systemd/network").symlink_to(link)
    sentinel = tree(outside.parent, "outside")
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert (inside / "10-fwcfg-enx525400123456.network").is_file()
    assert os.readlink(guest_root / "etc/systemd/network") == link
    assert tree(outside.parent, "outside") == sentinel
    assert not os.path.lexists(naive / "10-fwcfg-enx525400123456.network")
    assert run(guest_root, "diff").code == 0
    r = run(guest_root, "rollback")
    assert r.code == 0, r.err
    assert not (inside / "10-fwcfg-enx525400123456.network").exists()
    assert tree(outside.parent, "outside") == sentinel


@pytest.mark.parametrize("kind", ["absolute-to-sibling", "relative"])
def test_symlinked_etc_stays_inside_the_root(guest_root: Path, outside: Path,
                                             kind: str) -> None:
    guest(guest_root)
    if kind == "relative":  # from ROOT, `..` stays at ROOT; naively it is tmp_path
        link, inside = "../outside", guest_root / "outside"
    else:
        link, inside = str(outside), guest_root / str(outside).lstrip("/")
    inside.parent.mkdir(parents=True, exist_ok=True)
    (guest_root / "etc").rename(inside)
    (guest_root / "etc").symlink_to(link)
    sentinel = tree(outside.parent, "outside")
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert (inside / "hostname").read_text() == "guest1.example.com\n"
    assert (inside / "systemd/network/10-fwcfg-enx525400123456.network").is_file()
    assert tree(outside.parent, "outside") == sentinel


def _applied_with_network(root: Path) -> bytes:
    guest(root)
    (root / "etc/hostname").write_text("old-name\n")
    assert run(root, "apply").code == 0
    return (root / NET1).read_bytes()


def _no_interfaces(root: Path) -> None:
    write_fwcfg_tree(root, {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\n"})


# State entries whose path leads outside the root (reaching outside/keep naively) or to a file
# inside it the agent does not manage.
HOSTILE_STATE_PATHS = {
    "etc-dotdot": "/etc/../../outside/keep",
    "network-dotdot": "/etc/systemd/network/../../../../outside/keep",
    "unmanaged": "/etc/passwd",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_STATE_PATHS))
def test_state_naming_a_path_outside_is_ignored(guest_root: Path, outside: Path,
                                                name: str) -> None:
    network = _applied_with_network(guest_root)
    hostile = HOSTILE_STATE_PATHS[name]
    # the sentinel holds exactly what the agent recorded, so a digest check would not save it
    (outside / "keep").write_bytes(network)
    (guest_root / "etc/passwd").write_bytes(network)
    state = guest_root / STATE_DIR / "state.json"
    text = state.read_text()
    assert "/" + NET1 in text
    state.write_text(text.replace("/" + NET1, hostile))
    _no_interfaces(guest_root)  # the network file is no longer wanted: stale entries go
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert "Traceback" not in r.err and "internal error" not in r.err
    assert any("state.json" in w for w in r.warnings()), r.err
    assert (outside / "keep").read_bytes() == network
    assert (guest_root / "etc/passwd").read_bytes() == network


def _secret(outside: Path) -> bytes:
    data = b"secret-" + hashlib.sha256(str(outside).encode()).hexdigest().encode() + b"\n"
    (outside / "secret").write_bytes(data)
    return data


def _grep(root: Path, needle: bytes) -> list[str]:
    return [str(p) for p in root.rglob("*")
            if p.is_file() and not p.is_symlink() and needle in p.read_bytes()]


def test_state_naming_a_backup_outside_is_ignored(guest_root: Path, outside: Path) -> None:
    guest(guest_root)
    (guest_root / "etc/hostname").write_text("old-name\n")
    assert run(guest_root, "apply").code == 0
    secret = _secret(outside)
    state = guest_root / STATE_DIR / "state.json"
    text = state.read_text()
    found = re.findall(r'"(backups/[^"]+/etc/hostname)"', text)
    assert found, text
    state.write_text(text.replace(found[0], "backups/" + "../" * 5 + "outside/secret"))
    write_fwcfg_tree(guest_root, {"opt/GuestInfo": b"IPADDR=192.0.2.10\n"})  # no HOSTNAME
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert any("state.json" in w for w in r.warnings()), r.err
    assert _grep(guest_root, secret.strip()) == []
    assert (outside / "secret").read_bytes() == secret


@pytest.mark.parametrize("mac", ["../../x", "a/" + "../" * 5 + "outside/x"])
def test_hostile_mac_in_sysfs_is_ignored(guest_root: Path, outside: Path, mac: str) -> None:
    guest(guest_root, nics=())
    write_netdev(guest_root, "ens3", mac)
    sentinel = tree(outside.parent, "outside")
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert r.warnings(), "an unusable NIC deserves a warning"
    assert tree(outside.parent, "outside") == sentinel
    network = sorted(p for p in tree(guest_root, "etc/systemd") if p != "etc/systemd")
    assert network == ["etc/systemd/network", "etc/systemd/network/10-fwcfg-eth0.network"]


@pytest.mark.parametrize("bad", ["x" * 16, "eth 0", "bad\nname", "tab\tname", "é0"])
def test_hostile_nic_name_in_sysfs_is_ignored(guest_root: Path, outside: Path,
                                              bad: str) -> None:
    guest(guest_root, fmt="ifcfg", nics=())
    write_netdev(guest_root, bad, MAC1)
    write_netdev(guest_root, "ens4", MAC2)
    (guest_root / "sys/class/net" / bad / "ifindex").write_text("2\n")
    (guest_root / "sys/class/net/ens4/ifindex").write_text("3\n")
    r = run(guest_root, "apply")
    assert r.code == 0, r.err
    assert r.warnings(), "an unusable NIC deserves a warning"
    scripts = sorted(os.listdir(guest_root / "etc/sysconfig/network-scripts"))
    assert scripts == ["ifcfg-ens4"], scripts
    assert not any(bad in p for p in tree(guest_root, "etc"))


@pytest.mark.parametrize("value", ["../../x", "../../../../../outside/x", "eth0/x", ".",
                                   "..", "x" * 16, "'eth 0'"])
def test_bad_default_interface_is_exit_2(guest_root: Path, outside: Path, value: str) -> None:
    guest(guest_root, nics=(), conf=f"DEFAULT_INTERFACE={value}\n")
    before = etc_files(guest_root)
    sentinel = tree(outside.parent, "outside")
    r = run(guest_root, "apply")
    assert_root_error(r, 2, "DEFAULT_INTERFACE")
    assert etc_files(guest_root) == before
    assert tree(outside.parent, "outside") == sentinel
