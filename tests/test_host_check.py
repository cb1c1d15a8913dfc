"""`fwcfg-agent host check`: every rule, and the guest's own messages and exit codes."""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwcfg_agent.cli import main
from fwcfg_agent.host import names
from tests.agent import Outcome, agent
from tests.conftest import make_guest_root

NET0 = b"HOSTNAME=web1.example.org\nHWADDR=52:54:00:12:34:56\nIPADDR=192.0.2.10\nPREFIX=24\n"
FIRST = b"IPADDR=192.0.2.20/24\n"
MAC0, MAC1 = "52:54:00:12:34:56", "52:54:00:12:34:57"


def host(*args: str) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    env = {k: os.environ.pop(k) for k in ("INVOCATION_ID", "JOURNAL_STREAM") if k in os.environ}
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["host", *args])
    finally:
        os.environ.update(env)
    return Outcome(code, out.getvalue(), err.getvalue())


def payload(tmp_path: Path, data: bytes, name: str = "p.env") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_good_entries_pass_and_say_what_they_configure(tmp_path: Path) -> None:
    r = host("check", "--mac", MAC1, "--mac", MAC0,
             f"opt/org.example/net0={payload(tmp_path, NET0)}",
             f"opt/org.example/first={payload(tmp_path, FIRST, 'f.env')}")
    assert r.code == 0, r.err
    assert f"opt/org.example/net0: the NIC with HWADDR {MAC0} (NIC 2 of 2)" in r.out
    assert (f"opt/org.example/first: no HWADDR or DEVICE: the first NIC no other entry names, "
            f"{MAC1} (NIC 1 of 2, in the order of --mac)") in r.out
    assert "fw_cfg file slots: 2 of the 16 free on q35" in r.out
    assert r.out.endswith("ok: 2 entries, channel fwcfg\n")
    assert r.err == ""


@pytest.mark.parametrize(("name", "reason"), [
    ("opt/org.exämple/x", "is not ASCII"),
    ("etc/guest", "is not under opt/"),
    ("opt/" + "a" * 52, "is 56 bytes long; fw_cfg names are at most 55"),
    ("opt/ovmf/X-PciMmio64Mb", "is in opt/ovmf/, which QEMU reserves"),
    ("opt/org.qemu/x", "is in opt/org.qemu/, which QEMU reserves"),
    ("opt/a,b", "holds ','"),
    ("opt/a b", "holds ' '"),
    ("opt/a:b", "holds ':'"),
    ("opt/a//b", "has an empty, '.' or '..' component"),
    ("opt/a/", "has an empty, '.' or '..' component"),
    ("opt/../x", "has an empty, '.' or '..' component"),
])
def test_name_rules(tmp_path: Path, name: str, reason: str) -> None:
    r = host("check", f"{name}={payload(tmp_path, FIRST)}")
    assert r.code == 3
    assert any(line.startswith(f"fwcfg-agent: error: {name}: ") and reason in line
               for line in r.err.splitlines()), r.err
    assert r.out == ""


def test_a_name_of_55_bytes_is_fine(tmp_path: Path) -> None:
    name = "opt/" + "a" * 51
    assert len(name) == 55
    assert host("check", f"{name}={payload(tmp_path, FIRST)}").code == 0


def test_a_name_that_is_a_directory_of_another(tmp_path: Path) -> None:
    p = payload(tmp_path, FIRST)
    r = host("check", f"opt/a={p}", f"opt/a/b={payload(tmp_path, b'HOSTNAME=x', 'h.env')}")
    assert r.code == 3
    assert "fwcfg-agent: error: opt/a: is a directory of opt/a/b" in r.err


def test_a_name_twice(tmp_path: Path) -> None:
    p = payload(tmp_path, FIRST)
    r = host("check", f"opt/x={p}", f"opt/x={p}")
    assert r.code == 3 and "opt/x: is given twice" in r.err


def test_a_name_the_default_exclude_skips_is_a_warning(tmp_path: Path) -> None:
    r = host("check", f"opt/io.cloud-init/x={payload(tmp_path, b'anything at all')}")
    assert r.code == 0
    assert r.err == ("fwcfg-agent: warning: opt/io.cloud-init/x: the agent will not read it (the "
                     "default EXCLUDE pattern opt/io.cloud-init/*); it is meant for another tool\n")


def test_the_guests_agent_conf_decides_what_is_read(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text('EXCLUDE="opt/org.example/skip/*"\nMAX_ENTRY_SIZE=8\n')
    r = host("check", "--agent-conf", str(conf),
             f"opt/org.example/skip/x={payload(tmp_path, b'not a payload!!')}")
    assert r.code == 0
    assert "(its INCLUDE and EXCLUDE)" in r.err


def test_size_cap_says_what_the_guest_says(tmp_path: Path) -> None:
    conf = tmp_path / "agent.conf"
    conf.write_text("MAX_ENTRY_SIZE=16\n")
    big = b"HOSTNAME=" + b"a" * 40 + b"\n"
    r = host("check", "--agent-conf", str(conf), f"opt/big={payload(tmp_path, big)}")
    assert r.code == 3
    root = make_guest_root(tmp_path / "root", {"opt/big": big})
    (root / "etc/fwcfg-agent").mkdir(parents=True)
    (root / "etc/fwcfg-agent/agent.conf").write_text("MAX_ENTRY_SIZE=16\n")
    guest = agent(root, "apply", "--dry-run")
    assert guest.code == 3
    (host_line,) = r.errors()
    (guest_line,) = guest.errors()
    assert guest_line == host_line.replace("error: ", "error: invalid payload, nothing written: ")


@pytest.mark.parametrize(("machine", "free"), [
    ("q35", 16), ("pc", 19), ("pc-q35-7.2", 16), ("pc-i440fx-7.2", 19), ("pc-i440fx-2.8", 3),
    ("pc-q35-2.9", 16), ("pc-q35-2.8", 0), ("pc-1.3", 3),
    # distributions' machine types, as `virsh dumpxml` shows them on RHEL and Ubuntu: QEMU's
    # default directory (the 16-slot one only comes with a QEMU version of 2.8 or older)
    ("pc-q35-rhel9.4.0", 16), ("pc-q35-rhel8.6.0", 16), ("pc-i440fx-rhel7.6.0", 19),
    ("pc-q35-noble", 16), ("pc-i440fx-jammy-hpb", 19), ("pc-q35-8.2+pve0", 16),
])
def test_slot_budget(tmp_path: Path, machine: str, free: int) -> None:
    files = [f"opt/e{i:02d}={payload(tmp_path, b'HOSTNAME=h', f'{i}.env')}"
             for i in range(free + 1)]
    if free:
        ok = host("check", "--machine", machine, *files[:free])
        assert ok.code == 0, ok.err
        assert f"fw_cfg file slots: {free} of the {free} free" in ok.out
        # every slot taken: a CPU exposing VMX would make QEMU add one more file
        assert "etc/msr_feature_control" in ok.err
    over = host("check", "--machine", machine, *files)
    assert over.code == 3
    assert f"{free + 1} of the {free} free" in over.err and "QEMU aborts at start-up" in over.err


def test_a_machine_type_without_a_qemu_version_says_what_it_assumed(tmp_path: Path) -> None:
    r = host("check", "--machine", "pc-q35-rhel9.4.0", f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 0
    assert "pc-q35-rhel9.4.0" not in r.out and "q35 (32 in all" in r.out
    assert "names no QEMU version: counted with QEMU's default of 32" in r.err
    assert host("check", "--machine", "pc-q35-7.2", f"opt/a={payload(tmp_path, FIRST)}").err == ""


def test_a_machine_type_from_the_domain_is_named_as_such(tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(DOMAIN.format(a=MAC0, b=MAC1).replace("pc-i440fx-7.2", "microvm"))
    r = host("check", "--domain-xml", str(xml), f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 2
    assert "--machine:" not in r.err
    assert f"{xml}: <os><type machine=...> (give --machine to override): unknown machine " \
           "type 'microvm'" in r.err
    xml.write_text(DOMAIN.format(a=MAC0, b=MAC1).replace("pc-i440fx-7.2", "pc-q35-rhel9.4.0"))
    r = host("check", "--domain-xml", str(xml), f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 0, r.err
    assert "fw_cfg file slots: 1 of the 16 free on q35" in r.out


def _with_sysinfo(sysinfo: str) -> str:
    return DOMAIN.format(a=MAC0, b=MAC1).replace("</devices>\n", "</devices>\n" + sysinfo)


def test_the_domains_own_fw_cfg_entries_take_slots(tmp_path: Path) -> None:
    theirs = "".join(f"<entry name='opt/com.example/t{i}' file='/x/{i}'/>" for i in range(17))
    xml = tmp_path / "web1.xml"  # pc-i440fx-7.2: 19 free
    xml.write_text(_with_sysinfo(f"<sysinfo type='fwcfg'>{theirs}"
                                 "<entry name='opt/a' file='/old/a.env'/></sysinfo>\n"))
    a, b = payload(tmp_path, FIRST), payload(tmp_path, b"HOSTNAME=h", "h.env")
    r = host("check", "--domain-xml", str(xml), f"opt/a={a}", f"opt/b={b}")
    assert r.code == 0, r.err  # opt/a replaces the domain's opt/a: 19 in all
    assert "fw_cfg file slots: 19 of the 19 free on pc" in r.out
    assert "17 of them the domain's own (opt/com.example/t0, " in r.out
    r = host("check", "--domain-xml", str(xml), f"opt/a={a}", f"opt/b={b}",
             f"opt/c={payload(tmp_path, b'HOSTNAME=c', 'c.env')}")
    assert r.code == 3 and "20 of the 19 free" in r.err
    # and they share the guest's by_name/ tree with the entries
    r = host("check", "--domain-xml", str(xml), f"opt/com.example={a}")
    assert r.code == 3
    assert ("opt/com.example: is a directory of opt/com.example/t0 (already in the domain)"
            in r.err)


def test_a_domain_cpu_that_may_expose_vmx_takes_a_slot(tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(DOMAIN.format(a=MAC0, b=MAC1).replace(
        "<features>", "<cpu mode='host-passthrough'/><features>"))
    r = host("check", "--domain-xml", str(xml), f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 0, r.err
    assert ("fw_cfg file slots: 1 of the 18 free on pc (32 in all, 13 used by QEMU itself with "
            "-kernel, 1 for etc/msr_feature_control (the domain's CPU may expose VMX))") in r.out


def test_smbios_names_follow_the_smbios_rules(tmp_path: Path) -> None:
    p = payload(tmp_path, FIRST)
    long = "opt/org.example/" + "n" * 100  # too long for fw_cfg, fine for an OEM string
    assert host("check", "--channel", "smbios", f"{long}={p}").code == 0
    assert host("check", f"{long}={p}").code == 3
    r = host("check", "--channel", "smbios", f"opt/{'n' * 252}={p}")
    assert r.code == 3 and "the agent takes OEM string names of at most 255" in r.err
    # by_name/ and QEMU's reserved fw_cfg namespaces are fw_cfg's
    h = payload(tmp_path, b"HOSTNAME=x", "h.env")
    assert host("check", "--channel", "smbios", f"opt/a={p}", f"opt/a/b={h}").code == 0
    assert host("check", "--channel", "smbios", f"opt/ovmf/x={h}").code == 0
    # what every host's syntax needs stays
    assert host("check", "--channel", "smbios", f"opt/a,b={p}").code == 3
    assert host("check", "--channel", "smbios", f"etc/a={p}").code == 3


def test_smbios_table_size(tmp_path: Path) -> None:
    data = b"HOSTNAME=h\n" + b"# padding\n" * 3000
    big = payload(tmp_path, data, "big.env")
    ok = host("check", "--channel", "smbios", f"opt/a={big}")
    assert ok.code == 0, ok.err
    # the type 11 header (5 bytes), the string in base64 (4/3 of the payload) and its NUL, and
    # the set's final NUL; 0xFFFF less the 4096 kept for QEMU's own structures
    size = 5 + len("fwcfg-agent.base64:opt/a=") + 4 * ((len(data) + 2) // 3) + 1 + 1
    assert f"SMBIOS OEM strings: {size} bytes of the 61439" in ok.out
    r = host("check", "--channel", "smbios", f"opt/a={big}", f"opt/b={big}")
    assert r.code == 3 and "too large, QEMU refuses to start" in r.err
    assert "SMBIOS 2.1 table length" in r.err
    # the domain's own OEM strings count, its agent strings are replaced
    xml = tmp_path / "web1.xml"
    xml.write_text(_with_sysinfo("<sysinfo type='smbios'><oemStrings>"
                                 f"<entry>io.systemd.credential:x={'b' * 25000}</entry>"
                                 f"<entry>fwcfg-agent:opt/a={'c' * 40000}</entry>"
                                 "</oemStrings></sysinfo>\n"))
    r = host("check", "--channel", "smbios", "--domain-xml", str(xml), f"opt/a={big}")
    assert r.code == 3 and "1 of the strings the domain's own" in r.err


def test_measured_qemu_items() -> None:
    """The figures counted in real guests (names.py says how); the guest suite rechecks q35."""
    assert names.QEMU_ITEMS == {"q35": 16, "pc": 13}
    assert names.budget("q35").free == 16 and names.budget("pc").free == 19


def test_smbios_uses_no_fw_cfg_slots(tmp_path: Path) -> None:
    files = [f"opt/e{i:02d}={payload(tmp_path, b'HOSTNAME=h', f'{i}.env')}" for i in range(20)]
    r = host("check", "--channel", "smbios", *files)
    assert r.code == 0 and "slots" not in r.out


def test_unknown_machine_is_a_command_line_error(tmp_path: Path) -> None:
    r = host("check", "--machine", "virt", f"opt/x={payload(tmp_path, FIRST)}")
    assert r.code == 2 and "unknown machine type 'virt'" in r.err


@pytest.mark.parametrize("spec", ["opt/x", "=x.env", "opt/x="])
def test_bad_arguments(spec: str) -> None:
    r = host("check", spec)
    assert r.code == 2 and "expected NAME=FILE" in r.err


def test_missing_file(tmp_path: Path) -> None:
    r = host("check", f"opt/x={tmp_path / 'nope.env'}")
    assert r.code == 2 and r.err.startswith("fwcfg-agent: error: ") and "No such file" in r.err


def test_hwaddr_must_be_a_nic_of_the_vm(tmp_path: Path) -> None:
    r = host("check", "--mac", MAC1, f"opt/net0={payload(tmp_path, NET0)}")
    assert r.code == 3
    assert r.errors() == [f"fwcfg-agent: error: opt/net0, line 2, key HWADDR: {MAC0} is not a "
                          f"NIC of this VM (its NICs: {MAC1})"]


def test_first_nic_when_every_nic_is_taken(tmp_path: Path) -> None:
    r = host("check", "--mac", MAC0, f"opt/a={payload(tmp_path, NET0)}",
             f"opt/b={payload(tmp_path, FIRST, 'f.env')}")
    assert r.code == 0
    assert "opt/b: no HWADDR or DEVICE, and every NIC of this VM is named by another" in r.err


def test_device_cannot_be_checked_on_the_host(tmp_path: Path) -> None:
    p = payload(tmp_path, b"DEVICE=ens3\nIPADDR=10.0.0.2")
    r = host("check", "--mac", MAC0, f"opt/a={p}")
    assert r.code == 0 and "opt/a: the NIC the guest's kernel names ens3" in r.out


def test_bad_mac_option(tmp_path: Path) -> None:
    r = host("check", "--mac", "01:00:5e:00:00:01", f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 2 and "--mac:" in r.err and "multicast" in r.err


DOMAIN = """<domain type='qemu'>
  <name>web1</name>
  <os><type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type></os>
  <features><acpi/></features>
  <devices>
    <interface type='user'><mac address='{a}'/><address type='pci' domain='0x0000' bus='0x00'
      slot='0x07' function='0x0'/></interface>
    <interface type='user'><mac address='{b}'/><address type='pci' domain='0x0000' bus='0x00'
      slot='0x03' function='0x0'/></interface>
  </devices>
</domain>
"""


def test_domain_xml_nics_in_pci_order_and_its_machine(tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(DOMAIN.format(a=MAC0.upper(), b=MAC1))
    r = host("check", "--domain-xml", str(xml), f"opt/first={payload(tmp_path, FIRST)}")
    assert r.code == 0, r.err
    assert f"the first NIC no other entry names, {MAC1} (NIC 1 of 2, in PCI address order)" in r.out
    assert "free on pc " in r.out  # the machine type came from the domain


def test_domain_xml_without_acpi_is_a_warning(tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    xml.write_text(DOMAIN.format(a=MAC0, b=MAC1).replace("<features><acpi/></features>", ""))
    r = host("check", "--domain-xml", str(xml), f"opt/first={payload(tmp_path, FIRST)}")
    assert r.code == 0
    assert "the domain has no <features><acpi/></features>" in r.err
    r = host("check", "--channel", "smbios", "--domain-xml", str(xml),
             f"opt/first={payload(tmp_path, FIRST)}")
    assert "acpi" not in r.err


def test_domain_xml_without_addresses_is_in_document_order(tmp_path: Path) -> None:
    xml = tmp_path / "web1.xml"
    text = DOMAIN.format(a=MAC0, b=MAC1)
    xml.write_text(text.replace("<address type='pci'", "<address type='drive'"))
    r = host("check", "--domain-xml", str(xml), f"opt/first={payload(tmp_path, FIRST)}")
    assert f"{MAC0} (NIC 1 of 2, in the order of the domain XML" in r.out


@pytest.mark.parametrize(("text", "message"), [
    ("<domain><devices><interface type='user'/></devices></domain>", "has no <mac address"),
    ("<network/>", "not a libvirt domain"),
    ("<domain", "cannot read the domain XML"),
])
def test_bad_domain_xml(tmp_path: Path, text: str, message: str) -> None:
    xml = tmp_path / "d.xml"
    xml.write_text(text)
    r = host("check", "--domain-xml", str(xml), f"opt/a={payload(tmp_path, FIRST)}")
    assert r.code == 2 and message in r.err


def test_every_bad_entry_is_reported(tmp_path: Path) -> None:
    r = host("check", f"opt/a={payload(tmp_path, b'IPADDR=1.1.1.1 x')}",
             f"opt/b={payload(tmp_path, b'HOSTNAME=$(reboot)', 'b.env')}",
             f"etc/c={payload(tmp_path, FIRST, 'c.env')}")
    assert r.code == 3
    errors = r.errors()
    assert len(errors) == 3, r.err
    assert errors[0].startswith("fwcfg-agent: error: etc/c: is not under opt/")
    assert errors[1] == ("fwcfg-agent: error: opt/a, line 1, key IPADDR: unexpected text after "
                         "the value: 'x' (quote values that contain spaces)")
    assert errors[2].startswith("fwcfg-agent: error: opt/b, line 1, key HOSTNAME: ")
    assert "warning" not in r.err  # etc/c's own error says it all


def test_a_model_error_after_parsing(tmp_path: Path) -> None:
    r = host("check", f"opt/a={payload(tmp_path, b'IPADDR=300.1.1.1')}")
    assert r.errors() == ["fwcfg-agent: error: opt/a, line 1, key IPADDR: '300.1.1.1' is not "
                          "an IP address"]


# The guest's own parser and validators: whatever bytes an entry holds, `host check` and the
# guest's `apply` agree on whether it is a bad payload, and say the same thing about it.
LINES = st.sampled_from([
    "HOSTNAME=web1", "HOSTNAME=-bad", "IPADDR=192.0.2.10", "IPADDR=192.0.2.300", "PREFIX=24",
    "PREFIX=33", "GATEWAY=192.0.2.1", "DNS1=2001:db8::1", "MTU=9000", "MTU=12",
    "HWADDR=52:54:00:12:34:56", "HWADDR=zz", "ROUTE1='10.0.0.0/8 via 192.0.2.1'", "# comment",
    "X=$(id)", "BOOTPROTO=dhcp", "BOOTPROTO=maybe", "IPV6ADDR=2001:db8::5/64",
    "export DNS2=1.1.1.1",
    "IPADDR=192.0.2.10", "TYPE=Bond", "KEY = value",
])


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINES, max_size=6), junk=st.binary(max_size=6))
def test_host_and_guest_agree(tmp_path: Path, lines: list[str], junk: bytes) -> None:
    tmp = Path(tempfile.mkdtemp(dir=tmp_path))
    data = "\n".join(lines).encode() + (b"\n" + junk if junk else b"")
    r = host("check", "--mac", MAC0, f"opt/x={payload(tmp, data)}")
    root = make_guest_root(tmp / "root", {"opt/x": data}, nics=(("ens3", MAC0),))
    guest = agent(root, "apply", "--dry-run")
    assert (r.code == 3) == (guest.code == 3), (r.err, guest.err)
    if guest.code == 3:
        (line,) = guest.errors()
        # the host names a NIC it knows only by MAC as the agent does: enxMAC
        line = line.replace("invalid payload, nothing written: ", "")
        assert line.replace("ens3", "enx" + MAC0.replace(":", "")) in r.errors()
