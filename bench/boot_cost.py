"""The agent's cost on the boot path, as ratios to the bare interpreter measured in the same run.

    python3 bench/boot_cost.py [--python /usr/bin/python3] [--runs 30] [--json FILE]

It installs the checkout into a throwaway venv made from PYTHON (Debian's python3 by default,
the interpreter a guest runs, with its python3-jinja2/pyudev/systemd); the build precompiles the
templates into the package with that jinja2, as for the DEB and the RPM (setup.py; the bench
checks that the installed agent uses them). It measures both entry points: `launcher` is
bin/fwcfg-agent as the DEB and RPM install it (`python3 -I`), `pip` the same launcher as pip
installs it (pip drops the -I). Each case runs the whole process, interleaved with the
baseline: the same interpreter with the same flags running `-c pass`. Reported: median, min
and max wall time, the ratio of medians (the targets are on it), peak RSS, median CPU time
(user + system) and its ratio, and the top of `-X importtime` for each case.

Cases, on a root with a realistic payload (hostname, two NICs, IPv4 and IPv6, DNS, routes):
  first-boot    everything rendered and written (a fresh copy of the root every run)
  steady-state  a later boot: nothing changed
  no-device     no fw_cfg device at all
  no-entries    a later boot with a device but no entries for the agent (no payload given)
  invalid       a payload with an error: nothing written

Two more references, once a round: `before-jinja2` (the interpreter importing the modules that
jinja2 loads and the full path loads anyway) and `jinja2` (the same, then jinja2). Their
difference is jinja2's import, which a first boot pays on purpose since issue 13 (one rendering
engine); the first boot's ratio with it taken out is printed too, to compare with the 4.51x of
the first boot before issue 12's work, when no jinja2 was loaded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fakeroot import (  # noqa: E402
    smbios_table,
    write_dmi_table,
    write_fwcfg_tree,
    write_netdev,
    write_os_release,
    write_qemu_acpi_device,
)

PAYLOAD = {
    "opt/org.example/host": b"HOSTNAME=web1.example.com\nDNS1=192.0.2.53\nDNS2=2001:db8::53\n"
                            b"SEARCH='example.com lab.example.com'\n",
    "opt/org.example/net0": b"HWADDR=52:54:00:12:34:56\nIPADDR=192.0.2.10/24\n"
                            b"GATEWAY=192.0.2.1\nIPV6ADDR=2001:db8::10/64\n"
                            b"IPV6_DEFAULTGW=2001:db8::1\n",
    "opt/org.example/net1": b"HWADDR=52:54:00:12:34:57\nIPADDR=198.51.100.10/24\nMTU=9000\n"
                            b"ROUTE1='203.0.113.0/24 via 198.51.100.1 metric 100'\n"
                            b"ROUTE2='2001:db8:99::/48 via 2001:db8:100::1'\n"
                            b"IPV6ADDR=2001:db8:100::10/64\n",
}
# fw_cfg entries that are not the agent's: QEMU's own and another tool's namespace
NO_ENTRIES = {"etc/boot-fail-wait": b"\x00\x00\x00\x00",
              "opt/io.systemd.credentials/ssh.authorized_keys.root": b"ssh-ed25519 AAAA x\n"}
# first-boot: jinja2 renders, so its import (about 4x the bare interpreter here) is included
TARGETS = {"first-boot": 7.0, "steady-state": 1.2, "no-device": 1.2}


def make_root(root: Path, payload: dict[str, bytes] | None) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")
    write_os_release(root, ID="debian", VERSION_ID="12")
    write_netdev(root, "enp0s2", "52:54:00:12:34:56")
    write_netdev(root, "enp0s3", "52:54:00:12:34:57")
    # every boot reads the other channels too (issue 15): an SMBIOS table as QEMU makes one,
    # with an OEM string that is not the agent's, and systemd's (empty) credentials directory
    write_dmi_table(root, smbios_table([b"io.systemd.stub:not-the-agents=1"]))
    (root / "run/credentials/@system").mkdir(parents=True)
    (root / "var/lib").mkdir(parents=True)  # every image has it: the agent makes its own below
    if payload is not None:
        write_qemu_acpi_device(root)
        write_fwcfg_tree(root, payload)
    return root


def install(python: str, work: Path) -> tuple[list[str], list[str]]:
    """A venv with the agent installed; returns (packaged launcher argv, pip's argv)."""
    venv = work / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    # The distribution's packages (python3-jinja2, -pyudev, -systemd) as a guest sees them, but
    # without processing the .pth files of the host's site directories: a guest image has none
    # of this machine's start-up hooks (one here imports certifi and pathlib into every
    # interpreter), and they would inflate the baseline and flatter every ratio.
    site = subprocess.run([str(venv / "bin/python"), "-c",
                           "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    dist = subprocess.run([python, "-I", "-c",
                           "import site; print('\\n'.join(site.getsitepackages()))"],
                          check=True, capture_output=True, text=True).stdout.split()
    Path(site, "distribution-packages.pth").write_text("".join(f"{d}\n" for d in dist))
    # from a copy of the checkout: pip builds in the tree it is given (build/, *.egg-info), and
    # a build/lib left by an earlier build of another tree would end up in the package
    src = work / "src"
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", ".*_cache", ".hypothesis", ".venv*",
        "__pycache__", "__compiled__", "_codeid"))
    subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(src)], check=True,
                   stdout=subprocess.DEVNULL)
    # the build precompiled the templates (setup.py) with the jinja2 the agent runs with here
    # (a clean environment: make test's PYTHONPATH would put the checkout's package first)
    check = subprocess.run([str(venv / "bin/python"), "-m", "fwcfg_agent.render.cache",
                            "--check"], cwd=work, capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    if check.returncode != 0:
        raise SystemExit(f"the installed agent does not use precompiled templates: "
                         f"{check.stderr.strip()}")
    launcher = venv / "bin/fwcfg-agent-launcher"
    text = (REPO / "bin/fwcfg-agent").read_text().split("\n", 1)[1]
    flags = ["-I"]
    launcher.write_text(f"#!{venv}/bin/python {' '.join(flags)}\n{text}")
    launcher.chmod(0o755)
    return ([str(venv / "bin/python"), *flags, str(launcher)],
            [str(venv / "bin/python"), str(venv / "bin/fwcfg-agent")])


Case = tuple[Path, Optional[Callable[[], None]], int]


def make_cases(work: Path, launcher: list[str]) -> dict[str, Case]:
    """The cases' roots under WORK, each a (root, setup to run before every run or None,
    expected exit code); the later-boot roots have had their first run with LAUNCHER."""
    template = make_root(work / "template", PAYLOAD)
    steady = work / "steady"
    shutil.copytree(template, steady, symlinks=True)
    subprocess.run([*launcher, "apply", "--root", str(steady)], check=True, capture_output=True)
    nodev = make_root(work / "nodev", None)
    # an image booted without a payload: only QEMU's and other tools' entries; a later boot
    noent = make_root(work / "noent", NO_ENTRIES)
    subprocess.run([*launcher, "apply", "--root", str(noent)], check=True, capture_output=True)
    invalid = make_root(work / "invalid", {**PAYLOAD, "opt/org.example/net1":
                                           b"HWADDR=52:54:00:12:34:57\nMTU=12\n"})
    fresh = work / "fresh"

    def first_boot_setup() -> None:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(template, fresh, symlinks=True)

    return {
        "first-boot": (fresh, first_boot_setup, 0),
        "steady-state": (steady, None, 0),
        "no-device": (nodev, None, 0),
        "no-entries": (noent, None, 0),
        "invalid": (invalid, None, 3),
    }


def run_once(argv: list[str]) -> tuple[float, int, int, float]:
    """Wall time, exit code, peak RSS (KiB) and CPU time (user + system) of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return elapsed, proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def importtime(argv: list[str], top: int = 8) -> list[tuple[int, str]]:
    interp, rest = argv[0], argv[1:]
    proc = subprocess.run([interp, "-X", "importtime", *rest], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    rows: list[tuple[int, str]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m and len(m.group(3)) <= 2:  # top-level imports only
            rows.append((int(m.group(2)), m.group(4)))
    return sorted(rows, reverse=True)[:top]


def loaded_modules(argv: list[str]) -> list[str]:
    """Every module ARGV's process imports, in order (`-X importtime`)."""
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin"})
    return [m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$",
                                            proc.stderr, re.M)]


JINJA2 = ("jinja2", "markupsafe")


def jinja2_references(base: list[str], full_path: list[str]) -> dict[str, list[str]]:
    """Two more processes to compare with, which tell the first boot's import of jinja2 (issue
    13's deliberate cost) apart from the rest of its run. `before-jinja2`: the interpreter
    (base's argv, `-c pass` replaced) with the collector off, as the launcher runs, importing
    the modules that jinja2 loads and that FULL_PATH (the invalid case: the full path up to
    validation, which every first boot runs, without rendering) loads too, but the bare
    interpreter does not: re, ipaddress, ...; `jinja2`: the same, then `import jinja2`.
    jinja2's own cost is their difference. The module lists come from the processes
    themselves, so they follow the jinja2 and the agent that run."""
    prefix = base[:-2]
    plain = set(loaded_modules(base))
    agent = set(loaded_modules(full_path))
    alone = subprocess.run(  # (sys.modules, not importtime: it lists failed imports too)
        [*prefix, "-c", "import sys, jinja2; print(*sys.modules)"], check=True,
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()
    shared = [m for m in alone if m in agent and m not in plain
              and m.split(".")[0] not in JINJA2 and not m.startswith("_frozen")]
    before = "import gc; gc.disable()" + "".join(f"; import {m}" for m in shared)
    return {"before-jinja2": [*prefix, "-c", before],
            "jinja2": [*prefix, "-c", before + "; import jinja2"]}


def without_jinja2(cases: dict[str, Any], key: str = "median_ms") -> float:
    """The first boot's ratio to the baseline in KEY (median wall time here, instructions in
    instructions.py) with jinja2's import (jinja2 less before-jinja2) taken out: what issue
    12's work is compared on (4.51x before it, with no jinja2 loaded)."""
    jinja2 = cases["jinja2"][key] - cases["before-jinja2"][key]
    return float((cases["first-boot"][key] - jinja2) / cases["baseline"][key])


def stats(xs: list[float]) -> dict[str, float]:
    return {"median_ms": statistics.median(xs) * 1e3, "min_ms": min(xs) * 1e3,
            "max_ms": max(xs) * 1e3}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default="/usr/bin/python3")
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="fwcfg-bench-") as tmp:
        work = Path(tmp)
        launcher, pip_ep = install(args.python, work)
        flags = launcher[1:-1]
        base_argv = {"launcher": [launcher[0], *flags, "-c", "pass"],
                     "pip": [pip_ep[0], "-c", "pass"]}
        cases = make_cases(work, launcher)
        results: dict[str, Any] = {"python": subprocess.run(
            [launcher[0], "--version"], capture_output=True, text=True).stdout.strip(),
            "runs": args.runs, "entry_points": {}}
        for ep_name, ep in (("launcher", launcher), ("pip", pip_ep)):
            base = base_argv[ep_name]
            refs = jinja2_references(base, [*ep, "apply", "--root", str(cases["invalid"][0])])
            times: dict[str, list[float]] = {"baseline": []}
            rss: dict[str, list[int]] = {"baseline": []}
            cpu: dict[str, list[float]] = {"baseline": []}
            for _ in range(args.runs):
                for ref, argv in refs.items():  # once a round: only the first boot needs them
                    t, code, m, c = run_once(argv)
                    if code != 0:
                        raise SystemExit(f"{ref}: exit {code} ({' '.join(argv)})")
                    times.setdefault(ref, []).append(t)
                    rss.setdefault(ref, []).append(m)
                    cpu.setdefault(ref, []).append(c)
                for case, (root, setup, expect) in cases.items():
                    if setup:
                        setup()
                    t, _, m, c = run_once(base)  # interleaved: a baseline before every case
                    times["baseline"].append(t)
                    rss["baseline"].append(m)
                    cpu["baseline"].append(c)
                    t, code, m, c = run_once([*ep, "apply", "--root", str(root)])
                    if code != expect:
                        raise SystemExit(f"{case}: exit {code}, expected {expect}")
                    times.setdefault(case, []).append(t)
                    rss.setdefault(case, []).append(m)
                    cpu.setdefault(case, []).append(c)
            base_med = statistics.median(times["baseline"])
            base_cpu = statistics.median(cpu["baseline"])
            out: dict[str, Any] = {}
            for case, xs in times.items():
                row: dict[str, Any] = dict(stats(xs))
                row["ratio"] = statistics.median(xs) / base_med
                row["peak_rss_kib"] = max(rss[case])
                # CPU time too: on a loaded machine it tells the agent's own cost apart from
                # waiting for a core
                row["cpu_median_ms"] = statistics.median(cpu[case]) * 1e3
                row["cpu_ratio"] = statistics.median(cpu[case]) / base_cpu
                if case in cases:
                    root, setup, _ = cases[case]
                    if setup:
                        setup()
                    row["importtime_us"] = importtime([*ep, "apply", "--root", str(root)])
                out[case] = row
            results["entry_points"][ep_name] = {
                "argv0": ep[-1], "flags": ep[1:-1], "cases": out,
                "first_boot_without_jinja2": without_jinja2(out),
                "before_jinja2_imports": refs["before-jinja2"][-1]}

    print(f"fwcfg-agent boot cost, {results['python']}, {args.runs} interleaved runs per case")
    for ep_name, ep_res in results["entry_points"].items():
        print(f"\nentry point: {ep_name} (flags: {' '.join(ep_res['flags']) or 'none'})")
        print(f"  {'case':14} {'median':>8} {'min':>8} {'max':>8} {'ratio':>6} {'target':>7}"
              f" {'peak RSS':>9} {'CPU':>8} {'CPU ratio':>9}")
        for case, row in ep_res["cases"].items():
            target = TARGETS.get(case)
            mark = "" if target is None else f"<={target:g}x"
            print(f"  {case:14} {row['median_ms']:7.1f}ms {row['min_ms']:7.1f}ms "
                  f"{row['max_ms']:7.1f}ms {row['ratio']:5.2f}x {mark:>7} "
                  f"{row['peak_rss_kib'] / 1024:7.1f}MiB {row['cpu_median_ms']:6.1f}ms "
                  f"{row['cpu_ratio']:8.2f}x")
        print(f"  first boot with jinja2's import (jinja2 less before-jinja2) taken out: "
              f"{ep_res['first_boot_without_jinja2']:.2f}x (4.51x before issue 12, no jinja2)")
        for case, row in ep_res["cases"].items():
            if "importtime_us" in row:
                top = ", ".join(f"{name} {us / 1000:.1f}ms" for us, name in
                                row["importtime_us"][:5])
                print(f"  imports, {case}: {top}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
