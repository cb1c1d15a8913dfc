"""The agent end to end on temp roots: read, validate, render, write, journal, undo."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.fakeroot import write_fwcfg_tree

from .agent import agent, snapshot
from .conftest import make_guest_root

SOMLO = {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\nIPADDR=192.0.2.10\n"}


def read(root: Path, path: str) -> str:
    return (root / path.lstrip("/")).read_text()


def journal(root: Path) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = agent(root, "journal", "--json").json()
    return runs


def test_first_boot_writes_everything(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    r = agent(guest_root, "apply")
    assert r.code == 0, r.err
    assert read(guest_root, "/etc/hostname") == "guest1.example.com\n"
    assert "192.0.2.10\tguest1.example.com guest1" in read(guest_root, "/etc/hosts")
    assert read(guest_root, "/etc/hosts").startswith("127.0.0.1\tlocalhost\n")
    network = read(guest_root, "/etc/systemd/network/10-fwcfg-enx525400123456.network")
    assert "192.0.2.10/24" in network
    (run,) = journal(guest_root)
    assert run["outcome"] == "changed" and run["source"] == "sysfs"
    files = {f["path"]: f for f in run["files"]}  # type: ignore[attr-defined]
    assert set(files) == {"/etc/hostname", "/etc/hosts",
                          "/etc/systemd/network/10-fwcfg-enx525400123456.network"}
    assert files["/etc/hostname"]["action"] == "created"
    assert files["/etc/hosts"]["action"] == "updated" and files["/etc/hosts"]["backup"]
    entries: list[dict[str, object]] = run["entries"]  # type: ignore[assignment]
    (entry,) = entries
    assert entry["name"] == "opt/GuestInfo" and entry["size"] == len(SOMLO["opt/GuestInfo"])


def test_a_run_that_only_adds_files_writes_its_state_once(
        guest_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pending state (written and synced before any file) is the final one when the run
    removes nothing: it is not written a second time. A run that removes a file writes both."""
    from fwcfg_agent import fsutil
    from fwcfg_agent import journal as journal_module

    writes: list[bytes] = []
    real = fsutil.write_node

    def counting(root: str, rel: str, node: Any, **kw: Any) -> list[str]:
        if rel == journal_module.STATE:
            writes.append(node.data)
        return real(root, rel, node, **kw)

    monkeypatch.setattr(journal_module, "write_node", counting)
    make_guest_root(guest_root, SOMLO)
    assert agent(guest_root, "apply").code == 0
    assert len(writes) == 1
    assert (guest_root / "var/lib/fwcfg-agent/state.json").read_bytes() == writes[0]
    write_fwcfg_tree(guest_root, {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\n"})
    writes.clear()
    assert agent(guest_root, "apply").code == 0
    assert len(writes) == 2 and writes[0] != writes[1]  # pending lists the removed file too
    assert (guest_root / "var/lib/fwcfg-agent/state.json").read_bytes() == writes[1]


def test_a_first_run_syncs_every_entry_before_it_relies_on_it(
        guest_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every directory entry a first run makes (mkdir, rename) is fsynced before the journal's
    pending record is (the state directory's own, and its parents', when the run creates it),
    and every file's data before its rename: with the fsyncs the run leaves out (the final
    state, as the pending one; the state directory, synced by the state's save), a power cut at
    any instant still finds what the pending record names."""
    events: list[tuple[str, str]] = []
    real_fsync, real_mkdir, real_rename, real_open = os.fsync, os.mkdir, os.rename, os.open

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    lock_dir = str(guest_root.resolve() / "run")

    def mkdir(path: str, mode: int = 0o777) -> None:
        real_mkdir(path, mode)
        if os.path.abspath(path) != lock_dir:  # (run/ holds the lock: nothing to keep)
            events.append(("entry", os.path.dirname(os.path.abspath(path))))

    def open_(path: str, flags: int, mode: int = 0o777, **kw: Any) -> int:
        new = bool(flags & os.O_CREAT) and not os.path.lexists(path)
        fd = real_open(path, flags, mode, **kw)
        if new and not os.path.abspath(path).startswith(lock_dir + "/"):
            events.append(("entry", os.path.dirname(os.path.abspath(path))))
        return fd

    def rename(src: str, dst: str) -> None:
        events.append(("data", os.path.abspath(src)))
        real_rename(src, dst)
        events.append(("entry", os.path.dirname(os.path.abspath(dst))))

    make_guest_root(guest_root, SOMLO)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "open", open_)
    assert agent(guest_root, "apply").code == 0
    monkeypatch.undo()
    journal_path = str(guest_root.resolve() / "var/lib/fwcfg-agent/journal.jsonl")
    pending = events.index(("fsync", journal_path))
    for i, (kind, path) in enumerate(events):
        if kind == "data":  # a temp file's bytes are on the disk before it is renamed
            assert ("fsync", path) in events[:i], path
    # every entry, the ones that make the state directory itself (in the root, var/ and
    # var/lib/) included: POSIX promises a new entry only once its directory is fsynced
    root = str(guest_root.resolve())
    for i, (kind, path) in enumerate(events[:pending]):
        if kind == "entry" and (path + "/").startswith(root + "/"):
            assert ("fsync", path) in events[i + 1:pending], path


def test_second_run_changes_nothing_and_says_so(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    assert agent(guest_root, "apply").code == 0
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 0 and "nothing changed" in r.err
    assert snapshot(guest_root, "etc") == before
    assert [x["outcome"] for x in journal(guest_root)] == ["changed", "unchanged"]


def test_tampered_file_is_repaired(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    agent(guest_root, "apply")
    (guest_root / "etc/hostname").write_text("tampered\n")
    assert agent(guest_root, "apply").code == 0
    assert read(guest_root, "/etc/hostname") == "guest1.example.com\n"
    last = journal(guest_root)[-1]
    assert [f["path"] for f in last["files"]] == ["/etc/hostname"]  # type: ignore[attr-defined]


def test_changed_payload_changes_only_what_it_must(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    agent(guest_root, "apply")
    before = snapshot(guest_root, "etc")
    write_fwcfg_tree(guest_root, {"opt/GuestInfo": b"HOSTNAME=guest1.example.com\n"
                                                   b"IPADDR=192.0.2.20\n"})
    assert agent(guest_root, "apply").code == 0
    after = snapshot(guest_root, "etc")
    changed = {p for p in after if after[p] != before.get(p)}
    assert changed == {"etc/hosts", "etc/systemd/network/10-fwcfg-enx525400123456.network"}


def test_settings_that_disappear_are_removed_or_restored(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    (guest_root / "etc/hostname").write_text("original\n")
    agent(guest_root, "apply")
    entry_dir = next(d for d in (guest_root / "sys/firmware/qemu_fw_cfg/by_key").iterdir()
                     if (d / "name").read_text().strip() == "opt/GuestInfo")
    (entry_dir / "raw").write_bytes(b"DNS1=192.0.2.53\n")
    (entry_dir / "size").write_text("16\n")
    assert agent(guest_root, "apply").code == 0
    assert read(guest_root, "/etc/hostname") == "original\n"  # restored, not removed
    assert not (guest_root / "etc/systemd/network/10-fwcfg-enx525400123456.network").exists()
    assert read(guest_root, "/etc/hosts") == "127.0.0.1\tlocalhost\n"  # block gone
    last = journal(guest_root)[-1]
    actions = {f["path"]: f["action"] for f in last["files"]}  # type: ignore[attr-defined]
    assert actions["/etc/systemd/network/10-fwcfg-enx525400123456.network"] == "removed"
    for f in last["files"]:  # type: ignore[attr-defined]
        assert f["backup"], f


def test_rollback_restores_byte_for_byte(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    (guest_root / "etc/hostname").write_bytes(b"old-name\n")
    original = snapshot(guest_root, "etc")
    assert agent(guest_root, "apply").code == 0
    assert snapshot(guest_root, "etc") != original
    r = agent(guest_root, "rollback")
    assert r.code == 0, r.err
    assert snapshot(guest_root, "etc") == original
    runs = journal(guest_root)
    assert runs[-1]["command"] == "rollback"
    # rollback steps back, it does not toggle: nothing is left to undo; apply brings the files back
    again = agent(guest_root, "rollback")
    assert again.code == 6 and "no run with changes left" in again.err
    assert snapshot(guest_root, "etc") == original
    assert agent(guest_root, "apply").code == 0
    assert read(guest_root, "/etc/hostname") == "guest1.example.com\n"


def test_rollback_of_a_named_run_undoes_later_runs_too(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    original = snapshot(guest_root, "etc")
    agent(guest_root, "apply")
    first = journal(guest_root)[0]["run"]
    (guest_root / "etc/hostname").write_text("tampered\n")
    agent(guest_root, "apply")
    assert agent(guest_root, "rollback", str(first)[:20]).code == 0
    assert snapshot(guest_root, "etc") == original


def test_rollback_unknown_run(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    agent(guest_root, "apply")
    r = agent(guest_root, "rollback", "19990101")
    assert r.code == 6 and "no single run matches" in r.err


def test_invalid_payload_writes_nothing(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/GuestInfo": b"HOSTNAME=ok\nIPADDR=10.0.0.300\n"})
    before = snapshot(guest_root, "etc", "var")
    r = agent(guest_root, "apply")
    assert r.code == 3
    assert "opt/GuestInfo, line 2, key IPADDR: '10.0.0.300' is not an IP address" in r.err
    after = snapshot(guest_root, "etc")
    assert after == {k: v for k, v in before.items() if k.startswith("etc/")}
    (run,) = journal(guest_root)
    assert run["outcome"] == "invalid" and "line 2" in str(run["error"])


def test_one_bad_entry_among_good_ones_writes_nothing(guest_root: Path) -> None:
    make_guest_root(guest_root, {**SOMLO, "opt/z-net": b"DEVICE=ens4\nIPADDR=$(reboot)\n"})
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 3 and "opt/z-net, line 2, key IPADDR" in r.err
    assert snapshot(guest_root, "etc") == before


def test_entry_over_size_cap(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/big": b"#" * 2000 + b"\nHOSTNAME=x\n"})
    cfg = guest_root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("MAX_ENTRY_SIZE=1024\n")
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 3 and "opt/big" in r.err and "MAX_ENTRY_SIZE" in r.err
    assert snapshot(guest_root, "etc") == before


def test_no_device_exits_zero_and_changes_nothing(guest_root: Path) -> None:
    (guest_root / "etc").mkdir(parents=True)
    r = agent(guest_root, "apply")
    assert r.code == 0 and "no fw_cfg device" in r.err
    assert not (guest_root / "var").exists()
    assert r.err.count("\n") == 1


def test_no_entries_for_us(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/io.systemd.credentials/system.hostname": b"creds",
                                 "opt/com.coreos/config": b"{}"})
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 0 and "no fw_cfg entries" in r.err
    assert snapshot(guest_root, "etc") == before


def test_colliding_names_are_read_from_by_key(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/org.example/net": b"HOSTNAME=coll\n",
                                 "opt/org.example/net/eth0": b"DEVICE=ens3\nIPADDR=10.1.1.1\n"})
    by_name = guest_root / "sys/firmware/qemu_fw_cfg/by_name/opt/org.example/net"
    # as the kernel does: the first name gets the link, the longer one is dropped from by_name
    assert by_name.is_symlink() and not (by_name / "eth0").exists()
    show = agent(guest_root, "show", "--json").json()
    assert [e["name"] for e in show["entries"]] == ["opt/org.example/net",
                                                    "opt/org.example/net/eth0"]
    assert show["settings"]["hostname"] == "coll"


def test_include_exclude_patterns(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/a": b"HOSTNAME=a\n", "opt/org.example/b": b"HOSTNAME=b\n",
                                 "opt/io.systemd.credentials/x": b"HOSTNAME=c\n"})
    cfg = guest_root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("INCLUDE='opt/a opt/io.systemd.credentials/*'\nEXCLUDE=''\n")
    show = agent(guest_root, "show", "--json").json()
    assert [e["name"] for e in show["entries"]] == ["opt/a", "opt/io.systemd.credentials/x"]


def test_show_json(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    doc = agent(guest_root, "show", "--json").json()
    assert doc["source"] == "sysfs"
    (e,) = doc["entries"]
    import hashlib

    assert e["sha256"] == hashlib.sha256(SOMLO["opt/GuestInfo"]).hexdigest()
    assert doc["settings"]["interfaces"][0]["addresses"] == ["192.0.2.10/24"]
    assert not (guest_root / "etc/hostname").exists()


def test_dry_run_prints_and_writes_nothing(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    before = snapshot(guest_root, "etc", "var")
    r = agent(guest_root, "apply", "--dry-run")
    assert r.code == 0
    assert "### Write /etc/hostname (mode 0644, hostname, created)\nguest1.example.com\n" in r.out
    assert snapshot(guest_root, "etc", "var") == before


def test_diff(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    r = agent(guest_root, "diff")
    assert r.code == 1
    assert "--- /dev/null\n+++ b/etc/hostname\n" in r.out and "+guest1.example.com" in r.out
    agent(guest_root, "apply")
    assert agent(guest_root, "diff").code == 0


def test_format_override_and_config(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    r = agent(guest_root, "apply", "--format", "hostname")
    assert r.code == 0
    assert sorted(snapshot(guest_root, "etc")) == ["etc/hostname", "etc/hosts", "etc/os-release"]
    assert read(guest_root, "/etc/hosts") == "127.0.0.1\tlocalhost\n"


def test_bad_config_is_exit_2(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    cfg = guest_root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("FORMATS='hostname bogus'\n")
    r = agent(guest_root, "apply")
    assert r.code == 2 and "unknown format 'bogus'" in r.err


def test_lock_held_is_exit_5(guest_root: Path) -> None:
    import fcntl

    make_guest_root(guest_root, SOMLO)
    lock = guest_root / "run/fwcfg-agent.lock"
    lock.parent.mkdir(parents=True)
    with open(lock, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        from fwcfg_agent import runinfo as lockmod

        old = lockmod.RunLock.__init__.__defaults__
        lockmod.RunLock.__init__.__defaults__ = (0.2,)
        try:
            r = agent(guest_root, "apply")
        finally:
            lockmod.RunLock.__init__.__defaults__ = old
    assert r.code == 5 and "holds" in r.err
    assert not (guest_root / "etc/hostname").exists()


def test_netplan_and_nm_modes(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO, installed=("usr/sbin/netplan", "usr/bin/cloud-init"))
    assert agent(guest_root, "apply").code == 0
    netplan = guest_root / "etc/netplan/90-fwcfg-agent.yaml"
    assert netplan.stat().st_mode & 0o777 == 0o600
    assert (guest_root / "etc/cloud/cloud.cfg.d/99-fwcfg-agent.cfg").exists()
    r = agent(guest_root, "apply", "--format", "nm")
    assert r.code == 0
    nm = guest_root / "etc/NetworkManager/system-connections/fwcfg-enx525400123456.nmconnection"
    assert nm.stat().st_mode & 0o777 == 0o600
    assert not netplan.exists()  # the netplan file is no longer wanted: removed


@pytest.mark.parametrize(
    ("os_release", "installed", "enabled", "expected"),
    [
        ({"ID": "rocky", "ID_LIKE": "rhel centos fedora", "VERSION_ID": "8.9"}, (), (), "ifcfg"),
        ({"ID": "rhel", "VERSION_ID": "9.4"}, (), (), "nm"),
        ({"ID": "fedora", "VERSION_ID": "40"}, (), (), "nm"),
        ({"ID": "ubuntu", "ID_LIKE": "debian", "VERSION_ID": "24.04"}, ("usr/sbin/netplan",),
         (), "netplan"),
        ({"ID": "debian", "VERSION_ID": "12"}, ("usr/sbin/ifup",), (), "ifupdown"),
        ({"ID": "debian", "VERSION_ID": "12"}, ("usr/sbin/ifup",),
         ("systemd-networkd.service",), "networkd"),
        ({"ID": "debian", "VERSION_ID": "12"}, ("usr/sbin/NetworkManager", "usr/sbin/ifup"),
         ("NetworkManager.service",), "nm"),
        ({"ID": "arch"}, (), (), "networkd"),
    ],
)
def test_format_detection(guest_root: Path, os_release: dict[str, str],
                          installed: tuple[str, ...], enabled: tuple[str, ...],
                          expected: str) -> None:
    make_guest_root(guest_root, SOMLO, os_release=os_release, installed=installed)
    for unit in enabled:
        wants = guest_root / "etc/systemd/system/multi-user.target.wants"
        wants.mkdir(parents=True, exist_ok=True)
        (wants / unit).symlink_to(f"/usr/lib/systemd/system/{unit}")
    doc = agent(guest_root, "show", "--json").json()
    assert doc["formats"] == ["hostname", "hosts", expected]


def test_journal_records_entries_and_boot_id(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    boot = guest_root / "proc/sys/kernel/random/boot_id"
    boot.parent.mkdir(parents=True)
    boot.write_text("0f3c1f3a-1111-2222-3333-444455556666\n")
    agent(guest_root, "apply")
    (run,) = journal(guest_root)
    assert run["boot_id"] == "0f3c1f3a-1111-2222-3333-444455556666"
    assert {"run", "time", "version", "command", "outcome", "source", "entries", "formats",
            "files"} <= set(run)
    text = agent(guest_root, "journal").out
    assert "created  /etc/hostname" in text


def test_torn_journal_line_is_skipped(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    agent(guest_root, "apply")
    with open(guest_root / "var/lib/fwcfg-agent/journal.jsonl", "ab") as f:
        f.write(b'{"run": "x", "trunc')
    assert len(journal(guest_root)) == 1
    assert agent(guest_root, "apply").code == 0


def test_damaged_state_falls_back_to_full_run(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    agent(guest_root, "apply")
    (guest_root / "var/lib/fwcfg-agent/state.json").write_text("{not json")
    r = agent(guest_root, "apply")
    assert r.code == 0 and "damaged" in r.err
    state = json.loads((guest_root / "var/lib/fwcfg-agent/state.json").read_text())
    assert "/etc/hostname" in state["files"]


def test_modes_are_exact(guest_root: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    (guest_root / "etc/hostname").write_text("x\n")
    os.chmod(guest_root / "etc/hostname", 0o600)
    agent(guest_root, "apply")
    assert (guest_root / "etc/hostname").stat().st_mode & 0o777 == 0o644


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    from fwcfg_agent import __version__
    from fwcfg_agent.cli import main

    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["apply", "--help"])
    out = capsys.readouterr().out
    assert "3  invalid input" in out and "a malformed SMBIOS table" in out


def test_owner_is_kept(guest_root: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")
    make_guest_root(guest_root, SOMLO)
    os.chown(guest_root / "etc/hosts", 1234, 4321)
    assert agent(guest_root, "apply").code == 0
    st = (guest_root / "etc/hosts").stat()
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert "guest1" in read(guest_root, "/etc/hosts")


def test_explicit_config_file(guest_root: Path, tmp_path: Path) -> None:
    make_guest_root(guest_root, SOMLO)
    cfg = tmp_path / "other.conf"
    cfg.write_text("FORMATS='hostname'\n")
    assert agent(guest_root, "apply", "--config", str(cfg)).code == 0
    assert sorted(snapshot(guest_root, "etc")) == ["etc/hostname", "etc/hosts", "etc/os-release"]
    r = agent(guest_root, "apply", "--config", str(tmp_path / "missing.conf"))
    assert r.code == 2 and "no such file" in r.err


def _pci_nic(root: Path, slot: str) -> None:
    d = root / "sys/bus/pci/devices" / slot
    d.mkdir(parents=True)
    (d / "class").write_text("0x020000\n")


def test_waits_for_a_nic_whose_driver_is_still_loading(guest_root: Path) -> None:
    """At boot the agent starts before udev has loaded virtio_net: the NIC appears later."""
    import threading
    import time

    from tests.fakeroot import write_netdev

    make_guest_root(guest_root, SOMLO, nics=())
    _pci_nic(guest_root, "0000:00:03.0")

    def driver_binds() -> None:
        time.sleep(0.3)
        write_netdev(guest_root, "eth0", "52:54:00:aa:bb:cc")

    t = threading.Thread(target=driver_binds)
    t.start()
    r = agent(guest_root, "apply")
    t.join()
    assert r.code == 0, r.err
    assert (guest_root / "etc/systemd/network/10-fwcfg-enx525400aabbcc.network").exists()


def test_a_nic_that_never_shows_up_is_a_bounded_wait(guest_root: Path) -> None:
    import time

    make_guest_root(guest_root, SOMLO)
    _pci_nic(guest_root, "0000:00:03.0")
    _pci_nic(guest_root, "0000:00:04.0")  # a second NIC without a driver
    cfg = guest_root / "etc/fwcfg-agent/agent.conf"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("DEVICE_WAIT=0.3\n")
    start = time.monotonic()
    r = agent(guest_root, "apply", "--config", str(cfg))
    assert r.code == 0 and "did not show up" in r.err
    assert time.monotonic() - start < 3
