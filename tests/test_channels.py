"""Entries by SMBIOS OEM strings and systemd system credentials beside fw_cfg (issue 15): the same
parser, validation, journal and fast path, on roots that carry a real DMI table."""

from __future__ import annotations

from pathlib import Path

import pytest

from fwcfg_agent import fast
from fwcfg_agent.channels import any_agent_input

from .agent import agent, snapshot
from .conftest import REPO, make_guest_root
from .fakeroot import (
    QEMU72_OEM_TABLE,
    smbios_table,
    write_credentials,
    write_dmi_table,
    write_fwcfg_tree,
    write_netdev,
    write_os_release,
    write_qemu_acpi_device,
)
from .test_fast import run_agent

GUESTINFO = (REPO / "examples/GuestInfo.env").read_bytes()  # HOSTNAME=web1.example.com
MAC0, MAC1 = "52:54:00:12:34:56", "52:54:00:fc:00:02"
NET1 = f"HWADDR={MAC1}\nIPADDR=10.0.20.2\nPREFIX=24\n".encode()
NETWORK0 = "etc/systemd/network/10-fwcfg-enx525400123456.network"
NETWORK1 = "etc/systemd/network/10-fwcfg-enx525400fc0002.network"


def runs(root: Path) -> list[dict[str, object]]:
    got: list[dict[str, object]] = agent(root, "journal", "--json").json()
    return got


def entries_of(run: dict[str, object]) -> list[tuple[object, object]]:
    entries = run["entries"]
    assert isinstance(entries, list)
    return [(e["name"], e["channel"]) for e in entries]


def conf(root: Path, text: str) -> None:
    p = root / "etc/fwcfg-agent/agent.conf"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def bare_root(root: Path) -> Path:
    """A guest without a fw_cfg device (no ACPI QEMU0002, no DT node, no sysfs tree), as under
    Cloud Hypervisor or Firecracker, with two NICs."""
    write_netdev(root, "ens3", MAC0)
    write_netdev(root, "ens4", MAC1)
    write_os_release(root, ID="debian", VERSION_ID="12")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")
    return root


def oem(name: str, data: bytes) -> bytes:
    return b"fwcfg-agent:" + name.encode() + b"=" + data


# --- OEM strings alone, and beside fw_cfg ----------------------------------------------------


def test_oem_strings_alone_without_a_fw_cfg_device(guest_root: Path) -> None:
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([b"vendor", oem("opt/GuestInfo", GUESTINFO),
                                              oem("opt/org.example/net1", NET1)]))
    r = agent(guest_root, "apply")
    assert r.code == 0, r.err
    assert (guest_root / "etc/hostname").read_text() == "web1.example.com\n"
    assert "192.0.2.10/24" in (guest_root / NETWORK0).read_text()
    assert "10.0.20.2/24" in (guest_root / NETWORK1).read_text()
    (run,) = runs(guest_root)
    assert run["source"] == "none" and run["outcome"] == "changed"
    assert entries_of(run) == [("opt/GuestInfo", "smbios"), ("opt/org.example/net1", "smbios")]
    keys = [e["key"] for e in run["entries"]]  # type: ignore[attr-defined]
    assert keys == [2, 3]  # the OEM strings' numbers
    assert agent(guest_root, "diff").code == 0


def test_the_table_qemu_made_with_fw_cfg_beside_it(guest_root: Path) -> None:
    """Both channels at once, each with its own entries: merged by name, applied in name order,
    each entry's channel in `show` and the journal."""
    make_guest_root(guest_root, {"opt/org.example/host": b"HOSTNAME=both.example.com\n"},
                    nics=(("ens3", MAC0), ("ens4", MAC1)))
    write_dmi_table(guest_root, QEMU72_OEM_TABLE)
    show = agent(guest_root, "show", "--json")
    assert show.code == 0, show.err
    doc = show.json()
    assert [(e["name"], e["channel"]) for e in doc["entries"]] == [
        ("opt/GuestInfo", "smbios"), ("opt/org.example/dns", "smbios"),
        ("opt/org.example/host", "fw_cfg"), ("opt/org.example/net1", "smbios")]
    assert doc["settings"]["hostname"] == "both.example.com"  # the later name wins
    assert doc["settings"]["dns"] == ["192.0.2.53"]
    r = agent(guest_root, "apply")
    assert r.code == 0, r.err
    (run,) = runs(guest_root)
    assert run["source"] == "sysfs"
    assert entries_of(run) == [(e["name"], e["channel"]) for e in doc["entries"]]
    assert (guest_root / "etc/hostname").read_text() == "both.example.com\n"
    assert "10.0.20.2/24" in (guest_root / NETWORK1).read_text()


def test_the_same_name_in_two_channels_is_an_error_naming_both(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/GuestInfo": b"HOSTNAME=from-fwcfg\n"})
    write_dmi_table(guest_root, smbios_table([oem("opt/GuestInfo", b"HOSTNAME=from-oem\n")]))
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 3, r.err
    (line,) = r.errors()
    assert "opt/GuestInfo" in line and "fw_cfg item 0x" in line and "SMBIOS OEM string 1" in line
    assert "(fw_cfg)" in line and "(smbios)" in line
    assert snapshot(guest_root, "etc") == before
    (run,) = runs(guest_root)
    assert run["outcome"] == "invalid"


def test_the_same_name_twice_in_oem_strings(guest_root: Path) -> None:
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([
        oem("opt/GuestInfo", b"HOSTNAME=a\n"), b"vendor",
        b"fwcfg-agent.base64:opt/GuestInfo=SE9TVE5BTUU9Ygo="]))
    r = agent(guest_root, "apply")
    assert r.code == 3
    assert "SMBIOS OEM string 1" in r.err and "SMBIOS OEM string 3" in r.err


def test_bad_base64_names_entry_and_string(guest_root: Path) -> None:
    make_guest_root(guest_root, {})
    write_dmi_table(guest_root, smbios_table([b"fwcfg-agent.base64:opt/org.example/net0=SE9T@"]))
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 3
    (line,) = r.errors()
    assert "opt/org.example/net0" in line and "SMBIOS OEM string 1" in line
    assert "not valid base64" in line
    assert snapshot(guest_root, "etc") == before


def test_a_bad_payload_by_oem_string_is_reported_as_any_other(guest_root: Path) -> None:
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([oem("opt/x", b"HOSTNAME=ok\nIPADDR=10.0.0.300\n")]))
    r = agent(guest_root, "apply")
    assert r.code == 3 and "opt/x, line 2, key IPADDR" in r.err
    assert not (guest_root / "etc/hostname").exists()


@pytest.mark.parametrize(("cut", "says"), [
    (lambda t: t[:500], "strings of the type 11 structure at offset 246 run past the end"),
    (lambda t: t[:250], "type 11 structure at offset 246 (length 5) runs past the end"),
    (lambda t: t[:-6] + bytes([127, 0, 0x7F, 0]) + b"\0\0", "less than its 4-byte header"),
])
def test_a_truncated_or_looping_table_is_exit_4(guest_root: Path, cut: object,
                                                 says: str) -> None:
    make_guest_root(guest_root, {"opt/GuestInfo": b"HOSTNAME=fine\n"})
    assert callable(cut)
    write_dmi_table(guest_root, cut(QEMU72_OEM_TABLE))
    before = snapshot(guest_root, "etc")
    r = agent(guest_root, "apply")
    assert r.code == 4, r.err
    (line,) = r.errors()
    assert "sys/firmware/dmi/tables/DMI: malformed SMBIOS table" in line and says in line
    assert snapshot(guest_root, "etc") == before


def test_include_exclude_and_the_size_cap_apply_to_every_channel(guest_root: Path) -> None:
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([
        oem("opt/GuestInfo", GUESTINFO), oem("opt/org.example/net1", NET1),
        b"fwcfg-agent.base64:opt/org.example/broken=!!!",  # excluded: never decoded
        oem("other/thing", b"HOSTNAME=not-opt\n")]))
    write_credentials(guest_root, {"fwcfg-agent.dns": b"DNS1=192.0.2.53\n",
                                   "fwcfg-agent.off": b"HOSTNAME=excluded\n"})
    conf(guest_root, "EXCLUDE='opt/org.example/* opt/fwcfg-agent/off'\n")
    doc = agent(guest_root, "show", "--json").json()
    assert [(e["name"], e["channel"]) for e in doc["entries"]] == [
        ("opt/GuestInfo", "smbios"), ("opt/fwcfg-agent/dns", "credential")]
    conf(guest_root, "MAX_ENTRY_SIZE=64\n")
    r = agent(guest_root, "apply")
    assert r.code == 3
    assert "opt/GuestInfo: SMBIOS OEM string 1 is" in r.err and "MAX_ENTRY_SIZE (64)" in r.err
    conf(guest_root, "MAX_ENTRY_SIZE=16\nINCLUDE='opt/fwcfg-agent/*'\n")
    r = agent(guest_root, "apply")
    assert r.code == 3 and "system credential fwcfg-agent.off is 18 bytes" in r.err


# --- systemd system credentials --------------------------------------------------------------


def test_a_credential_is_an_entry(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/GuestInfo": b"HOSTNAME=cred.example.com\n"},
                    nics=(("ens3", MAC0), ("ens4", MAC1)))
    write_credentials(guest_root, {"fwcfg-agent.net1": NET1, "firstboot.locale": b"C.UTF-8",
                                   "vmm.notify_socket": b"vsock-stream:2:1"})
    r = agent(guest_root, "apply")
    assert r.code == 0, r.err
    (run,) = runs(guest_root)
    assert entries_of(run) == [("opt/GuestInfo", "fw_cfg"), ("opt/fwcfg-agent/net1", "credential")]
    assert [e["key"] for e in run["entries"]][1] is None  # type: ignore[attr-defined]
    assert "10.0.20.2/24" in (guest_root / NETWORK1).read_text()


def test_a_credential_whose_name_cannot_be_an_entrys_is_exit_3(guest_root: Path) -> None:
    make_guest_root(guest_root, {})
    write_credentials(guest_root, {"fwcfg-agent.my net": b"HOSTNAME=x\n"})
    r = agent(guest_root, "apply")
    assert r.code == 3 and "system credential fwcfg-agent.my net" in r.err


def test_a_bad_name_the_config_excludes_is_ignored_not_fatal(guest_root: Path) -> None:
    """EXCLUDE turns a channel off (docs/channels.md): a credential or OEM string whose name the
    config leaves out is not judged at all, even when the agent could not take that name; one
    the config takes is still exit 3."""
    make_guest_root(guest_root, {"opt/GuestInfo": b"HOSTNAME=kept.example.com\n"})
    write_credentials(guest_root, {"fwcfg-agent.my net": b"HOSTNAME=x\n"})
    write_dmi_table(guest_root, smbios_table([oem("opt/skip/a b", b"HOSTNAME=y\n"),
                                              oem("opt/skip/\xe9", b"HOSTNAME=z\n")]))
    conf(guest_root, "EXCLUDE='opt/fwcfg-agent/* opt/skip/*'\n")
    r = agent(guest_root, "apply")
    assert r.code == 0, r.err
    assert (guest_root / "etc/hostname").read_text() == "kept.example.com\n"
    conf(guest_root, "EXCLUDE='opt/skip/*'\n")  # the credential channel is on again
    r = agent(guest_root, "apply")
    assert r.code == 3 and "system credential fwcfg-agent.my net" in r.err
    conf(guest_root, "EXCLUDE='opt/fwcfg-agent/*'\n")  # the bad OEM strings are wanted again
    r = agent(guest_root, "apply")
    assert r.code == 3 and "SMBIOS OEM string 1" in r.err


def test_a_credential_and_fw_cfg_with_one_name(guest_root: Path) -> None:
    make_guest_root(guest_root, {"opt/fwcfg-agent/net1": NET1})
    write_credentials(guest_root, {"fwcfg-agent.net1": NET1})
    r = agent(guest_root, "apply")
    assert r.code == 3 and "(fw_cfg)" in r.err and "system credential fwcfg-agent.net1" in r.err


def test_systemds_own_oem_string_is_left_to_systemd(guest_root: Path) -> None:
    """io.systemd.credential:fwcfg-agent.X is systemd's: the agent takes it from the credentials
    directory (where PID 1 put it), never from the table, so it is one entry, not two."""
    make_guest_root(guest_root, {})
    write_dmi_table(guest_root, smbios_table([b"io.systemd.credential:fwcfg-agent.host=" +
                                              b"HOSTNAME=via-systemd\n"]))
    write_credentials(guest_root, {"fwcfg-agent.host": b"HOSTNAME=via-systemd\n"})
    r = agent(guest_root, "apply")
    assert r.code == 0, r.err
    assert entries_of(runs(guest_root)[0]) == [("opt/fwcfg-agent/host", "credential")]
    assert (guest_root / "etc/hostname").read_text() == "via-systemd\n"


# --- no device, and the fast path ---------------------------------------------------------------


def test_the_cheap_check_matches_what_the_full_path_finds(guest_root: Path) -> None:
    bare_root(guest_root)
    assert not any_agent_input(str(guest_root))
    write_dmi_table(guest_root, smbios_table([b"vendor", b"io.systemd.credential:x=1"]))
    write_credentials(guest_root, {"firstboot.locale": b"C.UTF-8"})
    assert not any_agent_input(str(guest_root))
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "no fw_cfg device" in err and loaded == [], err
    assert not (guest_root / "var").exists()
    write_credentials(guest_root, {"fwcfg-agent.host": b"HOSTNAME=cred\n"})
    assert any_agent_input(str(guest_root))
    (guest_root / "run/credentials/@system/fwcfg-agent.host").unlink()
    write_dmi_table(guest_root, smbios_table([oem("opt/x", b"HOSTNAME=oem\n")]))
    assert any_agent_input(str(guest_root))


def test_a_false_alarm_without_a_device_records_no_entries(guest_root: Path) -> None:
    """The table names the agent in a string that is not the agent's (systemd's own, which this
    systemd did not import): the cheap check cannot tell, the full path finds no entries and
    says so, and writes nothing."""
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([b"io.systemd.credential:fwcfg-agent.x=1"]))
    r = agent(guest_root, "apply")
    assert r.code == 0 and "no fw_cfg entries for fwcfg-agent (none)" in r.err, r.err
    assert [x["outcome"] for x in runs(guest_root)] == ["no-entries"]
    assert not (guest_root / "etc/hostname").exists()


def _oem_guest(root: Path) -> Path:
    make_guest_root(root, {"opt/org.example/host": b"HOSTNAME=fast.example.com\n"},
                    nics=(("ens3", MAC0), ("ens4", MAC1)))
    write_dmi_table(root, smbios_table([oem("opt/org.example/net1", NET1)]))
    write_credentials(root, {"fwcfg-agent.dns": b"DNS1=192.0.2.53\n"})
    return root


def test_a_later_boot_replays_every_channel(guest_root: Path) -> None:
    _oem_guest(guest_root)
    assert agent(guest_root, "apply").code == 0
    items = {(k, rel) for k, rel, _ in fast.load(str(guest_root)) or []}
    assert ("f", "sys/firmware/dmi/tables/DMI") in items
    assert ("d", "run/credentials/@system") in items
    assert ("f", "run/credentials/@system/fwcfg-agent.dns") in items
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "nothing changed" in err and loaded == [], err
    last = runs(guest_root)[-1]
    assert entries_of(last) == entries_of(runs(guest_root)[0])


def _new_oem_string(root: Path) -> None:
    write_dmi_table(root, smbios_table([oem("opt/org.example/net1", NET1.replace(b".2\n",
                                                                                 b".3\n"))]))


def _new_credential(root: Path) -> None:
    write_credentials(root, {"fwcfg-agent.zz": b"DNS2=192.0.2.54\n"})


def _changed_credential(root: Path) -> None:
    p = root / "run/credentials/@system/fwcfg-agent.dns"
    p.unlink()
    p.write_bytes(b"DNS1=192.0.2.99\n")


def _table_gone(root: Path) -> None:
    (root / "sys/firmware/dmi/tables/DMI").unlink()


@pytest.mark.parametrize("change", [_new_oem_string, _new_credential, _changed_credential,
                                    _table_gone])
def test_a_change_in_any_channel_takes_the_full_path(guest_root: Path, change: object) -> None:
    _oem_guest(guest_root)
    assert agent(guest_root, "apply").code == 0
    assert callable(change)
    change(guest_root)
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "full run: " in err and "fwcfg_agent.model" in loaded, err
    assert agent(guest_root, "diff").code == 0
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and loaded == [], err


def test_a_later_boot_without_a_device_takes_the_fast_path(guest_root: Path) -> None:
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([oem("opt/GuestInfo", GUESTINFO)]))
    assert agent(guest_root, "apply").code == 0
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "nothing changed" in err and loaded == [], err


def test_a_device_that_appears_after_a_boot_without_one_is_seen(guest_root: Path) -> None:
    bare_root(guest_root)
    write_dmi_table(guest_root, smbios_table([oem("opt/GuestInfo", GUESTINFO)]))
    assert agent(guest_root, "apply").code == 0
    write_qemu_acpi_device(guest_root)
    write_fwcfg_tree(guest_root, {"opt/org.example/host": b"HOSTNAME=late.example.com\n"})
    code, err, loaded = run_agent("apply", "--root", str(guest_root))
    assert code == 0 and "fwcfg_agent.model" in loaded, err
    assert (guest_root / "etc/hostname").read_text() == "late.example.com\n"
    assert entries_of(runs(guest_root)[-1]) == [("opt/GuestInfo", "smbios"),
                                                ("opt/org.example/host", "fw_cfg")]


def test_the_record_of_a_run_without_a_device_proves_there_was_none(guest_root: Path) -> None:
    """What device_present looks at is in the record: the next boot's replay sees a device that
    appears even before its kernel module made the sysfs tree."""
    from fwcfg_agent.config import AgentConfig
    from fwcfg_agent.log import Log
    from fwcfg_agent.pipeline import collect
    from fwcfg_agent.rootfs import Reader

    bare_root(guest_root)
    (guest_root / "sys/bus/acpi/devices/LNXSYSTM:00").mkdir(parents=True)
    write_dmi_table(guest_root, smbios_table([oem("opt/GuestInfo", GUESTINFO)]))
    reader = Reader(str(guest_root))
    got = collect(reader, AgentConfig(), "auto", Log(quiet=True, use_journal=False))
    assert got.source == "none" and [e.name for e in got.entries] == ["opt/GuestInfo"]
    record = {(k, rel): v for k, rel, v in reader.record()}
    assert record[("e", "sys/firmware/qemu_fw_cfg")] == b"0"
    assert record[("d", "sys/bus/acpi/devices")] == b"LNXSYSTM:00"
    write_qemu_acpi_device(guest_root)
    assert fast.replay(str(guest_root), reader.record(), {}, None) == \
        "the directory /sys/bus/acpi/devices changed"
