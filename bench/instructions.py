"""The agent's cost on the boot path in counts that do not depend on the machine's load.

    python3 bench/instructions.py [--python /usr/bin/python3] [--case NAME ...] [--json FILE]

The same install and the same cases as bench/boot_cost.py (the launcher entry point, `-I`),
each run once under valgrind's callgrind and once under strace, beside the baseline (the same
interpreter and flags running `-c pass`). Reported per case:

  instructions  instructions executed (callgrind's Ir), and their ratio to the baseline's:
                repeatable whatever else the machine runs, so a change's effect shows even
                on a busy machine where wall times (boot_cost.py) are noise
  syscalls      system calls made (strace -f -c), and how many of them were openat
  modules       modules imported (`-X importtime` lines: builtin and frozen ones included)

With the first boot, boot_cost.py's two jinja2 references too (`before-jinja2`, `jinja2`), and
the first boot's count with jinja2's import (their difference) taken out.

Wall time is what the targets are on (boot_cost.py); instructions track its CPU part, not the
waits for the disk (fsync) or the page faults. Needs valgrind and strace.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.boot_cost import install, jinja2_references, make_cases, without_jinja2  # noqa: E402

ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def instructions(argv: list[str], work: Path) -> int:
    out = work / "callgrind.out"
    proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           *argv], capture_output=True, text=True, env=ENV)
    out.unlink(missing_ok=True)
    m = re.search(r"^==\d+== Collected : (\d+)$", proc.stderr, re.M)
    if m is None:
        raise SystemExit(f"callgrind gave no count for {argv}:\n{proc.stderr[-2000:]}")
    return int(m.group(1))


def syscalls(argv: list[str], work: Path) -> tuple[int, int]:
    """(all system calls, openat calls) of the process and its children."""
    out = work / "strace.out"
    subprocess.run(["strace", "-f", "-c", "-o", str(out), *argv], capture_output=True,
                   env=ENV)
    text = out.read_text()
    out.unlink()
    total = re.search(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?total$", text, re.M)
    opens = re.search(r"^\s*\S+\s+\S+\s+\S+\s+(\d+)\s+(?:\d+\s+)?openat$", text, re.M)
    return (int(total.group(1)) if total else 0, int(opens.group(1)) if opens else 0)


def modules(argv: list[str]) -> int:
    proc = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True,
                          text=True, env=ENV)
    return sum(1 for line in proc.stderr.splitlines()
               if line.startswith("import time:") and "| imported package" not in line)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--python", default="/usr/bin/python3")
    p.add_argument("--case", action="append", help="only this case (repeatable)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    for tool in ("valgrind", "strace"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is needed")

    with tempfile.TemporaryDirectory(prefix="fwcfg-instr-") as tmp:
        work = Path(tmp)
        launcher, _ = install(args.python, work)
        cases = make_cases(work, launcher)
        base = [launcher[0], *launcher[1:-1], "-c", "pass"]
        rows: dict[str, dict[str, Any]] = {}
        base_ir = instructions(base, work)
        base_sys, base_open = syscalls(base, work)
        rows["baseline"] = {"instructions": base_ir, "ratio": 1.0, "syscalls": base_sys,
                            "openat": base_open, "modules": modules(base)}
        if not args.case or "first-boot" in args.case:
            # jinja2's import, told apart from the rest of a first boot (boot_cost.py)
            refs = jinja2_references(base, [*launcher, "apply", "--root",
                                            str(cases["invalid"][0])])
            for ref, argv in refs.items():
                ir = instructions(argv, work)
                calls, opens = syscalls(argv, work)
                rows[ref] = {"instructions": ir, "ratio": ir / base_ir, "syscalls": calls,
                             "openat": opens, "modules": modules(argv)}
        for name, (root, setup, expect) in cases.items():
            if args.case and name not in args.case:
                continue
            argv = [*launcher, "apply", "--root", str(root)]
            if setup:
                setup()
            ir = instructions(argv, work)
            if setup:
                setup()
            calls, opens = syscalls(argv, work)
            if setup:
                setup()
            mods = modules(argv)
            if setup:
                setup()
            code = subprocess.run(argv, capture_output=True, env=ENV).returncode
            if code != expect:
                raise SystemExit(f"{name}: exit {code}, expected {expect}")
            rows[name] = {"instructions": ir, "ratio": ir / base_ir, "syscalls": calls,
                          "openat": opens, "modules": mods}

    python = subprocess.run([args.python, "--version"], capture_output=True,
                            text=True).stdout.strip()
    print(f"fwcfg-agent boot cost in counts, {python} (launcher, -I)")
    print(f"  {'case':14} {'instructions':>13} {'ratio':>6} {'syscalls':>9} {'openat':>7}"
          f" {'modules':>8}")
    for name, row in rows.items():
        print(f"  {name:14} {row['instructions']:13,d} {row['ratio']:5.2f}x {row['syscalls']:9d}"
              f" {row['openat']:7d} {row['modules']:8d}")
    doc: dict[str, Any] = {"python": python, "cases": rows}
    if "jinja2" in rows and "first-boot" in rows:
        jinja2 = rows["jinja2"]["instructions"] - rows["before-jinja2"]["instructions"]
        doc["jinja2_import"] = jinja2
        doc["first_boot_without_jinja2"] = without_jinja2(rows, "instructions")
        print(f"  jinja2's import (jinja2 less before-jinja2): {jinja2:,d}; the first boot "
              f"without it: {doc['first_boot_without_jinja2']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
