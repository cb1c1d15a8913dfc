"""fwcfg-agent against cloud-init's local stage in the same kind of boot (issue 6).

One image variant with Debian's cloud-init (tools/guest-image --with cloud-init, cached by its own
inputs), booted four times:

1. cloud-init, first boot: a NoCloud seed in /var/lib/cloud/seed/nocloud/ with the settings of
   Somlo's payload (hostname, 192.168.122.50/24 on the first NIC, enp0s3); no fw_cfg entries
   and the agent off (fwcfg-agent=off). Both disks are the ifupdown variant: cloud-init's renderer
   on Debian 12 when ifupdown is installed, and the agent's format there;
2. cloud-init, a later boot of the same disk (same instance id);
3. the agent, first boot: a fresh disk of the same variant, Somlo's payload over fw_cfg,
   cloud-init off (cloud-init=disabled, which Debian's cloud-init generator honours);
4. the agent, a later boot of that disk;
5. and 6. the floor: a fresh disk of the same variant where the agent is off and a unit that is
   the agent's own unit file (same ordering, same priority) with ExecStart replaced by the
   launcher's interpreter and flags running `-c pass` (fwcfg-floor.service), first and later
   boot. Its blame is what any Python agent in the agent's place pays at boot before doing
   anything: cloud-init-local / floor is the best ratio a Python agent could reach here.

7. with FWCFG_COMPARE_LATER=N (default 1), N-1 more later boots of the agent's disk and of the
   floor's, in turn (agent, floor, agent, floor...): one later boot of each kind varies by up
   to a third from run to run on this host, more than the difference being measured. The
   later-boot figure is then the median agent blame over the median floor blame, with each
   pair's ratio beside it. `make compare-measure` runs five pairs, one guest at a time, as the
   README reports it.

The tests check that each configured the guest; the `systemd-analyze blame` spans of
cloud-init-local.service (cloud-init.service for information) and fwcfg-agent.service and their
ratios are reported (build/cloud-init-compare.json, the boot report, the test output), never
asserted. The seed's cloud.cfg.d limits cloud-init to NoCloud, which only makes it faster: the
comparison is conservative.
"""

from __future__ import annotations

import itertools
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import checks, image, measure
from .lab import MAC0, Files, Lab
from .results import BootResult
from .vm import FwCfg

pytestmark = pytest.mark.guest

SOMLO = "HOSTNAME=somlo-guest\nIPADDR=192.168.122.50\n"
SEED = "/var/lib/cloud/seed/nocloud"
SEED_FILES: Files = (
    (f"{SEED}/meta-data", b"instance-id: iid-compare-1\nlocal-hostname: somlo-guest\n", 0o644),
    (f"{SEED}/user-data", b"#cloud-config\n{}\n", 0o644),
    (
        f"{SEED}/network-config",
        (
            "version: 2\n"
            "ethernets:\n"
            "  enp0s3:\n"
            "    match:\n"
            f'      macaddress: "{MAC0}"\n'
            "    set-name: enp0s3\n"
            "    addresses: [192.168.122.50/24]\n"
        ).encode(),
        0o644,
    ),
    ("/etc/cloud/cloud.cfg.d/90-fwcfg-test.cfg", b"datasource_list: [ NoCloud, None ]\n", 0o644),
)
# Debian 12's cloud-init renders ifupdown (eni) when ifupdown is installed, as it is here: both
# tools write ifupdown files and networking.service brings them up.
VARIANT = "ifupdown"
CLOUD_UNITS = ("cloud-init-local.service", "cloud-init.service")
FLOOR_UNIT = "fwcfg-floor.service"  # the bare interpreter in the agent's place (see the top)
PROPS = (
    "Id,ActiveState,Result,ExecMainStartTimestampMonotonic,ExecMainExitTimestampMonotonic,"
    "CPUUsageNSec"
)
PRE = (
    f"systemctl show -p {PROPS} {checks.AGENT} {' '.join(CLOUD_UNITS)} {FLOOR_UNIT}"
    " > cloud-units.txt\n"
    "cloud-init status --long > cloud-status.txt 2>&1\n"
    "cp /var/log/cloud-init.log . 2>/dev/null\n"
    "ls /etc/netplan /etc/systemd/network /run/systemd/network > net-files.txt 2>&1\n"
    # the floor of any Python agent in this guest: the bare interpreter with the agent's flags,
    # after boot (no contention), milliseconds, three runs
    "for i in 1 2 3; do s=$(date +%s%N); python3 -I -c pass; e=$(date +%s%N);"
    " echo $(( (e - s) / 1000000 )); done > python-floor-ms.txt 2>&1\n"
    "true\n"
)


def later_boot(kind: str, pair: int) -> str:
    """The name of the later boot of KIND (agent, floor) in pair PAIR: "agent-later",
    "agent-later-2", ..."""
    return f"{kind}-later" if pair == 1 else f"{kind}-later-{pair}"


def later_pairs(spec: str | None = None) -> int:
    """How many later boots of the agent and of the floor: FWCFG_COMPARE_LATER, default 1."""
    spec = os.environ.get("FWCFG_COMPARE_LATER", "1") if spec is None else spec
    if not spec.isdigit() or int(spec) < 1:
        raise ValueError(f"FWCFG_COMPARE_LATER={spec!r}: a number of boots, 1 or more")
    return int(spec)


def floor_files() -> Files:
    """fwcfg-floor.service: the agent's unit running the launcher's interpreter, with the
    launcher's flags, on `-c pass`; pulled in by sysinit.target as the agent is."""
    shebang = (image.REPO / "bin/fwcfg-agent").read_text().splitlines()[0]
    interpreter = shebang.removeprefix("#!").strip()
    lines = []
    for line in (image.REPO / "units/fwcfg-agent.service").read_text().splitlines():
        if line.startswith("ConditionKernelCommandLine="):
            continue  # fwcfg-agent=off turns the agent off, not this
        if line.startswith("ExecStart="):
            line = f"ExecStart={interpreter} -c pass"
        elif line.startswith("Description="):
            line = "Description=The bare interpreter in fwcfg-agent's place (a measurement)"
        lines.append(line)
    unit = "\n".join(lines).encode() + b"\n"
    return (
        (f"/etc/systemd/system/{FLOOR_UNIT}", unit, 0o644),
        ("/etc/systemd/system/sysinit.target.d/fwcfg-floor.conf",
         f"[Unit]\nWants={FLOOR_UNIT}\n".encode(), 0o644),
    )


@dataclass
class Boots:
    lab: Lab
    ci_disk: Path
    agent_disk: Path
    floor_disk: Path
    boots: dict[str, BootResult] = field(default_factory=dict)

    def _boot(self, name: str, disk: Path, fw_cfg: list[FwCfg], cmdline: str) -> BootResult:
        if name not in self.boots:
            self.boots[name] = self.lab.boot(
                f"compare-{name}", disk, fw_cfg, cmdline=(cmdline,), pre=PRE
            )
        return self.boots[name]

    def cloud_init(self, later: bool = False) -> BootResult:
        first = self._boot("cloud-init-first", self.ci_disk, [], "fwcfg-agent=off")
        if not later:
            return first
        return self._boot("cloud-init-later", self.ci_disk, [], "fwcfg-agent=off")

    def agent(self, later: bool = False, pair: int = 1) -> BootResult:
        """The agent's first boot, or (later) the later boot of pair PAIR."""
        entries = [FwCfg("opt/GuestInfo", string=SOMLO)]
        first = self._boot("agent-first", self.agent_disk, entries, "cloud-init=disabled")
        if not later:
            return first
        return self._boot(later_boot("agent", pair), self.agent_disk, entries,
                          "cloud-init=disabled")

    def floor(self, later: bool = False, pair: int = 1) -> BootResult:
        """The floor's first boot, or (later) the later boot of pair PAIR."""
        entries = [FwCfg("opt/GuestInfo", string=SOMLO)]
        off = "cloud-init=disabled fwcfg-agent=off"
        first = self._boot("floor-first", self.floor_disk, entries, off)
        if not later:
            return first
        return self._boot(later_boot("floor", pair), self.floor_disk, entries, off)

    def more_later_pairs(self, pairs: int) -> list[BootResult]:
        """Later boots 2..PAIRS of the agent's disk and the floor's, in turn (after the first
        pair)."""
        self.agent(later=True)
        self.floor(later=True)
        out = []
        for i in range(2, pairs + 1):
            out.append(self.agent(later=True, pair=i))
            out.append(self.floor(later=True, pair=i))
        return out


@pytest.fixture(scope="module")
def boots(agent_lab: Lab) -> Boots:
    try:
        base = image.build_base_image(("cloud-init",))
    except RuntimeError as e:
        pytest.fail(f"the cloud-init image variant did not build: {e}")
    workdir = agent_lab.workdir / "cloud-init"
    workdir.mkdir(exist_ok=True)
    ci_lab = Lab(base=base, workdir=workdir, with_agent=True)
    ci_disk = ci_lab.new_disk(VARIANT, files=SEED_FILES)
    agent_disk = ci_lab.new_disk(VARIANT, files=SEED_FILES)
    floor_disk = ci_lab.new_disk(VARIANT, files=SEED_FILES + floor_files())
    return Boots(ci_lab, ci_disk, agent_disk, floor_disk)


def _unit_props(r: BootResult) -> dict[str, dict[str, str]]:
    """Unit -> properties, from the pre snippet's `systemctl show` of the agent and cloud-init."""
    props: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in [*r.text("cloud-units.txt").splitlines(), ""]:
        if not line.strip():
            if "Id" in current:
                props[current["Id"]] = current
            current = {}
            continue
        key, _, value = line.partition("=")
        current[key] = value
    return props


def _exec_and_cpu(r: BootResult, unit: str) -> dict[str, float | None]:
    """ExecMainExit - ExecMainStart and the CPU time (cgroup accounting) of `unit`, seconds."""
    p = _unit_props(r).get(unit, {})
    start = int(p.get("ExecMainStartTimestampMonotonic", "0") or 0)
    end = int(p.get("ExecMainExitTimestampMonotonic", "0") or 0)
    cpu = p.get("CPUUsageNSec", "")
    return {
        "exec_seconds": round((end - start) / 1e6, 3) if start and end >= start else None,
        "cpu_seconds": round(int(cpu) / 1e9, 3) if cpu.isdigit() else None,
    }


def _figures(b: Boots) -> dict[str, Any]:
    """blame spans of every boot so far, the ratios, into the reports and stdout."""
    doc: dict[str, Any] = {"image": str(b.lab.base.path), "boots": {}}
    for name, r in b.boots.items():
        row: dict[str, Any] = {"wall_seconds": round(r.wall_seconds, 1)}
        for unit in (checks.AGENT, *CLOUD_UNITS, FLOOR_UNIT):
            line = r.blame(unit)
            if line:
                row[unit] = {
                    "blame": line,
                    "seconds": measure.span_seconds(line),
                    **_exec_and_cpu(r, unit),
                }
        row["userspace"] = (r.text("analyze-time.txt").splitlines() or [""])[0]
        floor = [int(x) for x in r.text("python-floor-ms.txt").split() if x.isdigit()]
        row["python_floor_ms"] = sorted(floor)[len(floor) // 2] if floor else None
        doc["boots"][name] = row

    def span(boot: str, unit: str) -> float | None:
        value = doc["boots"].get(boot, {}).get(unit, {}).get("seconds")
        return float(value) if value is not None else None

    local = CLOUD_UNITS[0]
    doc["ratio_first"] = measure.ratio(
        span("cloud-init-first", local), span("agent-first", checks.AGENT)
    )
    doc["ratio_later"] = measure.ratio(
        span("cloud-init-later", local), span("agent-later", checks.AGENT)
    )
    # the best any Python agent could do here, and how far above that floor the agent is
    floor_s = span("floor-first", FLOOR_UNIT)
    doc["ceiling_first"] = measure.ratio(span("cloud-init-first", local), floor_s)
    doc["agent_over_floor_first"] = measure.ratio(span("agent-first", checks.AGENT), floor_s)
    # later boots: every pair so far (FWCFG_COMPARE_LATER), medians
    agents, floors = [], []
    for pair in itertools.count(1):
        a = span(later_boot("agent", pair), checks.AGENT)
        f = span(later_boot("floor", pair), FLOOR_UNIT)
        if a is None or f is None:
            break
        agents.append(a)
        floors.append(f)
    floor_later = statistics.median(floors) if floors else None
    doc["ceiling_later"] = measure.ratio(span("cloud-init-later", local), floor_later)
    doc["agent_over_floor_later"] = measure.ratio(
        statistics.median(agents) if agents else None, floor_later)
    doc["later_pairs"] = len(agents)
    doc["agent_over_floor_later_each"] = [measure.ratio(a, f) for a, f in zip(agents, floors)]
    doc["note"] = (
        "ratio = cloud-init-local.service blame / fwcfg-agent.service blame, same image, "
        "same kind of boot (TCG, one vCPU shared with udev coldplug); ceiling = cloud-init-local "
        "blame / fwcfg-floor.service blame (the bare interpreter in the agent's place, the best "
        "ratio any Python agent could reach); agent_over_floor = fwcfg-agent / fwcfg-floor (later "
        "boots: median over median of later_pairs pairs, each pair's ratio in "
        "agent_over_floor_later_each); "
        "cpu_seconds: the unit's "
        "cgroup CPU time; python_floor_ms: `python3 -I -c pass` in the guest after boot (median "
        "of 3), the start-up any Python agent pays; reported, not asserted"
    )
    path = measure.write_report("cloud-init-compare.json", doc)
    # this lab's boots (the cloud-init image) are not in the session lab's boot report
    b.lab.write_report(measure.report_dir() / "guest-report-cloud-init.json")
    print(f"cloud-init vs fwcfg-agent ({path}): {doc}")
    return doc


def _configured_like_somlo(r: BootResult) -> None:
    assert r.hostname == "somlo-guest", r.describe()
    checks.has_ipv4(r, MAC0, "192.168.122.50/24")


def test_cloud_init_configures_from_nocloud_seed(boots: Boots, agent_lab: Lab) -> None:
    first, later = boots.cloud_init(), boots.cloud_init(later=True)
    agent_lab.measurements["cloud_init_vs_agent"] = _figures(boots)
    for r in (first, later):
        assert r.unit(checks.AGENT).get("ActiveState") == "inactive", "fwcfg-agent=off ignored"
        assert r.blame("cloud-init-local.service"), f"cloud-init-local did not run\n{r.describe()}"
        _configured_like_somlo(r)
    print(f"cloud-init-local first: {first.blame('cloud-init-local.service')}")
    print(f"cloud-init-local later: {later.blame('cloud-init-local.service')}")


def test_agent_configures_with_cloud_init_disabled(boots: Boots, agent_lab: Lab) -> None:
    first, later = boots.agent(), boots.agent(later=True)
    agent_lab.measurements["cloud_init_vs_agent"] = _figures(boots)
    for r in (first, later):
        assert not r.blame("cloud-init-local.service"), "cloud-init=disabled ignored"
        checks.agent_succeeded(r)
        _configured_like_somlo(r)
    assert [x["outcome"] for x in checks.apply_runs_this_boot(later)] == ["unchanged"]
    print(f"fwcfg-agent first: {first.blame()}")
    print(f"fwcfg-agent later: {later.blame()}")


def test_python_floor_in_the_agents_place(boots: Boots, agent_lab: Lab) -> None:
    """The bare interpreter, started as the agent is at the same point of the same kind of boot:
    the baseline of the guest figures (reported, not asserted)."""
    first, later = boots.floor(), boots.floor(later=True)
    doc = _figures(boots)
    agent_lab.measurements["cloud_init_vs_agent"] = doc
    for r in (first, later):
        assert r.unit(checks.AGENT).get("ActiveState") == "inactive", "fwcfg-agent=off ignored"
        assert r.blame(FLOOR_UNIT), f"{FLOOR_UNIT} did not run\n{r.describe()}"
    print(f"python floor first: {first.blame(FLOOR_UNIT)}; later: {later.blame(FLOOR_UNIT)}")


def test_more_later_boots_of_the_agent_and_the_floor(boots: Boots, agent_lab: Lab) -> None:
    """FWCFG_COMPARE_LATER pairs of later boots (the first pair is the tests' above): each
    agent boot is an unchanged one, each floor boot ran the bare interpreter."""
    pairs = later_pairs()
    if pairs == 1:
        pytest.skip("one later boot of each (FWCFG_COMPARE_LATER=N for more)")
    more = boots.more_later_pairs(pairs)
    doc = _figures(boots)
    agent_lab.measurements["cloud_init_vs_agent"] = doc
    for r in more[0::2]:
        checks.agent_succeeded(r)
        assert [x["outcome"] for x in checks.apply_runs_this_boot(r)] == ["unchanged"]
    for r in more[1::2]:
        assert r.blame(FLOOR_UNIT), f"{FLOOR_UNIT} did not run\n{r.describe()}"
    print(f"later boots, agent over floor: {doc['agent_over_floor_later_each']}; medians: "
          f"{doc['agent_over_floor_later']}")
