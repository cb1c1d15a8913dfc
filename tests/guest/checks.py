"""Assertions shared by the real-guest tests. Each failure message carries the guest's state."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .results import BootResult

# The agent's MESSAGE_IDs (fwcfg_agent/log.py; stable across releases).
MSG_APPLIED = "4daab396a9c74e34b1dcbbe0fe2d4c28"
MSG_FILE = "479d71ec005240d4b512e0b3bacabb48"
MSG_INVALID = "89ef3e72707c421f85a5b595ebfb20f2"
MSG_UNCHANGED = "9aff2b147c144ded8d0b5f889b7eb995"
MSG_NOTHING = "f7a58138bf6a42929ab34b21d02ef6ab"
MSG_WARNING = "9228c1b8157b45a39dae8c6ecf5294e7"

AGENT = "fwcfg-agent.service"

# Files under /etc that change on every boot of a test guest whatever the agent does.
BOOT_NOISE_PREFIXES = ("/etc/ld.so.cache",)


def agent_succeeded(r: BootResult) -> None:
    unit = r.unit(AGENT)
    assert unit.get("LoadState") == "loaded", f"agent unit not installed\n{r.describe()}"
    assert (
        unit.get("Result") == "success" and unit.get("ExecMainStatus") == "0"
    ), f"agent unit: {unit}\n{r.describe()}"


def reached_multi_user(r: BootResult) -> None:
    assert r.monotonic("multi-user.target", "ActiveEnterTimestampMonotonic") > 0, r.describe()


def no_failed_units(r: BootResult, allowed: Iterable[str] = ()) -> None:
    failed = [line.split()[0] for line in r.text("failed.txt").splitlines() if line.strip()]
    unexpected = [u for u in failed if u not in set(allowed)]
    assert not unexpected, f"failed units {unexpected}\n{r.describe()}"


def has_ipv4(r: BootResult, mac: str, cidr: str) -> None:
    addrs = r.ipv4()
    assert cidr in addrs.get(
        mac, set()
    ), f"{cidr} not on the NIC with MAC {mac}; addresses by MAC: {addrs}\n{r.describe()}"


def ran_before(r: BootResult, manager: str) -> None:
    """fwcfg-agent finished before network-pre.target was reached and before `manager` started,
    by the guest's own monotonic timestamps."""
    agent_done = r.monotonic(AGENT, "ExecMainExitTimestampMonotonic")
    agent_active = r.monotonic(AGENT, "ActiveEnterTimestampMonotonic")
    pre = r.monotonic("network-pre.target", "ActiveEnterTimestampMonotonic")
    started = r.monotonic(manager, "InactiveExitTimestampMonotonic")
    times = (
        f"agent exit {agent_done} us, agent active {agent_active} us, network-pre.target "
        f"{pre} us, {manager} start {started} us"
    )
    assert agent_done > 0 and agent_active > 0, f"agent never ran: {times}\n{r.describe()}"
    assert pre > 0 and started > 0, f"network-pre/{manager} never started: {times}"
    assert agent_done <= pre, f"network-pre.target reached before the agent finished: {times}"
    assert agent_active <= started, f"{manager} started before the agent finished: {times}"


def nic_driver_loaded_early(r: BootResult) -> None:
    """The unit's modprobe@virtio_net.service ran, and started before the agent did: the NIC's
    driver loads from the start of boot, not when the agent (or udev's coldplug) gets to it."""
    unit = r.unit("modprobe@virtio_net.service")
    assert unit.get("Result") == "success", f"modprobe@virtio_net: {unit}\n{r.describe()}"
    started = r.monotonic("modprobe@virtio_net.service", "ExecMainStartTimestampMonotonic")
    agent = r.monotonic(AGENT, "ExecMainStartTimestampMonotonic")
    assert 0 < started < agent, f"modprobe@virtio_net started at {started} us, the agent at " \
        f"{agent} us\n{r.describe()}"


def journal_with(r: BootResult, message_id: str) -> list[dict[str, Any]]:
    return [e for e in r.agent_journal() if e.get("MESSAGE_ID") == message_id]


def agent_runs(r: BootResult) -> list[dict[str, Any]]:
    """`fwcfg-agent journal --json` as the guest printed it after this boot."""
    assert r.rc("agent-runs.json") == 0, r.text("agent-runs.json.err")
    runs = r.json("agent-runs.json")
    assert isinstance(runs, list), runs
    return runs


def apply_runs_this_boot(r: BootResult) -> list[dict[str, Any]]:
    boot_id = r.text("boot-id.txt").strip()
    return [
        run
        for run in agent_runs(r)
        if run.get("command") == "apply" and (not boot_id or run.get("boot_id") == boot_id)
    ]


def etc_changes(before: dict[str, str], after: dict[str, str]) -> dict[str, tuple[str, str]]:
    """path -> (before, after) for every file or link that differs (absent: '')."""
    out = {}
    for path in sorted(set(before) | set(after)):
        if path.startswith(BOOT_NOISE_PREFIXES):
            continue
        if before.get(path, "") != after.get(path, ""):
            out[path] = (before.get(path, ""), after.get(path, ""))
    return out


def rolled_back(r: BootResult, original: dict[str, str], applied: Iterable[BootResult]) -> None:
    """After `fwcfg-agent rollback` in the boot `r` (its `pre` snippet, the agent switched off
    by fwcfg-agent=off): every file the apply runs of the boots `applied` touched is as it was
    in `original` (the disk's /etc before its first boot)."""
    assert r.rc("pre") == 0, f"rollback failed: {r.text('pre.out')} {r.text('pre.err')}"
    assert r.unit(AGENT).get("ActiveState") == "inactive", "fwcfg-agent=off ignored"
    after = r.etc()
    touched: set[str] = set()
    for boot in applied:
        for run in apply_runs_this_boot(boot):
            touched |= {f["path"] for f in run["files"]}
    assert "/etc/hostname" in touched, touched
    wrong = {
        p: (original.get(p, "absent"), after.get(p, "absent"))
        for p in sorted(touched)
        if original.get(p, "absent") != after.get(p, "absent")
    }
    assert wrong == {}, f"not restored (original, after rollback): {wrong}\n{r.text('pre.out')}"
