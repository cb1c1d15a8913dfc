"""What one guest boot reported (the collector's files), with typed accessors for the tests."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Address:
    ifname: str
    mac: str
    family: str  # "inet" or "inet6"
    local: str
    prefixlen: int


@dataclass(frozen=True)
class BootResult:
    name: str
    dir: Path
    console: Path
    wall_seconds: float

    # -- raw access -----------------------------------------------------------------------
    def text(self, name: str) -> str:
        path = self.dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def json(self, name: str) -> Any:
        return json.loads(self.text(name))

    def json_lines(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text(name).splitlines() if line.strip()]

    def rc(self, name: str) -> int | None:
        text = self.text(name + ".rc").strip()
        return int(text) if text else None

    def console_tail(self, lines: int = 80) -> str:
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- system state ---------------------------------------------------------------------
    @property
    def hostname(self) -> str:
        return self.text("hostname.txt").strip()

    def unit(self, unit: str) -> dict[str, str]:
        props: dict[str, str] = {}
        for line in self.text(f"show-{unit}.txt").splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        return props

    def monotonic(self, unit: str, prop: str) -> int:
        """A unit's timestamp in microseconds since boot (0: never happened)."""
        return int(self.unit(unit).get(prop, "0") or 0)

    def addresses(self) -> list[Address]:
        out = []
        for link in self.json("ip-addr.json"):
            for a in link.get("addr_info", []):
                out.append(
                    Address(
                        ifname=link["ifname"],
                        mac=link.get("address", ""),
                        family=a["family"],
                        local=a["local"],
                        prefixlen=int(a["prefixlen"]),
                    )
                )
        return out

    def ipv4(self) -> dict[str, set[str]]:
        """MAC -> {"addr/prefix", ...} for every non-loopback interface."""
        out: dict[str, set[str]] = {}
        for link in self.json("ip-addr.json"):
            if link["ifname"] == "lo":
                continue
            out.setdefault(link.get("address", ""), set())
        for a in self.addresses():
            if a.family == "inet" and a.ifname != "lo":
                out.setdefault(a.mac, set()).add(f"{a.local}/{a.prefixlen}")
        return out

    def ifname_of(self, mac: str) -> str:
        for link in self.json("ip-link.json"):
            if link.get("address", "").lower() == mac.lower():
                return str(link["ifname"])
        raise KeyError(f"no interface with MAC {mac} in the guest")

    def routes(self) -> list[dict[str, Any]]:
        data = self.json("ip-route.json")
        return list(data) if isinstance(data, list) else []

    def etc(self) -> dict[str, str]:
        """Every file and symlink under /etc and /var/lib/fwcfg-agent: path -> sha256 or
        '-> target'."""
        out: dict[str, str] = {}
        for line in self.text("etc-files.sha256").splitlines():
            digest, _, path = line.partition("  ")
            out[path] = digest
        for line in self.text("etc-links.tsv").splitlines():
            path, _, target = line.partition("\t")
            out[path] = "-> " + target
        return out

    def file(self, path: str) -> str | None:
        """Content of a file the collector copied (see collect.sh's tar list), or None."""
        files = self.dir / "files.tar"
        if not files.exists():
            return None
        with tarfile.open(files) as tar:
            try:
                member = tar.getmember(path.lstrip("/"))
            except KeyError:
                return None
            fh = tar.extractfile(member)
            if fh is None:
                return None
            return io.TextIOWrapper(fh, errors="replace").read()

    def agent_journal(self) -> list[dict[str, Any]]:
        """`journalctl -u fwcfg-agent -o json` of this boot."""
        return self.json_lines("agent-journal.json")

    def fwcfg_names(self) -> dict[str, int]:
        """fw_cfg items the guest's kernel lists: name -> size."""
        out: dict[str, int] = {}
        for line in self.text("fwcfg/index.tsv").splitlines():
            _key, size, name = line.split("\t", 2)
            out[name] = int(size)
        return out

    def critical_chain(self, unit: str = "fwcfg-agent.service") -> str:
        """`systemd-analyze critical-chain UNIT` as the guest printed it: the collector's
        critical-chain.txt for the agent, critical-chain-UNIT.txt for a unit a test's pre
        snippet asked about (measure.chain_pre)."""
        text = self.text(f"critical-chain-{unit}.txt")
        if not text and unit == "fwcfg-agent.service":
            return self.text("critical-chain.txt")
        return text

    def userspace_start(self) -> int:
        """When the service manager started, microseconds since boot (the zero of
        critical-chain's "@" times); 0 if the pre snippet did not record it."""
        for line in self.text("show-manager.txt").splitlines():
            key, _, value = line.partition("=")
            if key == "UserspaceTimestampMonotonic" and value.isdigit():
                return int(value)
        return 0

    def blame(self, unit: str = "fwcfg-agent.service") -> str:
        for line in self.text("blame.txt").splitlines():
            if line.split()[-1:] == [unit]:
                return line.strip()
        return ""

    def describe(self) -> str:
        """For assertion messages: what the guest looked like."""
        return (
            f"guest {self.name}: hostname={self.hostname!r}\n"
            f"{self.text('ip-br-addr.txt')}\nfailed units: {self.text('failed.txt')!r}\n"
            f"agent journal:\n{self.text('agent-journal.txt')}\n"
            f"results in {self.dir}, console {self.console}"
        )
