"""`fwcfg-agent host args`: every host and channel, each output read back the way its consumer
reads it (bash for shell text, the guest's own OEM string decoder, Cloud Hypervisor's list
syntax), and the libvirt XML checked by libvirt's own schema and virt-install."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fwcfg_agent.host import forms
from fwcfg_agent.sources.dmi import OemString, agent_string, oem_strings
from tests.test_host_check import NET0, host, payload

ONE_LINE = b"HOSTNAME=web1.example.org\n"


def shell_words(text: str) -> list[str]:
    """The words bash makes of TEXT pasted onto a command line."""
    r = subprocess.run(["bash", "-c", f"printf '%s\\0' {text}"], capture_output=True,
                       check=True)
    return [w.decode() for w in r.stdout.split(b"\0")[:-1]]


def decoded(oem: str) -> tuple[str, bytes]:
    """What the guest's SMBIOS channel makes of an OEM string: (entry name, payload)."""
    s = agent_string(OemString(1, oem.encode()))
    assert s is not None, oem
    return s.name, s.payload()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    d = tmp_path / "vm a,b"  # a space and a comma in the directory
    d.mkdir()
    return {"net0": payload(d, NET0, "net0.env"), "host": payload(d, ONE_LINE, "host.env")}


def test_qemu_fwcfg(files: dict[str, str]) -> None:
    r = host("args", "--for", "qemu", f"opt/org.example/net0={files['net0']}",
             f"opt/org.example/host={files['host']}")
    assert r.code == 0, r.err
    net0 = files["net0"].replace(",", ",,")
    hostf = files["host"].replace(",", ",,")
    assert r.out == (f"-fw_cfg 'name=opt/org.example/net0,file={net0}' \\\n"
                     f"-fw_cfg 'name=opt/org.example/host,file={hostf}'\n")
    assert shell_words(r.out) == ["-fw_cfg", f"name=opt/org.example/net0,file={net0}",
                                  "-fw_cfg", f"name=opt/org.example/host,file={hostf}"]


def test_qemu_smbios_strings_decode_to_the_payload(files: dict[str, str]) -> None:
    r = host("args", "--for", "qemu", "--channel", "smbios",
             f"opt/org.example/net0={files['net0']}", f"opt/org.example/host={files['host']}")
    assert r.code == 0, r.err
    words = shell_words(r.out)
    assert words[0::2] == ["-smbios", "-smbios"]
    values = [w.removeprefix("type=11,value=") for w in words[1::2]]
    assert values[0] == "fwcfg-agent.base64:opt/org.example/net0=" + base64.b64encode(
        NET0).decode()
    assert values[1] == "fwcfg-agent:opt/org.example/host=HOSTNAME=web1.example.org"
    assert decoded(values[0]) == ("opt/org.example/net0", NET0)
    assert decoded(values[1]) == ("opt/org.example/host", ONE_LINE.rstrip(b"\n"))


@pytest.mark.parametrize("data", [b"A=1,2\n", b"A='x y'\n", b"A=1\nB=2", b"", b"A=\"[x]\"",
                                  b"HOSTNAME=a\r\n", "A=é".encode()])
def test_oem_string_is_base64_unless_inert(data: bytes) -> None:
    oem = forms.oem_string("opt/x", data)
    assert oem.startswith("fwcfg-agent.base64:opt/x=")
    assert decoded(oem) == ("opt/x", data)


def test_libvirt_fwcfg_block_escapes_xml(tmp_path: Path) -> None:
    odd = tmp_path / "a&b'<c>\"" / "net0.env"
    odd.parent.mkdir()
    odd.write_bytes(NET0)
    r = host("args", "--for", "libvirt", f"opt/org.example/net0={odd}")
    assert r.code == 0, r.err
    el = ET.fromstring(r.out)
    assert el.tag == "sysinfo" and el.get("type") == "fwcfg"
    assert [(e.get("name"), e.get("file")) for e in el] == [("opt/org.example/net0", str(odd))]


def test_libvirt_smbios_fragment(files: dict[str, str]) -> None:
    r = host("args", "--for", "libvirt", "--channel", "smbios", f"opt/a={files['host']}")
    assert r.out == ("<!-- in <os>: -->\n<smbios mode='sysinfo'/>\n<!-- in <domain>: -->\n"
                     '<sysinfo type="smbios">\n  <oemStrings>\n'
                     "    <entry>fwcfg-agent:opt/a=HOSTNAME=web1.example.org</entry>\n"
                     "  </oemStrings>\n</sysinfo>\n")


def test_virt_install(files: dict[str, str]) -> None:
    r = host("args", "--for", "virt-install", f"opt/org.example/net0={files['net0']}")
    words = shell_words(r.out)
    assert words == ["--sysinfo", f'type=fwcfg,entry0.name=opt/org.example/net0,'
                                  f'entry0.file="{files["net0"]}"']
    r = host("args", "--for", "virt-install", "--channel", "smbios", f"opt/a={files['host']}")
    assert shell_words(r.out) == ["--sysinfo", "type=smbios,oemStrings.entry0=fwcfg-agent:opt/a="
                                               "HOSTNAME=web1.example.org"]


def ch_items(value: str) -> list[dict[str, str]]:
    """Cloud Hypervisor's reading of `items=[...]` (vmm/src/config.rs, option_parser): the
    list between the brackets split on ':', each item on ',' into key=value."""
    body = value.split("items=", 1)[1]
    assert body.startswith("[") and body.endswith("]")
    return [dict(kv.split("=", 1) for kv in item.split(",")) for item in body[1:-1].split(":")]


def test_cloud_hypervisor(tmp_path: Path) -> None:
    a, b = payload(tmp_path, NET0, "net0.env"), payload(tmp_path, ONE_LINE, "host.env")
    r = host("args", "--for", "cloud-hypervisor", f"opt/org.example/net0={a}",
             f"opt/org.example/host={b}")
    assert r.code == 0, r.err
    words = shell_words(r.out)
    assert words[0] == "--fw-cfg-config"
    # kernel, cmdline and initramfs default to on, and then Cloud Hypervisor refuses to start
    # without --kernel, --cmdline and --initramfs all given (FwCfgConfig::validate)
    assert words[1].startswith("kernel=off,cmdline=off,initramfs=off,items=[")
    assert ch_items(words[1]) == [{"name": "opt/org.example/net0", "file": a},
                                  {"name": "opt/org.example/host", "file": b}]
    r = host("args", "--for", "cloud-hypervisor", "--channel", "smbios", f"opt/a={a}",
             f"opt/b={b}")
    (option, value) = shell_words(r.out)
    assert option == "--platform" and value.startswith("oem_strings=[")
    strings = value[len("oem_strings=["):-1].split(",")
    assert [decoded(s) for s in strings] == [("opt/a", NET0), ("opt/b", ONE_LINE.rstrip())]


@pytest.mark.parametrize("bad", ["a:b", "a,b", "a[b]", 'a"b'])
def test_cloud_hypervisor_refuses_paths_it_cannot_parse(tmp_path: Path, bad: str) -> None:
    d = tmp_path / bad
    d.mkdir()
    r = host("args", "--for", "cloud-hypervisor", f"opt/a={payload(d, NET0)}")
    assert r.code == 2 and "Cloud Hypervisor cannot take a path" in r.err and r.out == ""


def test_proxmox(files: dict[str, str]) -> None:
    r = host("args", "--for", "proxmox", "--vmid", "105", f"opt/org.example/net0={files['net0']}")
    assert r.code == 0, r.err
    words = shell_words(r.out)
    assert words[:4] == ["qm", "set", "105", "--args"]
    # Proxmox splits `args` like a shell command line
    assert shell_words(words[4]) == ["-fw_cfg", "name=opt/org.example/net0,file="
                                     + files["net0"].replace(",", ",,")]
    assert host("args", "--for", "proxmox", f"opt/a={files['net0']}").code == 2


def test_host_dir_moves_the_paths(files: dict[str, str]) -> None:
    r = host("args", "--for", "qemu", "--host-dir", "/srv/vm", f"opt/a={files['net0']}")
    assert r.out == "-fw_cfg name=opt/a,file=/srv/vm/net0.env\n"
    assert host("args", "--for", "qemu", "--host-dir", "srv", f"opt/a={files['net0']}").code == 2


def test_a_bad_entry_prints_nothing(tmp_path: Path) -> None:
    r = host("args", "--for", "qemu", f"opt/a={payload(tmp_path, b'IPADDR=1.2.3')}")
    assert r.code == 3 and r.out == "" and "opt/a, line 1, key IPADDR" in r.err


# -- libvirt's schema and virt-install -----------------------------------------------------------

SKELETON = """<domain type='qemu'>
  <name>fwcfg-host-test</name>
  <memory unit='MiB'>512</memory>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>/boot/vmlinuz</kernel>
  </os>
  <devices>
    <interface type='user'><mac address='52:54:00:12:34:56'/><model type='virtio'/></interface>
  </devices>
</domain>
"""


def _bare(el: ET.Element) -> bytes:
    """An element without the whitespace its layout added."""
    for child in el.iter():
        child.text = (child.text or "").strip() or None
        child.tail = None
    return ET.tostring(el)


def _validate(path: Path) -> None:
    tool = shutil.which("virt-xml-validate")
    assert tool, "virt-xml-validate is missing: run tools/bootstrap (libvirt-clients)"
    r = subprocess.run([tool, str(path), "domain"], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr + path.read_text()


def _merged_domain(tmp_path: Path, files: dict[str, str], channel: str,
                   skeleton_text: str) -> ET.Element:
    """`host args --for libvirt --domain-xml` of the net0 and host entries into a domain of
    SKELETON_TEXT: the whole domain it prints passes libvirt's schema; returned parsed."""
    skeleton = tmp_path / "skeleton.xml"
    skeleton.write_text(skeleton_text)
    r = host("args", "--for", "libvirt", "--channel", channel, "--domain-xml", str(skeleton),
             f"opt/org.example/net0={files['net0']}", f"opt/org.example/host={files['host']}")
    assert r.code == 0, r.err
    whole = tmp_path / "domain.xml"
    whole.write_text(r.out)
    _validate(whole)
    return ET.fromstring(r.out)


@pytest.mark.parametrize("channel", ["fwcfg", "smbios"])
def test_libvirt_output_in_a_whole_domain_passes_libvirts_schema(
        tmp_path: Path, files: dict[str, str], channel: str) -> None:
    dom = _merged_domain(tmp_path, files, channel, SKELETON)
    (sysinfo,) = dom.findall("sysinfo")
    fragment = host("args", "--for", "libvirt", "--channel", channel,
                    f"opt/org.example/net0={files['net0']}",
                    f"opt/org.example/host={files['host']}").out
    block = fragment[fragment.index("<sysinfo"):]
    assert _bare(sysinfo) == _bare(ET.fromstring(block))
    if channel == "smbios":
        assert dom.find("os/smbios").get("mode") == "sysinfo"  # type: ignore[union-attr]
    # the fragment pasted by hand into the skeleton validates too
    pasted = SKELETON.replace("</devices>\n", "</devices>\n" + block)
    if channel == "smbios":
        pasted = pasted.replace("</kernel>", "</kernel>\n<smbios mode='sysinfo'/>")
    (tmp_path / "pasted.xml").write_text(pasted)
    _validate(tmp_path / "pasted.xml")


@pytest.mark.parametrize("channel", ["fwcfg", "smbios"])
def test_virt_install_makes_the_same_sysinfo(tmp_path: Path, files: dict[str, str],
                                             channel: str) -> None:
    tool = shutil.which("virt-install")
    assert tool, "virt-install is missing: run tools/bootstrap (virtinst)"
    entries = [f"opt/org.example/net0={files['net0']}", f"opt/org.example/host={files['host']}"]
    sysinfo_args = shell_words(host("args", "--for", "virt-install", "--channel", channel,
                                    *entries).out)
    r = subprocess.run([tool, "--connect", "test:///default", "--print-xml", "--name", "t1",
                        "--memory", "512", "--disk", "none", "--boot", "kernel=/boot/vmlinuz",
                        "--osinfo", "detect=off,name=linux2022", *sysinfo_args],
                       capture_output=True, text=True, check=False,
                       env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    made = ET.fromstring(r.stdout)
    (got,) = made.findall("sysinfo")
    block = host("args", "--for", "libvirt", "--channel", channel, *entries).out
    want = ET.fromstring(block[block.index("<sysinfo"):])
    assert _bare(got) == _bare(want)
    if channel == "smbios":
        assert made.find("os/smbios").get("mode") == "sysinfo"  # type: ignore[union-attr]


# -- what is already in the domain stays -------------------------------------------------------

OTHERS_FWCFG = """<sysinfo type='fwcfg'>
    <entry name='opt/com.coreos/config' file='/var/lib/libvirt/ignition/web1.ign'/>
    <entry name='opt/org.example/net0' file='/old/net0.env'/>
  </sysinfo>
"""
OTHERS_SMBIOS = """<sysinfo type='smbios'>
    <bios><entry name='vendor'>Example BIOS</entry></bios>
    <system><entry name='serial'>SN-1234</entry></system>
    <oemStrings>
      <entry>io.systemd.credential:firstboot.locale=C.UTF-8</entry>
      <entry>fwcfg-agent:opt/org.example/old=HOSTNAME=old</entry>
      <entry>vendor string</entry>
    </oemStrings>
  </sysinfo>
"""


@pytest.mark.parametrize("channel", ["fwcfg", "smbios"])
def test_libvirt_domain_keeps_what_other_tools_put_in_sysinfo(
        tmp_path: Path, files: dict[str, str], channel: str) -> None:
    others = SKELETON.replace("</devices>\n", "</devices>\n" + OTHERS_FWCFG + OTHERS_SMBIOS)
    dom = _merged_domain(tmp_path, files, channel, others)
    fwcfg, smbios = (dom.find(f"sysinfo[@type='{t}']") for t in ("fwcfg", "smbios"))
    assert fwcfg is not None and smbios is not None
    assert len(dom.findall("sysinfo")) == 2
    entries = [(e.get("name"), e.get("file")) for e in fwcfg.findall("entry")]
    oem = [e.text for e in smbios.findall("oemStrings/entry")]
    assert smbios.find("bios/entry[@name='vendor']").text == "Example BIOS"  # type: ignore
    assert smbios.find("system/entry[@name='serial']").text == "SN-1234"  # type: ignore
    if channel == "fwcfg":
        # another tool's entry stays; the entry of the same name is replaced, not doubled
        assert entries == [("opt/com.coreos/config", "/var/lib/libvirt/ignition/web1.ign"),
                           ("opt/org.example/net0", files["net0"]),
                           ("opt/org.example/host", files["host"])]
        assert oem[0] == "io.systemd.credential:firstboot.locale=C.UTF-8"
        assert len(oem) == 3  # the SMBIOS block is not touched
    else:
        assert entries[0][0] == "opt/com.coreos/config" and len(entries) == 2
        # every string that is not the agent's stays; the agent's are the given set
        assert oem[:2] == ["io.systemd.credential:firstboot.locale=C.UTF-8", "vendor string"]
        assert [decoded(s) for s in oem[2:]] == [  # type: ignore[arg-type]
            ("opt/org.example/net0", NET0), ("opt/org.example/host", ONE_LINE.rstrip(b"\n"))]
        assert dom.find("os/smbios").get("mode") == "sysinfo"  # type: ignore[union-attr]


# -- QEMU's -smbios type=11,path=FILE ------------------------------------------------------------


def test_qemu_smbios_path_files(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "oem a,b"
    odd = payload(tmp_path, b"A=1,2", "odd.env")  # no final newline: the base64 form
    r = host("args", "--for", "qemu", "--channel", "smbios", "--smbios-files", str(out),
             f"opt/org.example/net0={files['net0']}", f"opt/org.example/odd={odd}")
    assert r.code == 0, r.err
    words = shell_words(r.out)
    net0, oddf = out / "opt/org.example/net0.oem", out / "opt/org.example/odd.oem"
    assert words == ["-smbios", f"type=11,path={str(net0).replace(',', ',,')}",
                     "-smbios", f"type=11,path={str(oddf).replace(',', ',,')}"]
    # QEMU takes a path= file's bytes as the string, as they are (a NUL refused)
    assert net0.read_bytes() == b"fwcfg-agent:opt/org.example/net0=" + NET0
    assert oddf.read_bytes() == b"fwcfg-agent.base64:opt/org.example/odd=QT0xLDI=\n"
    for f, name, data in ((net0, "opt/org.example/net0", NET0),
                          (oddf, "opt/org.example/odd", b"A=1,2")):
        assert b"\0" not in f.read_bytes()
        assert decoded(f.read_bytes().decode()) == (name, data)
    # --host-dir: the files are written here, the paths say where they will be
    r = host("args", "--for", "proxmox", "--vmid", "7", "--channel", "smbios", "--host-dir",
             "/var/lib/vz/snippets", "--smbios-files", str(out), f"opt/x={files['host']}")
    assert shell_words(shell_words(r.out)[4]) == [
        "-smbios", "type=11,path=/var/lib/vz/snippets/opt/x.oem"]
    assert (out / "opt/x.oem").is_file()


@pytest.mark.parametrize("data", [b"HOSTNAME=a\r\n", b"A=\x00\n", "A=é\n".encode(), b"\n",
                                  b"", b"A=1\nB=2\n\n"])
def test_oem_file_forms(data: bytes) -> None:
    content = forms.oem_file("opt/x", data)
    assert content.endswith(b"\n") and b"\0" not in content
    assert decoded(content.decode("ascii")) == ("opt/x", data)
    text = data and data.endswith(b"\n") and all(c in b"\t\n" or 0x20 <= c < 0x7F for c in data)
    assert content.startswith(b"fwcfg-agent:" if text else b"fwcfg-agent.base64:")


def test_smbios_files_is_for_qemu_smbios(tmp_path: Path, files: dict[str, str]) -> None:
    for argv in (["--for", "qemu"], ["--for", "libvirt", "--channel", "smbios"]):
        r = host("args", *argv, "--smbios-files", str(tmp_path / "o"), f"opt/a={files['host']}")
        assert r.code == 2 and "--smbios-files is for --channel smbios" in r.err
    assert not (tmp_path / "o").exists()


def _qemu_oem_strings(args: list[str]) -> list[bytes]:
    """The OEM strings of the SMBIOS table QEMU builds for ARGS, read back from a QEMU that
    never runs the guest: stopped before its first instruction (-S), it is asked through its
    monitor to select and read fw_cfg's etc/smbios/smbios-tables (port I/O 0x510/0x511)."""
    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86_64 is missing")

    def session(reads: list[tuple[int, int]]) -> list[bytes]:
        cmds = []
        for key, n in reads:
            cmds += [f"o /h 0x510 {key:#x}"] + ["i /b 0x511"] * n
        r = subprocess.run([qemu, "-machine", "q35,accel=tcg", "-nodefaults", "-display", "none",
                            "-S", "-monitor", "stdio", *args],
                           input="\n".join([*cmds, "quit"]) + "\n", capture_output=True,
                           text=True, check=False, timeout=120)
        got = bytes(int(v, 16) for v in re.findall(r"portb\[0x0511\] = (0x[0-9a-f]+)", r.stdout))
        assert len(got) == sum(n for _, n in reads), r.stderr
        out, pos = [], 0
        for _, n in reads:
            out.append(got[pos:pos + n])
            pos += n
        return out

    (directory,) = session([(0x19, 4 + 64 * 32)])
    count = int.from_bytes(directory[:4], "big")
    files = {}
    for i in range(count):
        entry = directory[4 + 64 * i:4 + 64 * (i + 1)]
        files[entry[8:].split(b"\0")[0]] = (int.from_bytes(entry[4:6], "big"),
                                           int.from_bytes(entry[:4], "big"))
    (table,) = session([files[b"etc/smbios/smbios-tables"]])
    return [s.text for s in oem_strings(table)]


def test_qemu_makes_the_strings_the_guest_decodes(tmp_path: Path, files: dict[str, str]) -> None:
    out = tmp_path / "oem"
    odd = payload(tmp_path, b"A=1,2", "odd.env")
    entries = [f"opt/org.example/net0={files['net0']}", f"opt/org.example/odd={odd}"]
    by_path = shell_words(host("args", "--for", "qemu", "--channel", "smbios",
                               "--smbios-files", str(out), *entries).out)
    by_value = shell_words(host("args", "--for", "qemu", "--channel", "smbios", *entries).out)
    strings = _qemu_oem_strings(by_path + by_value)
    assert [decoded(s.decode()) for s in strings] == [
        ("opt/org.example/net0", NET0), ("opt/org.example/odd", b"A=1,2")] * 2
    # a path= string is the file's bytes, its final newline too
    assert strings[0] == (out / "opt/org.example/net0.oem").read_bytes()


def test_proxmox_smbios(files: dict[str, str]) -> None:
    r = host("args", "--for", "proxmox", "--vmid", "105", "--channel", "smbios",
             f"opt/org.example/net0={files['net0']}", f"opt/org.example/host={files['host']}")
    assert r.code == 0, r.err
    words = shell_words(r.out)
    assert words[:4] == ["qm", "set", "105", "--args"]
    args = shell_words(words[4])  # Proxmox splits `args` like a shell command line
    assert args[0::2] == ["-smbios", "-smbios"]
    assert [decoded(a.removeprefix("type=11,value=")) for a in args[1::2]] == [
        ("opt/org.example/net0", NET0), ("opt/org.example/host", ONE_LINE.rstrip(b"\n"))]
    assert "replaces the VM's whole args setting" in r.err


def test_cloud_hypervisor_platform_must_be_merged(files: dict[str, str]) -> None:
    r = host("args", "--for", "cloud-hypervisor", "--channel", "smbios",
             f"opt/a={files['host']}")
    assert r.code == 0
    assert r.err.startswith("fwcfg-agent: note: Cloud Hypervisor takes one --platform option")
    assert shell_words(r.out)[0] == "--platform"


def incus_string(setting: str) -> str:
    """The OEM string Incus makes of `incus config set VM KEY=VALUE` (the CLI splits at the
    first '='; driver_qemu.go writes `smbios11.KEY` with value VALUE as "KEY=VALUE")."""
    key, _, value = setting.partition("=")
    assert key.startswith("smbios11.")
    return key[len("smbios11."):] + "=" + value


def test_incus(files: dict[str, str]) -> None:
    r = host("args", "--for", "incus", "--channel", "smbios", "--instance", "web1",
             f"opt/org.example/net0={files['net0']}", f"opt/org.example/host={files['host']}")
    assert r.code == 0, r.err
    commands = [shell_words(line) for line in r.out.splitlines()]
    assert [c[:4] for c in commands] == [["incus", "config", "set", "web1"]] * 2
    assert [decoded(incus_string(c[4])) for c in commands] == [
        ("opt/org.example/net0", NET0), ("opt/org.example/host", ONE_LINE.rstrip(b"\n"))]
    assert "restart" in r.err
    assert host("args", "--for", "incus", "--instance", "web1",
                f"opt/a={files['host']}").code == 2  # fw_cfg: Incus has no setting for it
    assert host("args", "--for", "incus", "--channel", "smbios",
                f"opt/a={files['host']}").code == 2  # no --instance
