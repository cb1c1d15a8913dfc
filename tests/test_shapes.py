"""Issue 14, parts 2-4: VLANs, bonds and bridges. The model and its checks (parents, members,
loops, duplicate VLAN IDs, bonding options), exit 3 through the CLI with nothing written, the
ifupdown packages' warning, and the fast path after such a run.

What each format writes is checked by its real consumer in test_render_consumers.py (cases
bond-vlan-bridge and vlans) and pinned by golden files (render and apply: examples/vlan, bond,
bridge)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fwcfg_agent.errors import PayloadError
from fwcfg_agent.model import NETWORK_FORMATS, HostConfig
from fwcfg_agent.payload import parse
from fwcfg_agent.render import render
from fwcfg_agent.render.env import Templates
from fwcfg_agent.settings import NetDev, build
from fwcfg_agent.shapes import BOND_MODES, BOND_OPTIONS, KERNEL_BOND_OPTIONS
from tests.agent import agent, snapshot
from tests.conftest import REPO, make_guest_root
from tests.render_cases import CASE_BY_NAME
from tests.test_fast import run_agent

NICS = (NetDev("ens3", "52:54:00:00:00:01"), NetDev("ens4", "52:54:00:00:00:02"),
        NetDev("ens5", "52:54:00:00:00:03"))
BOND = ("opt/10-bond", "DEVICE=bond0\nTYPE=Bond\nBONDING_MASTER=yes\n"
                       "BONDING_OPTS='mode=active-backup miimon=100'\nIPADDR=10.0.0.5/24\n")
PORT_A = ("opt/11-a", "HWADDR=52:54:00:00:00:01\nMASTER=bond0\nSLAVE=yes\n")
PORT_B = ("opt/12-b", "DEVICE=ens4\nMASTER=bond0\nSLAVE=yes\n")


def model(*entries: tuple[str, str]) -> HostConfig:
    return build([parse(n, t.encode()) for n, t in entries], NICS, "eth0").config


def error(*entries: tuple[str, str]) -> PayloadError:
    with pytest.raises(PayloadError) as e:
        model(*entries)
    return e.value


def test_a_bond_of_two_nics() -> None:
    config = model(BOND, PORT_A, PORT_B)
    by = {i.name: i for i in config.interfaces}
    assert by["bond0"].kind == "bond" and by["bond0"].mac is None
    assert by["bond0"].bond_options == (("mode", "active-backup"), ("miimon", "100"))
    assert [m.name for m in by["bond0"].members(config)] == ["ens3", "ens4"]
    assert by["ens3"].master == "bond0" and by["ens3"].master_kind == "bond"
    assert by["ens3"].mac == "52:54:00:00:00:01" and not by["ens3"].addresses


@pytest.mark.parametrize(("opts", "canonical"), [
    ("mode=1 miimon=100", (("mode", "active-backup"), ("miimon", "100"))),
    ("miimon=0100 mode=802.3ad lacp_rate=1 xmit_hash_policy=layer3+4 min_links=1",
     (("mode", "802.3ad"), ("miimon", "100"), ("lacp_rate", "fast"),
      ("xmit_hash_policy", "layer3+4"), ("min_links", "1"))),
    ("", (("mode", "balance-rr"),)),  # the kernel's default, said explicitly
    ("mode=BALANCE-ALB updelay=200 downdelay=200 miimon=100",
     (("mode", "balance-alb"), ("miimon", "100"), ("updelay", "200"), ("downdelay", "200"))),
])
def test_bonding_options_are_made_canonical(opts: str, canonical: tuple[tuple[str, str]]) -> None:
    (bond,) = [i for i in model(("opt/b", f"DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='{opts}'\n"
                                          "BOOTPROTO=none\n")).interfaces]
    assert bond.bond_options == canonical


def test_vlans_by_name_and_by_physdev() -> None:
    config = model(("opt/a", "DEVICE=ens3\nIPADDR=10.0.0.5/24\n"),
                   ("opt/b", "DEVICE=ens3.100\nTYPE=Vlan\nIPADDR=10.1.0.5/24\n"),
                   ("opt/c", "DEVICE=vlan7\nVLAN=yes\nPHYSDEV=ens5\nVLAN_ID=7\nBOOTPROTO=dhcp\n"))
    by = {i.name: i for i in config.interfaces}
    assert (by["ens3.100"].parent, by["ens3.100"].vlan_id) == ("ens3", 100)
    assert (by["vlan7"].parent, by["vlan7"].vlan_id) == ("ens5", 7)
    # ens5 has no entry: a bare link for the VLAN to ride on, named as PHYSDEV names it
    assert by["ens5"].kind == "ethernet" and not by["ens5"].addresses and by["ens5"].mac is None
    assert [v.name for v in by["ens3"].vlans(config)] == ["ens3.100"]


def test_a_vlan_on_a_bond_and_a_bridge() -> None:
    config = CASE_BY_NAME["bond-vlan-bridge"].config
    by = {i.name: i for i in config.interfaces}
    assert by["bond0.100"].parent == "bond0" and by["br0"].kind == "bridge"
    assert by["br0"].stp is False and by["br0"].forward_delay == 0
    assert by["ens5"].master == "br0" and by["ens5"].master_kind == "bridge"


ERRORS = [
    # a member of a bond or bridge that no entry defines
    ((("opt/a", "DEVICE=ens3\nMASTER=bond7\nSLAVE=yes\n"),), "opt/a", 2, "MASTER",
     "no entry defines the bond bond7"),
    ((("opt/a", "DEVICE=ens3\nBRIDGE=br9\n"),), "opt/a", 2, "BRIDGE",
     "no entry defines the bridge br9"),
    ((BOND, ("opt/a", "DEVICE=ens3\nBRIDGE=bond0\n")), "opt/a", 2, "BRIDGE",
     "bond0 is a bond, not a bridge"),
    # a device that is both a member and addressed
    ((BOND, ("opt/a", "DEVICE=ens3\nMASTER=bond0\nSLAVE=yes\nIPADDR=10.0.0.9/24\n")), "opt/a",
     4, "IPADDR", "member of bond0"),
    ((BOND, ("opt/a", "DEVICE=ens3\nMASTER=bond0\nSLAVE=yes\nBOOTPROTO=dhcp\n")), "opt/a", 4,
     "BOOTPROTO", "DHCP goes on bond0"),
    ((("opt/br", "DEVICE=br0\nTYPE=Bridge\nBOOTPROTO=none\n"),
      ("opt/a", "DEVICE=ens3\nBRIDGE=br0\nIPV6ADDR=2001:db8::9\n")), "opt/a", 3, "IPV6ADDR",
     "member of br0"),
    ((BOND, ("opt/a", "DEVICE=ens3\nMASTER=bond0\n")), "opt/a", 2, "MASTER", "SLAVE=yes"),
    # loops
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nMASTER=bond0\nSLAVE=yes\nBOOTPROTO=none\n"),),
     "opt/a", 3, "MASTER", "member of itself (a loop)"),
    ((("opt/a", "DEVICE=br0\nTYPE=Bridge\nBRIDGE=br1\nBOOTPROTO=none\n"),
      ("opt/b", "DEVICE=br1\nTYPE=Bridge\nBRIDGE=br0\nBOOTPROTO=none\n")), "opt/a", 3, "BRIDGE",
     "a bridge cannot be a member of a bridge (a loop)"),
    ((BOND, ("opt/b", "DEVICE=bond1\nTYPE=Bond\nMASTER=bond0\nSLAVE=yes\nBOOTPROTO=none\n")),
     "opt/b", 3, "MASTER", "a bond cannot be a member of a bond"),
    ((("opt/a", "DEVICE=vlan5\nTYPE=Vlan\nPHYSDEV=vlan5\nVLAN_ID=5\nBOOTPROTO=none\n"),),
     "opt/a", 1, "DEVICE", "its own parent (a loop)"),
    # duplicate VLAN IDs on one parent
    ((("opt/a", "DEVICE=ens3.100\nTYPE=Vlan\nBOOTPROTO=none\n"),
      ("opt/b", "DEVICE=v100\nTYPE=Vlan\nPHYSDEV=ens3\nVLAN_ID=100\nBOOTPROTO=none\n")),
     "opt/b", 4, "VLAN_ID", "VLAN ID 100 on ens3 is defined already (opt/a, line 1"),
    # unknown parent, a parent that is a member
    ((("opt/a", "DEVICE=v1\nTYPE=Vlan\nPHYSDEV=nope0\nVLAN_ID=1\nBOOTPROTO=none\n"),), "opt/a",
     3, "PHYSDEV", "neither a NIC of this guest nor an interface an entry defines"),
    ((BOND, PORT_A, ("opt/v", "DEVICE=ens3.5\nVLAN=yes\nBOOTPROTO=none\n")), "opt/v", 1,
     "DEVICE", "put the VLAN on bond0"),
    # VLAN IDs
    ((("opt/a", "DEVICE=v1\nTYPE=Vlan\nPHYSDEV=ens3\nVLAN_ID=4095\nBOOTPROTO=none\n"),),
     "opt/a", 4, "VLAN_ID", "1 to 4094"),
    ((("opt/a", "DEVICE=v1\nTYPE=Vlan\nPHYSDEV=ens3\nVLAN_ID=0\nBOOTPROTO=none\n"),),
     "opt/a", 4, "VLAN_ID", "1 to 4094"),
    ((("opt/a", "DEVICE=v1\nTYPE=Vlan\nBOOTPROTO=none\n"),), "opt/a", 1, "DEVICE",
     "needs PHYSDEV and VLAN_ID"),
    # bonding modes and options
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='mode=fastest'\nBOOTPROTO=none\n"),),
     "opt/a", 3, "BONDING_OPTS", "is not a bonding mode"),
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='mode=7'\nBOOTPROTO=none\n"),),
     "opt/a", 3, "BONDING_OPTS", "is not a bonding mode"),
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='speed=10'\nBOOTPROTO=none\n"),),
     "opt/a", 3, "BONDING_OPTS", "not a bonding option the kernel knows"),
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='arp_validate=all'\nBOOTPROTO=none\n"),),
     "opt/a", 3, "BONDING_OPTS", "fwcfg-agent does not support"),
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='mode=1 lacp_rate=fast'\n"
                "BOOTPROTO=none\n"),), "opt/a", 3, "BONDING_OPTS", "does not apply to mode"),
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='miimon=-5'\nBOOTPROTO=none\n"),),
     "opt/a", 3, "BONDING_OPTS", "is not a time in milliseconds"),
    ((("opt/a", "DEVICE=bond0\nTYPE=Bond\nBONDING_OPTS='miimon=1 miimon=2'\n"
                "BOOTPROTO=none\n"),), "opt/a", 3, "BONDING_OPTS", "given twice"),
    (((BOND[0], BOND[1].replace("miimon=100", "primary=ens9")), PORT_A), "opt/10-bond", 4,
     "BONDING_OPTS", "primary=ens9 is not a member of bond0 (ens3)"),
    # what belongs to other shapes, names and types
    ((("opt/a", "DEVICE=br0\nTYPE=Bridge\nBONDING_OPTS='mode=1'\nBOOTPROTO=none\n"),), "opt/a",
     3, "BONDING_OPTS", "is for a bond, and br0 is a bridge"),
    ((("opt/a", "DEVICE=br0\nTYPE=Bridge\nSTP=on\nDELAY=0\nBOOTPROTO=none\n"),), "opt/a", 4,
     "DELAY", "2 to 30"),
    ((("opt/a", "DEVICE=br0\nTYPE=Bridge\nDELAY=31\nBOOTPROTO=none\n"),), "opt/a", 3, "DELAY",
     "0 to 30"),
    ((("opt/a", "HWADDR=52:54:00:00:00:09\nTYPE=Bond\nBOOTPROTO=none\n"),), "opt/a", 1,
     "HWADDR", "is named by DEVICE"),
    ((("opt/a", "DEVICE=ens4\nTYPE=Bridge\nBOOTPROTO=none\n"),), "opt/a", 1, "DEVICE",
     "is a NIC of this guest"),
    ((("opt/a", "DEVICE=wl0\nTYPE=Wireless\n"),), "opt/a", 2, "TYPE", "one of Ethernet"),
    ((("opt/a", "DEVICE=x0\nTYPE=Bond\nVLAN=yes\nBOOTPROTO=none\n"),), "opt/a", 3, "VLAN",
     "says vlan"),
]


@pytest.mark.parametrize(("entries", "entry", "line", "key", "says"), ERRORS)
def test_shape_errors_name_entry_line_key(entries: tuple[tuple[str, str], ...], entry: str,
                                          line: int, key: str, says: str) -> None:
    e = error(*entries)
    assert (e.entry, e.line, e.key) == (entry, line, key), str(e)
    assert says in str(e), str(e)


def test_the_kernels_options_table_holds_what_the_agent_supports() -> None:
    assert set(BOND_OPTIONS) <= KERNEL_BOND_OPTIONS
    assert BOND_MODES[4] == "802.3ad" and len(BOND_MODES) == 7


OPTION_WORDS = st.one_of(
    st.sampled_from(["mode=1", "mode=active-backup", "mode=802.3ad", "miimon=100", "lacp_rate=1",
                     "primary=ens3", "xmit_hash_policy=layer2", "min_links=2", "mode=9",
                     "arp_interval=100", "updelay=", "=1", "mode", "x=y", "miimon=1e3"]),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz_=0123456789.+-", max_size=14))
SHAPE_VALUES = st.fixed_dictionaries({}, optional={
    "TYPE": st.sampled_from(["Vlan", "Bond", "Bridge", "Ethernet", "vlan", "Team", ""]),
    "VLAN_ID": st.one_of(st.integers(-2, 5000).map(str), st.sampled_from(["0x10", "07", ""])),
    "PHYSDEV": st.sampled_from(["ens3", "ens4", "bond0", "br0", "nope", "a/b", ""]),
    "BONDING_OPTS": st.lists(OPTION_WORDS, max_size=4).map(" ".join),
    "STP": st.sampled_from(["on", "off", "yes", "no", "maybe"]),
    "DELAY": st.one_of(st.integers(-1, 40).map(str), st.just("1.5")),
    "MASTER": st.sampled_from(["bond0", "br0", "ens3", "x" * 16]),
    "SLAVE": st.sampled_from(["yes", "no", "1"]),
    "BRIDGE": st.sampled_from(["br0", "bond0", "ens3"]),
})
TEMPLATES = Templates()


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["bond0", "br0", "ens3.10", "v10", "ens3"]), SHAPE_VALUES,
       st.sampled_from(["IPADDR=10.0.0.5/24", "BOOTPROTO=none", "BOOTPROTO=dhcp"]))
@example("bond0", {"BONDING_OPTS": " miimon=100"}, "IPADDR=10.0.0.5/24")  # found by CI
def test_untrusted_shape_keys_are_modelled_or_rejected_by_key(
        device: str, keys: dict[str, str], base: str) -> None:
    """Any mix of the shape keys, beside a bond and a bridge that exist: a model every format
    renders (or refuses by entry, line and key), or an error naming entry, line and key."""
    lines = [f"DEVICE={device}", base] + [f"{k}='{v}'" for k, v in keys.items()]
    entries = [("opt/b", "DEVICE=bond0\nTYPE=Bond\nBOOTPROTO=none\n"),
               ("opt/r", "DEVICE=br0\nTYPE=Bridge\nBOOTPROTO=none\n")]
    if device in ("bond0", "br0"):
        entries = []
    text = "\n".join(lines) + "\n"
    try:
        config = model(*entries, ("opt/x", text))
    except PayloadError as e:
        assert e.key is not None and e.line is not None, str(e)
        if e.entry == "opt/x":
            assert lines[e.line - 1].startswith(e.key + "="), (str(e), text)
        return
    case = CASE_BY_NAME["somlo"]
    for fmt in NETWORK_FORMATS:
        try:
            plan = render(config, [fmt], case.facts, TEMPLATES)
        except PayloadError as e:
            assert "cannot express" in e.reason, str(e)
            continue
        # what the validators made of the bond options (a raw value may happen to be a part of
        # it: ' miimon=100' of 'mode=balance-rr miimon=100')
        canonical = [" ".join(f"{k}={v}" for k, v in i.bond_options) for i in config.interfaces]
        for f in plan.files:
            body = f.content.decode()
            for value in keys.values():
                if (any(c in value for c in "/ ") and len(value) > 3
                        and not any(value in c for c in canonical)):
                    assert value not in body.replace("# ", ""), (fmt, value)


# --- through the CLI --------------------------------------------------------------------------

SHAPES_ENTRIES = {name: data for name, data in CASE_BY_NAME["bond-vlan-bridge"].entries}
SHAPES_NICS = CASE_BY_NAME["bond-vlan-bridge"].nics


def test_a_shape_error_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    entries = {**SHAPES_ENTRIES,
               "opt/31-port": b"DEVICE=ens5\nBRIDGE=br0\nIPADDR=203.0.113.9/24\n"}
    root = make_guest_root(tmp_path / "root", entries, nics=SHAPES_NICS)
    before = snapshot(root, "etc")
    r = agent(root, "apply")
    assert r.code == 3, r.err
    (err,) = [x for x in r.err.splitlines() if x.startswith("fwcfg-agent: error: ")]
    assert "opt/31-port, line 3, key IPADDR: ens5 is a member of br0" in err, err
    assert snapshot(root, "etc") == before


def test_ifupdown_bridge_port_by_mac_exits_3(tmp_path: Path) -> None:
    entries = {**SHAPES_ENTRIES, "opt/31-port": b"HWADDR=52:54:00:00:00:82\nBRIDGE=br0\n"}
    root = make_guest_root(tmp_path / "root", entries, nics=SHAPES_NICS)
    before = snapshot(root, "etc")
    r = agent(root, "apply", "--format", "ifupdown")
    assert r.code == 3, r.err
    assert "opt/31-port, line 1, key HWADDR: " in r.err and "pick it by DEVICE" in r.err
    assert snapshot(root, "etc") == before
    assert agent(root, "apply", "--format", "networkd").code == 0  # networkd matches by MAC


IFUPDOWN = ("usr/sbin/ifup",)


def test_ifupdown_warns_for_each_missing_package_and_the_fast_path_sees_it_installed(
        tmp_path: Path) -> None:
    root = make_guest_root(tmp_path / "root", SHAPES_ENTRIES, nics=SHAPES_NICS,
                           installed=(*IFUPDOWN, "etc/network/if-pre-up.d/vlan"))
    r = agent(root, "apply")
    assert r.code == 0, r.err
    assert (root / "etc/network/interfaces.d/fwcfg-bond0").is_file()  # written all the same
    warnings = [x for x in r.err.splitlines() if "ifupdown: " in x]
    assert len(warnings) == 2, r.err
    assert any("bond0 is a bond, but the root has no ifenslave" in w for w in warnings)
    assert any("br0 is a bridge, but the root has no bridge-utils" in w for w in warnings)
    # a later boot with nothing changed is the fast path
    code, err, loaded = run_agent("apply", "--root", str(root))
    assert code == 0 and loaded == [] and "nothing changed" in err, err
    # the package installed in the image: the replay sees it (an input of the full run)
    brctl = root / "usr/sbin/brctl"
    brctl.parent.mkdir(parents=True, exist_ok=True)
    brctl.write_text("")
    code, err, loaded = run_agent("apply", "--root", str(root))
    assert code == 0 and "fwcfg_agent.model" in loaded, err
    assert "bridge-utils" not in err and "no ifenslave" in err


def test_no_warning_without_shapes_or_with_the_packages(tmp_path: Path) -> None:
    root = make_guest_root(tmp_path / "a", {"opt/GuestInfo": (REPO / "examples/GuestInfo.env")
                                            .read_bytes()}, installed=IFUPDOWN)
    r = agent(root, "apply")
    assert r.code == 0 and "ifupdown: " not in r.err, r.err
    root = make_guest_root(tmp_path / "b", SHAPES_ENTRIES, nics=SHAPES_NICS,
                           installed=(*IFUPDOWN, "sbin/ifenslave", "sbin/brctl",
                                      "etc/network/if-pre-up.d/vlan"))
    r = agent(root, "apply")
    assert r.code == 0 and "ifupdown: " not in r.err, r.err


@pytest.mark.parametrize("installed", [(), ("usr/sbin/NetworkManager",), IFUPDOWN])
def test_shapes_apply_then_the_fast_path(tmp_path: Path, installed: tuple[str, ...]) -> None:
    root = make_guest_root(tmp_path / "root", SHAPES_ENTRIES, nics=SHAPES_NICS,
                           installed=installed)
    assert agent(root, "apply").code == 0
    assert agent(root, "diff").code == 0
    code, err, loaded = run_agent("apply", "--root", str(root))
    assert code == 0 and loaded == [], err


def test_show_json_says_the_shapes(tmp_path: Path) -> None:
    import json

    root = make_guest_root(tmp_path / "root", SHAPES_ENTRIES, nics=SHAPES_NICS)
    r = agent(root, "show", "--json")
    assert r.code == 0, r.err
    by = {i["name"]: i for i in json.loads(r.out)["settings"]["interfaces"]}
    assert by["bond0"]["kind"] == "bond"
    assert by["bond0"]["bond_options"] == {"mode": "active-backup", "miimon": "100",
                                           "primary": "ens3"}
    assert (by["bond0.100"]["parent"], by["bond0.100"]["vlan_id"]) == ("bond0", 100)
    assert by["ens5"]["master"] == "br0" and by["br0"]["ipv6"]["autoconf"] is False
