"""Issue 14 in real guests: a bond, a VLAN and a bridge over three NICs, and IPv6 as the payload
says, under ifupdown and netplan (see shapes.py; the other managers are in the other
test_shapes_ module, so that the suite's two workers share the boots)."""

from __future__ import annotations

import pytest

from . import shapes
from .lab import Lab

pytestmark = pytest.mark.guest


@pytest.mark.parametrize("variant", ["ifupdown", "netplan"])
def test_bond_vlan_bridge_first_and_later_boot(agent_lab: Lab, variant: str) -> None:
    shapes.boot_twice(agent_lab, variant)
