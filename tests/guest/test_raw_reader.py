"""With the kernel driver kept out (module_blacklist=qemu_fw_cfg), the agent reads the device
through its raw reader and still configures the guest."""

from __future__ import annotations

import pytest

from . import checks
from .image import REPO
from .lab import MAC0, Lab
from .vm import FwCfg

pytestmark = pytest.mark.guest

RAW_READER = REPO / "fwcfg_agent" / "sources" / "raw.py"


@pytest.mark.xfail(
    not RAW_READER.exists(),
    reason="the raw fw_cfg reader (fwcfg_agent/sources/raw.py) has not landed on main yet",
    strict=True,
)
def test_raw_reader_without_kernel_driver(agent_lab: Lab) -> None:
    disk = agent_lab.new_disk("networkd")
    payload = "HOSTNAME=raw-guest\nIPADDR=192.168.77.7\nPREFIX=24\n"
    r = agent_lab.boot(
        "raw-reader",
        disk,
        [FwCfg("opt/GuestInfo", string=payload)],
        cmdline=("module_blacklist=qemu_fw_cfg",),
    )
    assert "qemu_fw_cfg" not in r.text("lsmod.txt"), "the driver loaded despite the blacklist"
    checks.agent_succeeded(r)
    assert r.hostname == "raw-guest", r.describe()
    checks.has_ipv4(r, MAC0, "192.168.77.7/24")
    applied = checks.journal_with(r, checks.MSG_APPLIED)
    assert applied and applied[0].get("FWCFG_SOURCE") == "raw", r.text("agent-journal.txt")
    checks.ran_before(r, "systemd-networkd.service")
