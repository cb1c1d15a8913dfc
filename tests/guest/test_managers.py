"""The same payload rendered for netplan and for ifupdown (and NetworkManager keyfiles) comes up
with the address under that manager, and the agent ran before the manager started."""

from __future__ import annotations

import pytest

from . import checks
from .lab import MAC0, Lab
from .vm import FwCfg

pytestmark = pytest.mark.guest

PAYLOAD = "HOSTNAME=managed-guest\nIPADDR=172.20.5.9\nPREFIX=24\nGATEWAY=172.20.5.1\n"

CASES = {
    # variant: (the manager's unit, a file the agent must have written)
    "netplan": ("systemd-networkd.service", "/etc/netplan/"),
    "ifupdown": ("networking.service", "/etc/network/interfaces.d/"),
    "networkmanager": ("NetworkManager.service", "/etc/NetworkManager/system-connections/"),
}


@pytest.mark.parametrize("variant", sorted(CASES))
def test_payload_comes_up_under_manager(agent_lab: Lab, variant: str) -> None:
    manager, prefix = CASES[variant]
    disk = agent_lab.new_disk(variant)
    r = agent_lab.boot(f"{variant}", disk, [FwCfg("opt/GuestInfo", string=PAYLOAD)])
    checks.agent_succeeded(r)
    assert r.hostname == "managed-guest", r.describe()
    written = [p for p in r.etc() if p.startswith(prefix)]
    assert written, f"nothing written under {prefix}\n{r.describe()}"
    assert r.unit(manager).get("ActiveState") == "active", r.unit(manager)
    checks.has_ipv4(r, MAC0, "172.20.5.9/24")
    ifname = r.ifname_of(MAC0)
    assert any(
        x.get("dst") == "default" and x.get("gateway") == "172.20.5.1" and x.get("dev") == ifname
        for x in r.routes()
    ), r.routes()
    checks.ran_before(r, manager)
    checks.no_failed_units(r)
