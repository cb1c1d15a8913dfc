"""Issue 14's guest case, shared by the two test modules that boot it (two modules so that the
suite's two workers each take two managers): three virtio NICs, an active-backup bond of the
first two with a VLAN on top carrying a static address, a bridge over the third, and
IPV6_AUTOCONF=no on the bond. QEMU's user network sends router advertisements (prefix fec0::/64)
on every NIC, so the bond must get no SLAAC address, while the bridge, left at the
distribution's default, gets one: the same IPv6 behaviour whatever the manager.

Each manager's disk boots twice: the first boot configures it, the second is the fast path. Both
times `fwcfg-agent diff` in the guest must find nothing to change, the agent ran before the
manager started, and the manager brought up what the agent wrote (the bridge's default route
included)."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from . import checks
from .lab import Lab
from .results import BootResult
from .vm import FwCfg, Nic

MAC_A, MAC_B, MAC_C = "52:54:00:fc:14:0a", "52:54:00:fc:14:0b", "52:54:00:fc:14:0c"
NICS = (Nic(MAC_A, 3), Nic(MAC_B, 4), Nic(MAC_C, 5))  # enp0s3, enp0s4, enp0s5
BRIDGE_PORT = "enp0s5"  # ifupdown names a bridge's ports by their kernel names

ENTRIES = (
    FwCfg("opt/org.example/bond0", string=(
        "HOSTNAME=shapes.example.com\nDEVICE=bond0\nTYPE=Bond\nBONDING_MASTER=yes\n"
        "BONDING_OPTS='mode=active-backup miimon=100'\nBOOTPROTO=none\nIPV6_AUTOCONF=no\n")),
    FwCfg("opt/org.example/port0", string=f"HWADDR={MAC_A}\nMASTER=bond0\nSLAVE=yes\n"),
    FwCfg("opt/org.example/port1", string=f"HWADDR={MAC_B}\nMASTER=bond0\nSLAVE=yes\n"),
    FwCfg("opt/org.example/vlan100", string=(
        "DEVICE=bond0.100\nTYPE=Vlan\nIPADDR=10.14.100.2/24\n")),
    FwCfg("opt/org.example/br0", string=(
        "DEVICE=br0\nTYPE=Bridge\nSTP=off\nDELAY=0\nIPADDR=10.14.200.2/24\n"
        "GATEWAY=10.14.200.1\n")),
    FwCfg("opt/org.example/port2", string=f"DEVICE={BRIDGE_PORT}\nBRIDGE=br0\n"),
)

# Run in the guest before the collector: what the kernel made of it, and the agent's own check.
PRE = """
ip -d -j link > link-details.json
cat /proc/net/bonding/bond0 > bonding.txt
for i in bond0 bond0.100 br0 enp0s3 enp0s4 enp0s5; do
  printf '%s %s %s\\n' "$i" "$(cat /proc/sys/net/ipv6/conf/$i/accept_ra)" \\
    "$(cat /proc/sys/net/ipv6/conf/$i/autoconf)"
done > ipv6-sysctls.txt
# SLAAC takes a router advertisement: wait up to 30 s for the bridge's address
for _ in $(seq 30); do
  ip -6 -j addr show dev br0 scope global | grep -q fec0: && break
  sleep 1
done
ip -j addr > addr-after-wait.json
fwcfg-agent diff > diff.txt 2>&1
echo $? > diff.rc
"""


def _links(r: BootResult) -> dict[str, dict[str, Any]]:
    return {link["ifname"]: link for link in json.loads(r.text("link-details.json") or "[]")}


def _global6(r: BootResult, ifname: str) -> set[str]:
    out = set()
    for link in json.loads(r.text("addr-after-wait.json") or "[]"):
        if link["ifname"] != ifname:
            continue
        for a in link.get("addr_info", []):
            if a["family"] == "inet6" and not ipaddress.ip_address(a["local"]).is_link_local:
                out.add(a["local"])
    return out


# variant: (the manager's unit, where the agent writes for it)
MANAGERS = {
    "networkd": ("systemd-networkd.service", "/etc/systemd/network/"),
    "netplan": ("systemd-networkd.service", "/etc/netplan/"),
    "ifupdown": ("networking.service", "/etc/network/interfaces.d/"),
    "networkmanager": ("NetworkManager.service", "/etc/NetworkManager/system-connections/"),
}


def check_configured(r: BootResult, variant: str) -> None:
    """The manager ran after the agent and brought up what it wrote: the shapes as the kernel
    shows them, the addresses and the default route, IPv6 as the payload says, and nothing for
    `diff` to do."""
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    manager, prefix = MANAGERS[variant]
    assert r.unit(manager).get("ActiveState") == "active", r.unit(manager)
    checks.ran_before(r, manager)
    assert any(p.startswith(prefix) for p in r.etc()), f"nothing under {prefix}\n{r.describe()}"
    assert any(x.get("dst") == "default" and x.get("gateway") == "10.14.200.1"
               and x.get("dev") == "br0" for x in r.routes()), (variant, r.routes())
    assert r.hostname == "shapes.example.com", r.describe()
    assert r.rc("pre") == 0, r.text("pre.err")
    links = _links(r)
    info = {n: link.get("linkinfo", {}) for n, link in links.items()}
    assert info["bond0"].get("info_kind") == "bond", (variant, info.get("bond0"))
    bond = info["bond0"].get("info_data", {})
    assert (bond.get("mode"), bond.get("miimon")) == ("active-backup", 100), (variant, bond)
    for port in ("enp0s3", "enp0s4"):
        assert links[port].get("master") == "bond0", (variant, port, links[port])
    vlan = info["bond0.100"]
    assert vlan.get("info_kind") == "vlan", (variant, vlan)
    assert vlan.get("info_data", {}).get("id") == 100, (variant, vlan)
    assert links["bond0.100"].get("link") == "bond0", (variant, links["bond0.100"])
    assert info["br0"].get("info_kind") == "bridge", (variant, info["br0"])
    bridge = info["br0"].get("info_data", {})
    assert bridge.get("stp_state") == 0, (variant, bridge)
    assert links[BRIDGE_PORT].get("master") == "br0", (variant, links[BRIDGE_PORT])
    # DELAY=0: the port forwards at once. (NetworkManager applies a forward delay only with STP
    # on, which is also the only case where the kernel's bridge uses it.)
    member = info[BRIDGE_PORT]
    assert member.get("info_slave_kind") == "bridge", (variant, member)
    assert member.get("info_slave_data", {}).get("state") == "forwarding", (variant, member)
    if variant != "networkmanager":
        assert bridge.get("forward_delay") == 0, (variant, bridge)
    bonding = r.text("bonding.txt")
    assert "Bonding Mode: fault-tolerance (active-backup)" in bonding, bonding
    assert "MII Polling Interval (ms): 100" in bonding, bonding
    assert bonding.count("Slave Interface: ") == 2, bonding
    by_if: dict[str, set[str]] = {}
    for a in r.addresses():
        if a.family == "inet":
            by_if.setdefault(a.ifname, set()).add(f"{a.local}/{a.prefixlen}")
    assert by_if.get("bond0.100") == {"10.14.100.2/24"}, (variant, by_if)
    assert by_if.get("br0") == {"10.14.200.2/24"}, (variant, by_if)
    assert not by_if.get("bond0") and not by_if.get(BRIDGE_PORT), (variant, by_if)
    # IPv6: IPV6_AUTOCONF=no on the bond, the default on the bridge; the same behaviour under
    # every manager. networkd and NetworkManager handle RAs themselves and keep the kernel's
    # accept_ra at 0 everywhere; ifupdown leaves them to the kernel, so its sysctls say it.
    lines = r.text("ipv6-sysctls.txt").splitlines()
    sysctls = {line.split()[0]: line.split()[1:] for line in lines}
    assert sysctls["bond0"][0] == "0", (variant, sysctls)
    if variant == "ifupdown":
        assert sysctls["bond0"] == ["0", "0"] and sysctls["br0"] == ["1", "1"], sysctls
    assert not _global6(r, "bond0"), (variant, _global6(r, "bond0"))
    assert any(a.startswith("fec0:") for a in _global6(r, "br0")), (variant, _global6(r, "br0"))
    assert r.rc("diff") == 0, f"diff after the unit's apply:\n{r.text('diff.txt')}"


def boot_twice(lab: Lab, variant: str) -> None:
    disk = lab.new_disk(variant)
    first = lab.boot(f"shapes-{variant}-1", disk, ENTRIES, nics=NICS, pre=PRE)
    check_configured(first, variant)
    assert checks.journal_with(first, checks.MSG_APPLIED), first.describe()
    later = lab.boot(f"shapes-{variant}-2", disk, ENTRIES, nics=NICS, pre=PRE)
    check_configured(later, variant)
    assert checks.journal_with(later, checks.MSG_UNCHANGED), later.describe()
    assert not checks.journal_with(later, checks.MSG_APPLIED), later.describe()
