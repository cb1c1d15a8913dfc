"""Two NICs configured by MAC: each gets its own address, whatever the kernel named them. The
NICs sit in PCI slots in the opposite order of their entries, so matching by position or by name
would give each the other's address."""

from __future__ import annotations

import pytest

from . import checks
from .lab import Lab
from .vm import FwCfg, Nic

pytestmark = pytest.mark.guest

MAC_A = "52:54:00:fc:0a:0a"  # entry net0, in the higher PCI slot
MAC_B = "52:54:00:fc:0b:0b"  # entry net1, in the lower PCI slot


def test_two_nics_by_mac(agent_lab: Lab) -> None:
    disk = agent_lab.new_disk("networkd")
    entries = [
        FwCfg("opt/org.example/host", string="HOSTNAME=two-nics\n"),
        FwCfg("opt/org.example/net0", string=f"HWADDR={MAC_A}\nIPADDR=10.0.10.2\nPREFIX=24\n"),
        FwCfg(
            "opt/org.example/net1",
            string=f"HWADDR={MAC_B.upper()}\nIPADDR=10.0.20.2\nPREFIX=25\n",
        ),
    ]
    nics = [Nic(MAC_B, 3), Nic(MAC_A, 7)]
    r = agent_lab.boot("two-nics", disk, entries, nics=nics)
    checks.agent_succeeded(r)
    checks.no_failed_units(r)
    assert r.hostname == "two-nics", r.describe()
    name_a, name_b = r.ifname_of(MAC_A), r.ifname_of(MAC_B)
    assert name_a != name_b
    addrs = r.ipv4()
    assert addrs.get(MAC_A) == {"10.0.10.2/24"}, f"{name_a}: {addrs}\n{r.describe()}"
    assert addrs.get(MAC_B) == {"10.0.20.2/25"}, f"{name_b}: {addrs}\n{r.describe()}"
    checks.ran_before(r, "systemd-networkd.service")
