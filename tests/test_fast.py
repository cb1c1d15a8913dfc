"""The steady-state fast path: taken only when every input and file is as recorded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fwcfg_agent import fast, runinfo

from .agent import agent, snapshot
from .conftest import REPO, make_guest_root

HEAVY = ("jinja2", "pyudev", "systemd", "argparse", "json", "fwcfg_agent.model",
         "fwcfg_agent.render", "ipaddress", "re", "_json", "pathlib")
PROBE = """
import sys
from fwcfg_agent.cli import main
code = main(sys.argv[1:])
print(",".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


def run_agent(*args: str) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    loaded = [m for m in proc.stdout.strip().split(",") if m]
    return proc.returncode, proc.stderr, loaded


SOMLO = {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\nIPADDR=192.0.2.10\n"}


@pytest.fixture
def applied(guest_root: Path) -> Path:
    make_guest_root(guest_root, SOMLO, nics=(("ens3", "52:54:00:12:34:56"),
                                             ("ens4", "52:54:00:12:34:57")))
    assert agent(guest_root, "apply").code == 0
    return guest_root


def test_steady_state_loads_nothing_heavy(applied: Path) -> None:
    code, err, loaded = run_agent("apply", "--root", str(applied))
    assert code == 0 and "nothing changed" in err
    assert loaded == [], loaded
    runs = [json.loads(line) for line in
            (applied / "var/lib/fwcfg-agent/journal.jsonl").read_text().splitlines()]
    assert runs[-1]["outcome"] == "unchanged" and runs[-1]["files"] == []
    assert runs[-1]["entries"] == runs[0]["entries"]  # the same record as a full run gives
    # a run that changed files also keeps what it changed from (state_before, dirs_created)
    assert set(runs[-1]) == set(runs[0]) - {"formats", "state_before", "dirs_created"}


def test_no_device_loads_nothing_heavy(guest_root: Path) -> None:
    (guest_root / "etc").mkdir(parents=True)
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "no fw_cfg device" in err and loaded == []


def _entry_dir(root: Path, name: str) -> Path:
    return next(d for d in (root / "sys/firmware/qemu_fw_cfg/by_key").iterdir()
                if (d / "name").read_text().strip() == name)


def _set_entry(root: Path) -> None:
    d = _entry_dir(root, "opt/GuestInfo")
    data = SOMLO["opt/GuestInfo"].replace(b".10", b".11")
    (d / "raw").write_bytes(data)


def _add_nic(root: Path) -> None:
    from tests.fakeroot import write_netdev

    write_netdev(root, "ens5", "52:54:00:12:34:58")


def _change_mac(root: Path) -> None:
    (root / "sys/class/net/ens4/address").write_text("52:54:00:99:99:99\n")


def _config(root: Path) -> None:
    p = root / "etc/fwcfg-agent/agent.conf"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("KEEP_RUNS=10\n")


def _template(root: Path) -> None:
    p = root / "etc/fwcfg-agent/templates/hostname.j2"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("{{ config.short_hostname }}\n")


def _os_release(root: Path) -> None:
    (root / "etc/os-release").write_text('ID="ubuntu"\n')


def _install_netplan(root: Path) -> None:
    p = root / "usr/sbin/netplan"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("")


def _enable_nm(root: Path) -> None:
    w = root / "etc/systemd/system/multi-user.target.wants"
    w.mkdir(parents=True)
    (w / "NetworkManager.service").symlink_to("/usr/lib/systemd/system/NetworkManager.service")


def _tamper(root: Path) -> None:
    (root / "etc/hostname").write_text("tampered\n")


def _delete_file(root: Path) -> None:
    (root / "etc/systemd/network/10-fwcfg-enx525400123456.network").unlink()


def _damage_state(root: Path) -> None:
    (root / "var/lib/fwcfg-agent/state.json").write_text("{")


def _new_entry(root: Path) -> None:
    from tests.fakeroot import write_fwcfg_tree

    write_fwcfg_tree(root, {**SOMLO, "opt/zz": b"DNS1=192.0.2.53\n"})


def _hosts_edit(root: Path) -> None:
    with open(root / "etc/hosts", "a") as f:
        f.write("10.9.9.9 other\n")


def _chmod_keyfile(root: Path) -> None:
    (root / "etc/systemd/network/10-fwcfg-enx525400123456.network").chmod(0o600)


def _setuid(root: Path) -> None:
    (root / "etc/hostname").chmod(0o4644)


def _symlink_hostname(root: Path) -> None:
    target = root / "etc/hostname.real"
    target.write_bytes((root / "etc/hostname").read_bytes())
    (root / "etc/hostname").unlink()
    (root / "etc/hostname").symlink_to("hostname.real")


def _remove_nic(root: Path) -> None:
    import shutil

    shutil.rmtree(root / "sys/class/net/ens3")


def _remove_entry(root: Path) -> None:
    from tests.fakeroot import write_fwcfg_tree

    write_fwcfg_tree(root, {"opt/zz": b"DNS1=192.0.2.53\n"})


def _template_override_edit(root: Path) -> None:
    _template(root)
    # applied: now edit the override again (a second change the record must see)
    p = root / "etc/fwcfg-agent/templates/hostname.j2"
    p.write_text("{{ config.hostname }} \n")


def _os_release_to_usr(root: Path) -> None:
    (root / "etc/os-release").unlink()
    (root / "usr/lib").mkdir(parents=True, exist_ok=True)
    (root / "usr/lib/os-release").write_text('ID="fedora"\nVERSION_ID=40\n')


def _install_ifupdown(root: Path) -> None:
    p = root / "sbin/ifup"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("")


def _delete_state(root: Path) -> None:
    (root / "var/lib/fwcfg-agent/state.json").unlink()


# Every kind of input and output the full path depends on (issue: "one truth for the boot path").
MUTATIONS = [
    _set_entry, _new_entry, _remove_entry, _config, _template, _template_override_edit,
    _os_release, _os_release_to_usr, _add_nic, _remove_nic, _change_mac, _install_netplan,
    _install_ifupdown, _enable_nm, _tamper, _delete_file, _chmod_keyfile, _setuid,
    _symlink_hostname, _damage_state, _delete_state, _hosts_edit,
]


@pytest.mark.parametrize("change", MUTATIONS)
def test_any_change_takes_the_full_path(applied: Path, change: Callable[[Path], None]) -> None:
    change(applied)
    code, err, loaded = run_agent("apply", "--root", str(applied))
    assert code == 0, err
    assert "fwcfg_agent.model" in loaded, f"{change.__name__}: the fast path missed it"
    assert "full run: " in err, err  # and says why, in words
    # the rule: after the unit's apply, diff finds nothing, whatever changed
    diff = agent(applied, "diff")
    assert diff.code == 0, (change.__name__, diff.out, diff.err)
    # and the full path recorded a fresh snapshot: the boot after is fast again
    code, err, loaded = run_agent("apply", "--root", str(applied))
    assert code == 0 and loaded == [], (change.__name__, err, loaded)
    assert agent(applied, "diff").code == 0


def test_options_take_the_full_path_and_are_not_recorded(applied: Path) -> None:
    code, _err, loaded = run_agent("apply", "--root", str(applied), "--format", "hostname")
    assert code == 0 and "fwcfg_agent.model" in loaded
    assert not (applied / fast.SNAPSHOT).exists()
    code, _err, loaded = run_agent("apply", "--root", str(applied))
    assert code == 0 and "fwcfg_agent.model" in loaded  # files differ


def test_rollback_forgets_the_snapshot(applied: Path) -> None:
    assert agent(applied, "rollback").code == 0
    assert not (applied / fast.SNAPSHOT).exists()
    before = snapshot(applied, "etc")
    code, _err, loaded = run_agent("apply", "--root", str(applied))
    assert "fwcfg_agent.model" in loaded and snapshot(applied, "etc") != before


def test_torn_snapshot_is_ignored(applied: Path) -> None:
    path = applied / fast.SNAPSHOT
    path.write_bytes(path.read_bytes()[:-7])
    code, _err, loaded = run_agent("apply", "--root", str(applied))
    assert code == 0 and "fwcfg_agent.model" in loaded


def test_serialize_round_trip() -> None:
    items = [("f", "etc/x y", b"a\nb\n"), ("d", "d", None), ("e", "z", b"1")]
    assert fast.parse(fast.serialize(items)) == items
    assert fast.parse(b"garbage") is None
    assert fast.parse(fast.serialize(items)[:-3]) is None
    # a forged snapshot naming paths outside the root is no snapshot at all
    assert fast.parse(fast.serialize([("f", "../../etc/shadow", b"x")])) is None
    assert fast.parse(fast.serialize([("e", "etc/a\0b", b"1")])) is None  # no path has a NUL


_RELS = st.lists(st.sampled_from(("etc", "a b", "..", ".", "x\udcff", "\u00e9", "", "\0")),
                 min_size=1, max_size=4).map("/".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("fdemnvh"), _RELS, st.none() | st.binary(max_size=20)),
                max_size=6), st.data())
def test_a_snapshot_parses_back_or_not_at_all(items: list[tuple[str, str, Optional[bytes]]],
                                               data: st.DataObject) -> None:
    """Any record round-trips unless it names a path outside the root; any damage (a cut, a
    changed byte) gives a record that serializes to those very bytes, or none: never an
    error, never a path outside the root."""
    blob = fast.serialize(items)
    outside = any(rel.startswith("/") or ".." in rel.split("/") or "\0" in rel
                  for _, rel, _ in items)
    assert fast.parse(blob) == (None if outside else items)
    cut = data.draw(st.integers(0, len(blob)))
    at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
    for damaged in (blob[:cut], blob[:at] + bytes([blob[at] ^ 0x20]) + blob[at + 1:] if blob
                    else blob):
        got = fast.parse(damaged)
        if got is not None:
            assert fast.serialize(got) == damaged
            assert not any(rel.startswith("/") or ".." in rel.split("/") for _, rel, _ in got)


def _rename(root: Path, old: str, new: str) -> None:
    net = root / "sys/class/net"
    (net / old).rename(net / new)


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(), inner, max_size=4), max_leaves=12))
def test_the_journal_line_is_what_json_writes(value: object) -> None:
    """The fast path writes its journal record without json (nor its C half): byte for byte
    what json.dumps writes, whatever the text (controls, non-ASCII, beyond U+FFFF, lone
    surrogates)."""
    assert runinfo.dumps(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


def test_a_nic_renamed_by_udev_is_the_same_nic(applied: Path) -> None:
    """At boot the agent may run before udev renames eth0 to enp0s3: formats that match by MAC
    do not care, and the fast path does not either."""
    for name, index in (("ens3", 2), ("ens4", 3)):
        (applied / f"sys/class/net/{name}/ifindex").write_text(f"{index}\n")
    assert agent(applied, "apply").code == 0  # record the snapshot with ifindexes
    _rename(applied, "ens3", "eth0")
    _rename(applied, "ens4", "eth1")
    code, _err, loaded = run_agent("apply", "--root", str(applied))
    assert code == 0 and loaded == []


def _ifcfg_root(root: Path) -> Path:
    """A guest whose format names NICs by kernel name (ifcfg)."""
    make_guest_root(root, SOMLO)
    conf = root / "etc/fwcfg-agent/agent.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("FORMATS='hostname hosts ifcfg'\n")
    return root


def test_renamed_nic_with_a_name_based_format_takes_the_full_path(guest_root: Path) -> None:
    _ifcfg_root(guest_root)
    scripts = guest_root / "etc/sysconfig/network-scripts"
    assert agent(guest_root, "apply").code == 0
    assert (scripts / "ifcfg-ens3").exists()
    _rename(guest_root, "ens3", "enp0s3")
    code, _err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "fwcfg_agent.model" in loaded
    assert (scripts / "ifcfg-enp0s3").exists()
    assert not (scripts / "ifcfg-ens3").exists()


def test_ifupdown_matches_by_mac_so_a_rename_changes_nothing(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO, installed=("usr/sbin/ifup",))
    assert agent(guest_root, "apply").code == 0
    stanza = guest_root / "etc/network/interfaces.d/fwcfg-enx525400123456"
    assert "auto mac/52:54:00:12:34:56/=enx525400123456\n" in stanza.read_text()
    _rename(guest_root, "ens3", "enp0s3")
    code, _err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and loaded == []


def test_name_based_formats_wait_for_udev_to_finish_renaming(guest_root: Path) -> None:
    """ifcfg names NICs: the fast path waits for udev's database entry of each NIC (the
    rename is done) before comparing, instead of missing on a half-renamed boot."""
    import threading
    import time

    _ifcfg_root(guest_root)
    (guest_root / "sys/class/net/ens3/ifindex").write_text("2\n")
    udev = guest_root / "run/udev/data"
    udev.mkdir(parents=True)
    (udev / "n2").write_text("")
    assert agent(guest_root, "apply").code == 0
    # next boot: the kernel calls it eth0 until udev renames it back to ens3
    (udev / "n2").unlink()
    _rename(guest_root, "ens3", "eth0")

    def udev_renames() -> None:
        time.sleep(0.3)
        _rename(guest_root, "eth0", "ens3")
        (udev / "n2").write_text("")

    t = threading.Thread(target=udev_renames)
    t.start()
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    t.join()
    assert code == 0 and loaded == [], (err, loaded)


@pytest.mark.parametrize(("argv", "root"), [
    (["apply"], "/"),
    (["apply", "--root", "/x"], "/x"),
    (["apply", "--root=/x"], "/x"),
    (["apply", "--root="], None),
    (["apply", "--root"], None),
    (["apply", "--dry-run"], None),
    (["apply", "--root", "/x", "--debug"], None),
    (["diff"], None),
    ([], None),
])
def test_the_units_command_line_is_recognised_and_nothing_else(argv: list[str],
                                                               root: str | None) -> None:
    assert fast.apply_root(argv) == root


def test_a_first_boot_does_not_load_argparse_or_pathlib(guest_root: Path) -> None:
    """The unit's `apply` takes the full path without argparse (and its gettext, locale and
    shutil), and without pathlib (the agent's paths are strings: pathlib, a package of its own
    on newer Pythons, cost a first boot 4.3M instructions, 2%); any other option still goes
    through argparse, which rejects what it must."""
    make_guest_root(guest_root, SOMLO)
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "fwcfg_agent.model" in loaded, err
    assert "argparse" not in loaded and "pathlib" not in loaded, loaded
    assert (guest_root / "etc/hostname").read_text() == "guest1.example.com\n"
    code, err, loaded = run_agent("apply", "--root", str(guest_root), "--bogus")
    assert code == 2 and "unrecognized arguments: --bogus" in err


NO_ENTRIES = {"etc/boot-fail-wait": b"\x00\x00\x00\x00",
              "opt/io.systemd.credentials/x": b"HOSTNAME=credential\n"}


def test_a_boot_without_entries_for_us_is_fast_too(guest_root: Path) -> None:
    """An image booted without a payload (only QEMU's own entries, or other tools' namespaces):
    the first boot finds nothing for the agent and records that; later boots prove it cheaply,
    without waiting for the NICs, and leave the same journal record."""
    make_guest_root(guest_root, NO_ENTRIES)
    first = agent(guest_root, "apply")
    assert first.code == 0 and "no fw_cfg entries for fwcfg-agent" in first.err
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "no fw_cfg entries for fwcfg-agent (sysfs)" in err, err
    assert loaded == [], loaded
    assert "waited" not in err and "full run" not in err
    runs = [json.loads(line) for line in
            (guest_root / "var/lib/fwcfg-agent/journal.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in runs] == ["no-entries", "no-entries"]
    assert set(runs[1]) == set(runs[0]) and runs[1]["entries"] == runs[0]["entries"] == []
    assert not (guest_root / "etc/hostname").exists()


@pytest.mark.parametrize("change", ["entry", "config"])
def test_a_payload_or_config_after_no_entries_takes_the_full_path(guest_root: Path,
                                                                   change: str) -> None:
    from tests.fakeroot import write_fwcfg_tree

    make_guest_root(guest_root, NO_ENTRIES)
    assert agent(guest_root, "apply").code == 0
    if change == "entry":
        write_fwcfg_tree(guest_root, {**NO_ENTRIES, **SOMLO})
    else:  # the other tool's namespace is ours now
        conf = guest_root / "etc/fwcfg-agent/agent.conf"
        conf.parent.mkdir(parents=True)
        conf.write_text("EXCLUDE=\n")
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert "full run:" in err and loaded, err
    assert "no fw_cfg entries" not in err, err


def _copy_of_the_agent(dest: Path) -> Path:
    """The agent as a distribution would install it: the package with its templates inside."""
    import shutil

    pkg = dest / "fwcfg_agent"
    shutil.copytree(REPO / "fwcfg_agent", pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "_codeid"))
    shutil.copytree(REPO / "templates", pkg / "templates")
    return dest


def _run_copy(copy: Path, root: Path, *args: str) -> tuple[int, str, list[str]]:
    proc = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args,
                           "--root", str(root)],
                          env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"}, cwd=copy,
                          capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stderr, [m for m in proc.stdout.strip().split(",") if m]


def test_a_patched_packaged_template_reaches_a_configured_guest(tmp_path: Path) -> None:
    """A distribution rebuilds the package with a fixed template and the same __version__:
    the next boot's apply writes the fixed file, and diff then finds nothing."""
    copy = _copy_of_the_agent(tmp_path / "site")
    root = make_guest_root(tmp_path / "root", SOMLO)
    code, err, _ = _run_copy(copy, root, "apply")
    assert code == 0, err
    code, err, loaded = _run_copy(copy, root, "apply")
    assert code == 0 and loaded == [], err  # steady state: the fast path
    hostname = copy / "fwcfg_agent/templates/hostname.j2"
    hostname.write_text("# patched by the distribution\n" + hostname.read_text())
    code, err, loaded = _run_copy(copy, root, "apply")
    assert code == 0 and "fwcfg_agent.model" in loaded, err
    assert "full run: the agent's code changed" in err
    assert (root / "etc/hostname").read_text().startswith("# patched by the distribution\n")
    code, err, _ = _run_copy(copy, root, "diff")
    assert code == 0, err


def test_a_root_without_run_is_no_error(guest_root: Path) -> None:
    """A first apply on an image root that lacks run/: the lock's directory is made, and the
    reason for the full run is said in words, not as an error."""
    make_guest_root(guest_root, SOMLO)
    assert not (guest_root / "run").exists()
    code, err, _ = run_agent("apply", "--root", str(guest_root))
    assert code == 0, err
    assert "cannot open" not in err and "No such file" not in err, err
    assert "full run: this is the first run" in err, err


def test_the_record_holds_every_file_a_full_run_reads(applied: Path) -> None:
    """An audit hook lists every file a full run opens, and every directory it lists, under
    the root: each must be in the run's record (the snapshot), or be the agent's own
    bookkeeping (journal, backups, lock, the snapshot itself), or a NIC read that the
    recorded NIC signature covers."""
    from fwcfg_agent.rootfs import Reader, chase  # noqa: F401 - the record's own paths

    (applied / "var/lib/fwcfg-agent/snapshot").unlink()  # force the full path
    override = applied / "etc/fwcfg-agent/templates/hosts.j2"
    override.parent.mkdir(parents=True, exist_ok=True)
    override.write_text((REPO / "templates/hosts.j2").read_text())
    probe = """
import os, sys
root = os.path.realpath(sys.argv[1])
seen = []
def hook(event, args):
    if event in ("open", "os.listdir", "os.scandir") and args and isinstance(args[0], (str, bytes)):
        p = os.fsdecode(args[0])
        if event == "open" and isinstance(args[2], int) and args[2] & (os.O_WRONLY | os.O_RDWR):
            return
        if p.startswith(root + "/"):
            seen.append(os.path.relpath(p, root))
sys.addaudithook(hook)
from fwcfg_agent.cli import main
code = main(["apply", "--root", root])
print("\\n".join(seen))
sys.exit(code)
"""
    proc = subprocess.run([sys.executable, "-c", probe, str(applied)],
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    items = fast.parse((applied / fast.SNAPSHOT).read_bytes()) or []
    recorded = {rel for _, rel, _ in items}
    bookkeeping = ("var/lib/fwcfg-agent/", "run/", "proc/sys/kernel/random/boot_id")
    nic_reads = ("sys/class/net", "sys/bus/pci/devices", "sys/bus/virtio/devices", "run/udev")
    # the sweep for temp files a killed run left, in the directories the agent writes to
    from fwcfg_agent.formats import managed_paths

    files, dirs = managed_paths()
    sweep = {"etc", *(d.strip("/") for d in dirs), *(f.lstrip("/").rpartition("/")[0]
                                                    for f in files)}
    missing = sorted({p for p in proc.stdout.split("\n") if p}
                     - recorded - {"var/lib/fwcfg-agent"} - sweep
                     - {p for p in proc.stdout.split("\n")
                        if p.startswith(bookkeeping) and p != "var/lib/fwcfg-agent/state.json"}
                     - {p for p in proc.stdout.split("\n") if p.startswith(nic_reads)})
    assert missing == [], f"read but not recorded: {missing}"
    assert "etc/fwcfg-agent/templates/hosts.j2" in recorded
    assert any(kind == "n" for kind, _, _ in items)


LAUNCHER = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("torn down\\n"))
from fwcfg_agent.fast import main
print("said before the end", flush=False)
sys.exit(main(exit_when_done=True))
"""


def test_the_launcher_ends_a_run_at_once_unless_something_is_left(applied: Path) -> None:
    """bin/fwcfg-agent's call: a finished run ends without the interpreter's teardown, with its
    exit code and every line it wrote (stdout and stderr flushed first, through pipes), the
    fast path's and the full path's; a run that left an atexit handler (the raw reader's
    finalizer gives the device back to the kernel's driver through one) exits the normal way,
    which runs it."""
    def launch(root: Path, *, handler: bool) -> subprocess.CompletedProcess[str]:
        code = LAUNCHER if handler else LAUNCHER.replace("atexit.register", "print")
        return subprocess.run([sys.executable, "-c", code, "apply", "--root", str(root)],
                              env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, timeout=60)

    for handler in (False, True):
        fast_run = launch(applied, handler=handler)
        assert fast_run.returncode == 0, fast_run.stderr
        assert fast_run.stdout.endswith("said before the end\n")
        assert "nothing changed" in fast_run.stderr and "torn down" not in fast_run.stderr
    _set_entry(applied)
    full = launch(applied, handler=True)
    assert full.returncode == 0, full.stderr
    assert "full run: the fw_cfg entries changed" in full.stderr
    assert full.stderr.endswith("torn down\n")  # the handler ran: a normal exit
    _set_entry(applied)
    (_entry_dir(applied, "opt/GuestInfo") / "raw").write_bytes(
        SOMLO["opt/GuestInfo"].replace(b".10", b".12"))
    quick = launch(applied, handler=False)
    assert quick.returncode == 0 and "applied" in quick.stderr, quick.stderr
    assert quick.stdout.endswith("said before the end\n")
    assert (applied / "etc/hosts").read_text().count("192.0.2.12") == 1
    d = _entry_dir(applied, "opt/GuestInfo")
    (d / "raw").write_bytes(b"IPADDR=300.1.1.1\n")
    (d / "size").write_text("17\n")
    bad = launch(applied, handler=True)
    assert bad.returncode == 3 and bad.stderr.endswith("torn down\n"), bad.stderr
    bad = launch(applied, handler=False)
    assert bad.returncode == 3 and "300.1.1.1" in bad.stderr, bad.stderr


COUNTING_LAUNCHER = """
import atexit, gc, sys
def collections():
    return sum(s["collections"] for s in gc.get_stats())
before = collections()
atexit.register(lambda: sys.stderr.write(
    f"collector on: {gc.isenabled()}, collections: {collections() - before}\\n"))
from fwcfg_agent.fast import main
sys.exit(main(exit_when_done=True))
"""


def test_the_launchers_run_is_not_stopped_by_the_garbage_collector(applied: Path) -> None:
    """The launcher's process is one run: the cyclic collector is off for it (fast.owned_process)
    and no collection happens, where a first boot's imports set it off dozens of times. A run
    called in a process it does not own (cli.main, these tests) leaves the collector alone."""
    _set_entry(applied)  # the full path, with jinja2: the run that allocates the most
    # the atexit handler keeps the process from ending early: it exits the normal way and says
    run = subprocess.run([sys.executable, "-c", COUNTING_LAUNCHER, "apply", "--root",
                          str(applied)], env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "full run: the fw_cfg entries changed" in run.stderr
    assert run.stderr.endswith("collector on: False, collections: 0\n"), run.stderr
    import gc

    assert gc.isenabled()
    (_entry_dir(applied, "opt/GuestInfo") / "raw").write_bytes(SOMLO["opt/GuestInfo"])
    assert agent(applied, "apply").code == 0  # in this process: a full run through cli.main
    assert gc.isenabled()
