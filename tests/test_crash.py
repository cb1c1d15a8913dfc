"""Kill the agent at every file-system step of a run: no file is ever half-written, and the
next run finishes the job."""

from __future__ import annotations

import shutil
from pathlib import Path

from .agent import agent, run_child, snapshot
from .conftest import make_guest_root

OLD = {"opt/GuestInfo": b"HOSTNAME=old.example.com\nIPADDR=192.0.2.10\n"}
NEW = b"HOSTNAME=new.example.com\nIPADDR=192.0.2.20/28\nGATEWAY=192.0.2.17\n"


def _set_payload(root: Path, data: bytes) -> None:
    for d in (root / "sys/firmware/qemu_fw_cfg/by_key").iterdir():
        if (d / "name").read_text().strip() == "opt/GuestInfo":
            (d / "raw").write_bytes(data)
            (d / "size").write_text(f"{len(data)}\n")


def _contents(root: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for top in ("etc",):
        for p in (root / top).rglob("*"):
            if p.is_file():
                out[str(p.relative_to(root))] = p.read_bytes()
    return out


def test_kill_at_every_step_leaves_files_whole(tmp_path: Path) -> None:
    base = make_guest_root(tmp_path / "base", OLD, hosts="127.0.0.1\tlocalhost\n")
    assert agent(base, "apply").code == 0
    old = _contents(base)
    _set_payload(base, NEW)
    expected = tmp_path / "expected"
    shutil.copytree(base, expected, symlinks=True)
    assert agent(expected, "apply").code == 0
    new = _contents(expected)
    assert old != new

    killed = 0
    for n in range(1, 400):
        root = tmp_path / f"run{n}"
        shutil.copytree(base, root, symlinks=True)
        # SIGKILLed before its n-th file-system mutation under root (guarded: nothing outside)
        proc = run_child(root, "apply", kill_at=n)
        now = _contents(root)
        for path in set(old) | set(new) | set(now):
            if path in now and ".fwcfg-agent." in path:
                continue  # a temp file: never read by anything
            assert now.get(path) in (old.get(path), new.get(path)), (n, path, now.get(path))
        if proc.returncode != -9:
            assert proc.returncode == 0, proc.stderr
            shutil.rmtree(root)
            break
        killed += 1
        # the next boot finishes the job, and leaves no temp files behind
        r = agent(root, "apply")
        assert r.code == 0, r.err
        assert _contents(root) == new, n
        assert snapshot(root, "etc").keys() == snapshot(expected, "etc").keys()
        shutil.rmtree(root)
    assert killed > 20  # the run really was cut at many points
