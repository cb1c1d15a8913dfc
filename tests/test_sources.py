"""Source selection end to end: the same agent above sysfs and the raw reader (on the model)."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from fwcfg_agent.sources import raw

from .agent import agent
from .conftest import make_guest_root
from .fwcfg_model import FwCfgModel

ENTRIES = {"opt/GuestInfo": b"HOSTNAME=rawguest\nIPADDR=192.0.2.10/24\n",
           "opt/org.example/net1": b"HWADDR=52:54:00:12:34:57\nIPADDR=198.51.100.10/24\n"}


def _raw_root(root: Path, monkeypatch: pytest.MonkeyPatch, profile: str) -> list[FwCfgModel]:
    """A guest whose kernel has no fw_cfg sysfs tree; the device answers through the model
    (a fresh one for every open, as a new process sees the device). Returns the models used."""
    import shutil

    make_guest_root(root, ENTRIES, nics=(("ens3", "52:54:00:12:34:56"),
                                         ("ens4", "52:54:00:12:34:57")))
    shutil.rmtree(root / "sys/firmware/qemu_fw_cfg")
    models: list[FwCfgModel] = []

    def opener() -> FwCfgModel:
        models.append(FwCfgModel(profile, ENTRIES))
        return models[-1]

    monkeypatch.setattr(raw, "open_raw_source",
                        functools.partial(raw.open_raw_source, port_opener=opener))
    return models


@pytest.mark.parametrize("profile", ["qemu", "qemu-nodma", "cloud-hypervisor"])
def test_apply_through_raw_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  profile: str) -> None:
    root = tmp_path / "raw"
    models = _raw_root(root, monkeypatch, profile)
    r = agent(root, "apply")
    assert r.code == 0, r.err
    assert (root / "etc/hostname").read_text() == "rawguest\n"
    net1 = root / "etc/systemd/network/10-fwcfg-enx525400123457.network"
    assert "198.51.100.10/24" in net1.read_text()
    run = agent(root, "journal", "--json").json()[-1]
    assert run["source"] == "raw"
    assert models and all(m.crashed is None and m.closed for m in models)

    # the same entries through sysfs give the same names and digests
    sysfs_root = make_guest_root(tmp_path / "sysfs", ENTRIES)
    via_sysfs = agent(sysfs_root, "show", "--json").json()
    via_raw = agent(root, "show", "--json", "--source", "raw").json()
    assert via_raw["source"] == "raw" and via_sysfs["source"] == "sysfs"
    assert [(e["name"], e["size"], e["sha256"]) for e in via_raw["entries"]] == \
        [(e["name"], e["size"], e["sha256"]) for e in via_sysfs["entries"]]


def test_raw_runs_take_the_full_path_every_time(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "raw"
    _raw_root(root, monkeypatch, "qemu")
    assert agent(root, "apply").code == 0
    assert not (root / "var/lib/fwcfg-agent/snapshot").exists()
    r = agent(root, "apply")
    assert r.code == 0 and "nothing changed" in r.err


def test_sysfs_only_without_tree_is_a_clear_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "raw"
    _raw_root(root, monkeypatch, "qemu")
    r = agent(root, "apply", "--source", "sysfs")
    assert r.code == 4 and "qemu_fw_cfg" in r.err
    assert not (root / "etc/hostname").exists()


def test_auto_prefers_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_guest_root(tmp_path / "both", ENTRIES)

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("the raw reader was opened although sysfs was there")

    monkeypatch.setattr(raw, "open_raw_source", refuse)
    doc = agent(root, "show", "--json").json()
    assert doc["source"] == "sysfs"


def test_raw_on_a_test_root_never_opens_real_ports(tmp_path: Path) -> None:
    root = make_guest_root(tmp_path / "r", ENTRIES)
    r = agent(root, "show", "--json", "--source", "raw")
    assert r.code == 4 and "refusing to open the real I/O ports" in r.err


class _Recorder:
    """Stands in for the run's Log: records what the source selection says."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def debug(self, message: str, **fields: object) -> None:
        self.lines.append(f"debug: {message}")

    def info(self, message: str, message_id: str | None = None, **fields: object) -> None:
        self.lines.append(f"info: {message}")


@pytest.mark.parametrize("loads", [True, False])
def test_loading_the_module_waits_for_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               loads: bool) -> None:
    """Without the sysfs tree, qemu_fw_cfg is loaded through fwcfg_agent.device.modprobe (here
    a model of modprobe that makes the tree, as the kernel would, or fails as for a module
    that is blacklisted or missing) and the tree is waited for."""
    from typing import cast

    from fwcfg_agent import device
    from fwcfg_agent.log import Log
    from fwcfg_agent.paths import Root
    from fwcfg_agent.sources import _load_module_and_wait

    tree = tmp_path / "sys/firmware/qemu_fw_cfg"
    script = tmp_path / "modprobe"
    script.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n'
                      + (f"mkdir -p {tree}\n" if loads else "exit 1\n"))
    script.chmod(0o755)
    monkeypatch.setattr(device, "MODPROBE", (str(script),))
    log = _Recorder()
    _load_module_and_wait(Root(str(tmp_path)), 30 if loads else 0, cast(Log, log))
    assert (tmp_path / "calls").read_text() == "-q -a qemu_fw_cfg\n"
    assert tree.is_dir() is loads
    assert ("info: modprobe qemu_fw_cfg failed; no fw_cfg sysfs tree" in log.lines) is not loads


def test_a_tree_without_by_key_has_no_entries(tmp_path: Path) -> None:
    """qemu_fw_cfg loaded without a device (libvirt without <acpi/>): the tree holds no
    by_key; that is no entries (exit 0), not an unreadable device (exit 4)."""
    from tests.agent import agent
    from tests.fakeroot import write_os_release

    root = tmp_path / "root"
    (root / "sys/firmware/qemu_fw_cfg").mkdir(parents=True)
    write_os_release(root, ID="debian", VERSION_ID="12")
    r = agent(root, "apply")
    assert r.code == 0, r.err
    assert "no fw_cfg entries for fwcfg-agent" in r.err


def test_other_tools_entries_are_named_not_sized(tmp_path: Path) -> None:
    """by_key is listed whole (its names decide which entries are the agent's), but another
    tool's entry is not looked at further: a broken `size` there is not the agent's business,
    and its size is not in the run's record (nor compared at the next boot)."""
    from fwcfg_agent import fast

    root = make_guest_root(tmp_path / "root", ENTRIES)
    key = next(d for d in (root / "sys/firmware/qemu_fw_cfg/by_key").iterdir()
               if (d / "name").read_text() == "etc/e820\n")
    (key / "size").write_text("not a number\n")
    r = agent(root, "apply")
    assert r.code == 0, r.err
    items = fast.load(str(root)) or []
    sizes = [rel for _, rel, _ in items if rel.endswith("/size")]
    names = [rel for _, rel, _ in items if rel.endswith("/name")]
    assert len(sizes) == len(ENTRIES) and len(names) > len(ENTRIES), (sizes, names)


def test_an_entry_listed_twice_is_exit_4(tmp_path: Path) -> None:
    """Two by_key items with one of the agent's names: a damaged directory, not a guess."""
    import shutil

    root = make_guest_root(tmp_path / "root", ENTRIES)
    by_key = root / "sys/firmware/qemu_fw_cfg/by_key"
    key = next(d for d in by_key.iterdir() if (d / "name").read_text() == "opt/GuestInfo\n")
    shutil.copytree(key, by_key / "999")
    r = agent(root, "apply")
    assert r.code == 4, r.err
    assert "lists opt/GuestInfo more than once" in r.err
    assert not (root / "etc/hostname").exists()
