"""Figures the real-guest suite reports (never asserts): `systemd-analyze blame` spans, ratios,
and the JSON files next to build/guest-report.json that carry them."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .image import REPO
from .results import BootResult

# systemd's time spans as blame prints them: "1min 2.345s", "12.817s", "845ms", "93us"
_UNITS = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_PART = re.compile(r"^(\d+(?:\.\d+)?)(h|min|ms|us|µs|s)$")


def span_seconds(text: str) -> float | None:
    """Seconds of a blame line's span ("1min 2.345s unit" -> 62.345), None if unreadable."""
    total, seen = 0.0, False
    for word in text.split():
        m = _PART.match(word)
        if m is None:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        seen = True
    return total if seen else None


def ratio(slow: float | None, fast: float | None) -> float | None:
    if slow is None or fast is None or fast <= 0:
        return None
    return round(slow / fast, 1)


def report_dir() -> Path:
    default = REPO / "build" / "guest-report.json"
    return Path(os.environ.get("FWCFG_GUEST_REPORT", str(default))).parent


def write_report(name: str, doc: dict[str, Any]) -> Path:
    """Writes `doc` as build/<name> (next to the boot report); returns the path."""
    path = report_dir() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return path


# -- `systemd-analyze critical-chain` ---------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LINK = re.compile(r"^(?P<unit>\S+)(?: @(?P<at>[^+]+?))?(?: \+(?P<took>.+))?$")


@dataclass(frozen=True)
class ChainLink:
    """One line of `systemd-analyze critical-chain`: the unit, when it became active or started
    ("@", seconds after userspace started) and how long it took to start ("+"), if it did."""

    unit: str
    depth: int
    at: float | None
    took: float | None


def parse_chain(text: str) -> list[ChainLink]:
    """The links of a critical chain, from the target down ("network.target @6.419s", then
    "└─systemd-networkd.service @5.757s +642ms", ...); the explanation above them is skipped."""
    links: list[ChainLink] = []
    for raw in text.splitlines():
        line = _ANSI.sub("", raw).rstrip()
        body = line.lstrip(" │├└─")
        m = _LINK.match(body)
        if not body or body.startswith("The time ") or m is None:
            continue
        at, took = m.group("at"), m.group("took")
        links.append(
            ChainLink(
                unit=m.group("unit"),
                depth=(len(line) - len(body)) // 2,
                at=span_seconds(at) if at else None,
                took=span_seconds(took) if took else None,
            )
        )
    return links


def chain_share(
    links: list[ChainLink], unit: str = "fwcfg-agent.service"
) -> dict[str, Any]:
    """Time to the chain's target (the first link's "@") and `unit`'s share of it: its "+" on
    the chain over that time, 0 when `unit` is not on the chain."""
    target = links[0] if links else None
    on = next((link for link in links[1:] if link.unit == unit), None)
    total = target.at if target is not None else None
    took = on.took if on is not None and on.took is not None else 0.0
    return {
        "target": target.unit if target is not None else None,
        "target_seconds": total,
        "on_chain": on is not None,
        "unit_took_seconds": took if on is not None else None,
        "share": round(took / total, 3) if total else None,
    }


def median(values: list[float]) -> float | None:
    """The median (the mean of the middle two for an even count); None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


# Units whose timestamps say where the agent ran against what network.target waited for, that
# the collector does not record itself (it does the agent, network-pre, networkd, udev-trigger).
CHAIN_UNITS = (
    "local-fs.target",
    "systemd-remount-fs.service",
    "systemd-journald.service",
    "systemd-udevd.service",
)


def chain_pre(target: str = "network.target", units: tuple[str, ...] = CHAIN_UNITS) -> str:
    """A collector pre snippet (Lab.boot's `pre`, which goes on the kernel command line: keep it
    short): the critical chain of `target`, timestamps of `units` (show-UNIT.txt, as the
    collector writes its own) and the manager's start; read by BootResult.critical_chain, .unit
    and .userspace_start."""
    props = "Id,InactiveExitTimestampMonotonic,ActiveEnterTimestampMonotonic"
    return (
        f"systemd-analyze critical-chain --no-pager {target} > critical-chain-{target}.txt\n"
        f"for u in {' '.join(units)}; do systemctl show -p {props} $u > show-$u.txt; done\n"
        "systemctl show -p UserspaceTimestampMonotonic > show-manager.txt\n"
        "systemctl show -p CPUUsageNSec fwcfg-agent.service > agent-cpu.txt\n"
        "true\n"
    )


def chain_figures(r: BootResult, target: str = "network.target") -> dict[str, Any]:
    """One boot's figures: time to `target` and the agent's share of it (chain_share), when
    the agent ran (and its CPU time: on one vCPU, what it takes from everything else) and when
    what networkd waited for was there, seconds after userspace started (the zero of the
    chain's "@" times), and the chain itself."""
    links = parse_chain(r.critical_chain(target))
    zero = r.userspace_start()

    def at(unit: str, prop: str) -> float | None:
        t = r.monotonic(unit, prop)
        return round((t - zero) / 1e6, 3) if t and zero else None

    pre, networkd = (at("network-pre.target", "ActiveEnterTimestampMonotonic"),
                     at("systemd-networkd.service", "InactiveExitTimestampMonotonic"))
    cpu = r.text("agent-cpu.txt").strip().partition("=")[2]
    start = r.monotonic("fwcfg-agent.service", "ExecMainStartTimestampMonotonic")
    end = r.monotonic("fwcfg-agent.service", "ExecMainExitTimestampMonotonic")
    return {
        **chain_share(links),
        "agent_run_seconds": round((end - start) / 1e6, 3) if start and end >= start else None,
        "agent_cpu_seconds": round(int(cpu) / 1e9, 3) if cpu.isdigit() else None,
        "agent_started": at("fwcfg-agent.service", "InactiveExitTimestampMonotonic"),
        "agent_done": at("fwcfg-agent.service", "ActiveEnterTimestampMonotonic"),
        "udev_trigger_done": at("systemd-udev-trigger.service", "ActiveEnterTimestampMonotonic"),
        "udevd_ready": at("systemd-udevd.service", "ActiveEnterTimestampMonotonic"),
        "network_pre": pre,
        "networkd_started": networkd,
        # how long networkd still waited for something else once the agent was done
        # (network-pre.target reached): the margin by which the agent is off the chain
        "margin": round(networkd - pre, 3) if pre is not None and networkd is not None else None,
        "chain": [
            link.unit
            + (f" @{link.at:.3f}s" if link.at is not None else "")
            + (f" +{link.took:.3f}s" if link.took is not None else "")
            for link in links
        ],
    }
