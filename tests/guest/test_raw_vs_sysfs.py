"""The raw reader against the kernel's sysfs tree in real guests (issue 4), two boots of one disk:

1. driver loaded: `fwcfg-agent show --json` (sysfs) of every entry, and bench/raw_vs_sysfs.py on
   the 1 MiB entry (sysfs and raw in the same guest: times, ratio, sha256);
2. `module_blacklist=qemu_fw_cfg`: `fwcfg-agent show --json --source raw` gives the same names,
   sizes and sha256 as the first boot, the 1 MiB entry included.

The 1 MiB entry is a valid payload (comment lines only), but the agent's own boot-time run
excludes it (agent.conf EXCLUDE): a sysfs read of 1 MiB takes ~12 s under TCG (quadratic in the
kernel), which would dominate the boot's figures and come close to the unit's TimeoutStartSec.
The guest reads it with `show --config show-all.conf` (no EXCLUDE) and the benchmark instead.
Times are reported (build/raw-vs-sysfs.json, the boot report, the test output), never asserted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from . import checks, measure
from .image import REPO
from .lab import Files, Lab
from .results import BootResult
from .vm import FwCfg

pytestmark = pytest.mark.guest

BIG = "opt/org.example/big"
BIG_SIZE = 1 << 20  # MAX_ENTRY_SIZE's default: the largest entry the agent reads
SMALL = {
    "opt/GuestInfo": b"HOSTNAME=raw-vs-sysfs\nIPADDR=192.168.122.60\n",
    "opt/org.example/note": b"# a small entry with nothing but a comment\n",
}
DEFAULT_EXCLUDE = (
    "opt/io.systemd.credentials/* opt/com.coreos/* opt/org.flatcar-linux/* "
    "opt/io.cloud-init/* opt/ovmf/* opt/org.qemu/*"
)
FORMATS = 'FORMATS="hostname hosts networkd"\n'
AGENT_CONF = f'{FORMATS}EXCLUDE="{DEFAULT_EXCLUDE} {BIG}"\n'
SHOW_CONF_PATH = "/etc/fwcfg-agent/show-all.conf"
BENCH_PATH = "/usr/local/libexec/raw_vs_sysfs.py"


def big_payload() -> bytes:
    """Exactly 1 MiB of `# ...` lines: valid for the payload parser, no settings."""
    line = b"# " + b"x" * 61 + b"\n"
    data = line * (BIG_SIZE // len(line))
    rest = BIG_SIZE - len(data)
    if rest:
        data += b"#" * (rest - 1) + b"\n"
    assert len(data) == BIG_SIZE
    return data


def _timed(name: str, command: str) -> str:
    """Shell for the guest: run `command` into NAME, its status into NAME.rc, its wall time in
    milliseconds into NAME.ms."""
    return (
        f"t0=$(date +%s%N)\n{command} > {name} 2> {name}.err\necho $? > {name}.rc\n"
        f"echo $(( ($(date +%s%N) - t0) / 1000000 )) > {name}.ms\n"
    )


SYSFS_PRE = _timed(
    "show.json", f"fwcfg-agent show --json --source sysfs --config {SHOW_CONF_PATH}"
) + _timed("bench.json", f"python3 {BENCH_PATH} {BIG} --json")
RAW_PRE = _timed("show.json", f"fwcfg-agent show --json --source raw --config {SHOW_CONF_PATH}")


@dataclass
class Boots:
    lab: Lab
    disk: Path
    entries: list[FwCfg]
    expected: dict[str, bytes]
    boots: dict[str, BootResult] = field(default_factory=dict)

    def sysfs(self) -> BootResult:
        if "sysfs" not in self.boots:
            self.boots["sysfs"] = self.lab.boot(
                "raw-vs-sysfs-sysfs", self.disk, self.entries, pre=SYSFS_PRE
            )
        return self.boots["sysfs"]

    def raw(self) -> BootResult:
        self.sysfs()
        if "raw" not in self.boots:
            self.boots["raw"] = self.lab.boot(
                "raw-vs-sysfs-raw",
                self.disk,
                self.entries,
                cmdline=("module_blacklist=qemu_fw_cfg",),
                pre=RAW_PRE,
            )
        return self.boots["raw"]


@pytest.fixture(scope="module")
def boots(agent_lab: Lab) -> Boots:
    host = agent_lab.workdir / "raw-vs-sysfs"
    host.mkdir(exist_ok=True)
    expected = dict(SMALL)
    expected[BIG] = big_payload()
    (host / "big").write_bytes(expected[BIG])
    entries = [FwCfg(name, string=data.decode()) for name, data in SMALL.items()]
    entries.append(FwCfg(BIG, file=host / "big"))
    files: Files = (
        (BENCH_PATH, (REPO / "bench" / "raw_vs_sysfs.py").read_bytes(), 0o755),
        (SHOW_CONF_PATH, FORMATS.encode(), 0o644),
    )
    disk = agent_lab.new_disk("networkd", agent_conf=AGENT_CONF, files=files)
    return Boots(agent_lab, disk, entries, expected)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _show(r: BootResult) -> dict[str, Any]:
    assert r.rc("pre") == 0, f"pre: {r.text('pre.err')}"
    assert r.rc("show.json") == 0, f"show: rc {r.rc('show.json')}: {r.text('show.json.err')}"
    doc = r.json("show.json")
    assert isinstance(doc, dict), doc
    return doc


def _by_name(doc: dict[str, Any]) -> dict[str, tuple[int, str]]:
    return {e["name"]: (int(e["size"]), str(e["sha256"])) for e in doc["entries"]}


def _seconds(r: BootResult, name: str) -> float | None:
    text = r.text(f"{name}.ms").strip()
    return int(text) / 1000 if text.isdigit() else None


def _record(b: Boots) -> dict[str, Any]:
    """What the boots so far measured: into the boot report, build/raw-vs-sysfs.json, stdout."""
    doc: dict[str, Any] = {}
    if "sysfs" in b.boots:
        r = b.boots["sysfs"]
        bench = r.json("bench.json") if r.rc("bench.json") in (0, 3) else None
        doc["sysfs_boot"] = {
            "bench": bench,
            "show_all_sysfs_seconds": _seconds(r, "show.json"),
            "agent_blame": r.blame(),
        }
    if "raw" in b.boots:
        r = b.boots["raw"]
        doc["raw_boot"] = {
            "show_all_raw_seconds": _seconds(r, "show.json"),
            "agent_blame": r.blame(),
        }
    b.lab.measurements["raw_vs_sysfs"] = doc
    path = measure.write_report("raw-vs-sysfs.json", doc)
    print(f"raw vs sysfs ({path}): {doc}")
    return doc


def test_sysfs_and_raw_read_the_same_1mib_in_one_guest(boots: Boots) -> None:
    r = boots.sysfs()
    doc = _record(boots)
    checks.agent_succeeded(r)
    assert r.hostname == "raw-vs-sysfs", r.describe()
    # the agent's own run read the small entries only (the big one is excluded)
    runs = checks.apply_runs_this_boot(r)
    assert len(runs) == 1, runs
    assert sorted(e["name"] for e in runs[0]["entries"]) == sorted(SMALL), runs[0]["entries"]
    # `show` through sysfs: every entry, byte for byte what the host passed, a valid payload
    show = _show(r)
    assert show["source"] == "sysfs", show
    assert show["error"] is None, show["error"]
    want = {name: (len(data), _sha(data)) for name, data in boots.expected.items()}
    assert _by_name(show) == want, (_by_name(show), want)
    # the benchmark: both readers give the host's bytes
    # 3: figures fine, device not given back (test_raw_read_gives_the_device_back)
    assert r.rc("bench.json") in (0, 3), f"bench: {r.text('bench.json.err')}"
    bench = doc["sysfs_boot"]["bench"]
    assert bench["name"] == BIG and bench["size"] == BIG_SIZE, bench
    assert bench["sha256_sysfs"] == bench["sha256_raw"] == _sha(boots.expected[BIG]), bench
    print(
        f"1 MiB entry: sysfs {bench['sysfs_seconds']:.3f} s, raw {bench['raw_seconds']:.4f} s "
        f"(+{bench['raw_open_seconds']:.4f} s to open): ratio {bench['ratio']:.1f}"
    )


def test_raw_read_gives_the_device_back(boots: Boots) -> None:
    """After the benchmark's raw read (unbind, read, rebind) the driver has the device again:
    the collector, which runs after it, still lists the entries through sysfs. (Linux 6.1's
    qemu_fw_cfg refuses the rebind with EBUSY; raw.py then reloads the module.)"""
    r = boots.sysfs()
    assert r.rc("bench.json") == 0, r.text("bench.json.err")
    assert r.fwcfg_names().get(BIG) == BIG_SIZE, "no sysfs tree after the raw read"


def test_raw_without_driver_gives_what_sysfs_gave(boots: Boots) -> None:
    sysfs, raw = boots.sysfs(), boots.raw()
    _record(boots)
    assert "qemu_fw_cfg" not in raw.text("lsmod.txt"), "the driver loaded despite the blacklist"
    assert not (raw.dir / "fwcfg").exists(), "a sysfs tree in the blacklisted boot"
    checks.agent_succeeded(raw)
    assert raw.hostname == "raw-vs-sysfs", raw.describe()
    # the disk's second boot: the agent read the device raw and found nothing to change
    runs = checks.apply_runs_this_boot(raw)
    assert [(x["source"], x["outcome"]) for x in runs] == [("raw", "unchanged")], runs
    unchanged = checks.journal_with(raw, checks.MSG_UNCHANGED)
    assert unchanged and unchanged[0].get("FWCFG_SOURCE") == "raw", raw.text("agent-journal.txt")
    from_raw, from_sysfs = _show(raw), _show(sysfs)
    assert from_raw["source"] == "raw", from_raw
    assert from_raw["error"] is None, from_raw["error"]
    assert _by_name(from_raw) == _by_name(from_sysfs), (_by_name(from_raw), _by_name(from_sysfs))
    assert _by_name(from_raw)[BIG] == (BIG_SIZE, _sha(boots.expected[BIG]))
