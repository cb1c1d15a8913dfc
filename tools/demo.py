"""`make demo`: the agent on a throwaway guest-like root built from examples/*.env.

Each examples/NAME.env becomes the fw_cfg entry opt/NAME ("__" in NAME stands for "/").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.fakeroot import (
    write_fwcfg_tree,
    write_netdev,
    write_os_release,
    write_qemu_acpi_device,
)

REPO = Path(__file__).resolve().parent.parent


def agent(root: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "fwcfg_agent", args[0], "--root", str(root), *args[1:]]
    print(f"\n$ fwcfg-agent {' '.join(args)} --root {root}", flush=True)
    subprocess.run(cmd, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})


def main() -> int:
    entries = {
        "opt/" + p.stem.replace("__", "/"): p.read_bytes()
        for p in sorted((REPO / "examples").glob("*.env"))
    }
    with tempfile.TemporaryDirectory(prefix="fwcfg-demo-") as tmp:
        root = Path(tmp)
        write_qemu_acpi_device(root)
        write_fwcfg_tree(root, entries)
        write_netdev(root, "enp0s2", "52:54:00:12:34:56")
        write_netdev(root, "enp0s3", "52:54:00:12:34:57")
        write_os_release(root, ID="debian", VERSION_ID="12", PRETTY_NAME="Debian GNU/Linux 12")
        (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n")
        print(f"A guest-like root in {root} with these fw_cfg entries:")
        for name, data in entries.items():
            print(f"  {name} ({len(data)} bytes)")
        agent(root, "show")
        agent(root, "apply")
        print("\nFiles the agent wrote:")
        for p in sorted((root / "etc").rglob("*")):
            if p.is_file() and p.name != "os-release":
                print(f"\n--- /{p.relative_to(root)} (mode {p.stat().st_mode & 0o777:04o})")
                print(p.read_text(), end="")
        agent(root, "apply")
        agent(root, "journal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
