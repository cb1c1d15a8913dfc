"""The real consumers accept the rendered files and read back what the payload said.

netplan (`netplan generate --root-dir`), ifupdown (`ifquery`, `ifup --no-act`), NetworkManager
(`nmcli --offline`, which parses a keyfile from stdin, verifies the connection and writes it
back normalized), bash (the ifcfg files are sourced: nothing may run, values come back byte for
byte) and systemd-networkd (no verify mode: every Section.Key must be one the installed networkd
binary knows, and the files must say what the model says, as netplan's own networkd output must).

A missing tool is a failure, not a skip: `tools/bootstrap` installs them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pytest

from fwcfg_agent.model import Format, HostConfig, Interface, IPAddress
from fwcfg_agent.render import Plan, render
from fwcfg_agent.render.env import Templates
from tests.render_cases import CASE_BY_NAME, CASES, INJECTION_EXTRA, INJECTION_SKIPPED, Case

NETWORKD_BINARIES = ("/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd")


def _need(tool: str) -> str:
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        pytest.fail(f"{tool} is missing: run tools/bootstrap (it installs netplan.io, ifupdown, "
                    "network-manager)")
    return path


def _plan(case: Case, fmt: Format) -> Plan:
    return render(case.config, [fmt], case.facts, Templates())


def _write(plan: Plan, root: Path) -> dict[str, Path]:
    out = {}
    for f in plan.files:
        dest = root / f.path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.content)
        dest.chmod(f.mode)
        out[f.path] = dest
    return out


def _iface_file(plan: Plan, iface: Interface, prefix: str) -> bytes:
    """The file of `iface`: named after its label (networkd, NM) or its name (ifcfg, ifupdown)."""
    def stem(path: str) -> str:
        name = os.path.basename(path)
        for ext in (".network", ".nmconnection"):
            name = name[:-len(ext)] if name.endswith(ext) else name
        return name

    matches = [f.content for f in plan.files if stem(f.path) in (prefix + iface.label,
                                                                 prefix + iface.name)]
    assert len(matches) == 1, (prefix, iface.name, plan.paths())
    return matches[0]


# What the model says, restated here independently of the templates.

def _offlink(gw: IPAddress | None, iface: Interface) -> bool:
    if gw is None or (gw.version == 6 and gw.is_link_local):
        return False
    return not any(gw in a.network for a in iface.addresses if a.version == gw.version)


def _gets_dns(config: HostConfig, iface: Interface) -> bool:
    if any(i.addresses for i in config.interfaces):
        return bool(iface.addresses)
    return iface.dhcp or not any(i.dhcp for i in config.interfaces)


def _default(gw: IPAddress) -> str:
    return "0.0.0.0/0" if gw.version == 4 else "::/0"


def _gateways(iface: Interface) -> list[IPAddress]:
    return [gw for gw in (iface.gateway, iface.gateway6) if gw is not None]


Route = tuple[str, Optional[str], bool, Optional[int]]  # destination, gateway, on-link, metric


def _metric(iface: Interface, version: int) -> Optional[int]:
    return iface.metric4 if version == 4 else iface.metric6


def _expected_routes(iface: Interface) -> set[Route]:
    routes: set[Route] = {(_default(gw), str(gw), _offlink(gw, iface), _metric(iface, gw.version))
                          for gw in _gateways(iface)}
    for r in iface.routes:
        routes.add((str(r.destination), None if r.gateway is None else str(r.gateway),
                    _offlink(r.gateway, iface), r.metric))
    return routes


# systemd .network files (networkd's own and the ones netplan generates)

Sections = list[tuple[str, list[tuple[str, str]]]]


def _parse_unit(text: str) -> Sections:
    sections: Sections = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            assert line.endswith("]"), raw
            sections.append((line[1:-1], []))
            continue
        key, sep, value = line.partition("=")
        assert sep and sections, f"not KEY=VALUE inside a section: {raw!r}"
        sections[-1][1].append((key.strip(), value.strip()))
    return sections


@dataclass(frozen=True)
class NetworkSummary:
    match: tuple[str, str]
    mtu: int | None
    dhcp4: bool
    addresses: frozenset[str]
    routes: frozenset[Route]
    dns: tuple[str, ...]
    domains: tuple[str, ...]
    # issue 14: IPv6 and what DHCP brings
    dhcp6: bool = False
    accept_ra: Optional[bool] = None  # None: networkd's default
    link_local: bool = True
    dhcp_use_gateway: bool = True
    dhcp_route_metric: Optional[int] = None
    dhcp_use_dns: bool = True
    # issue 14: VLANs, bonds, bridges
    master: Optional[tuple[str, str]] = None  # ("Bond" or "Bridge", its name)
    vlans: frozenset[str] = frozenset()


def _bool(value: str) -> bool:
    assert value in ("yes", "no", "true", "false", "1", "0"), value
    return value in ("yes", "true", "1")


def _summarize(sections: Sections) -> NetworkSummary:
    match: dict[str, str] = {}
    mtu = None
    dhcp4 = dhcp6 = False
    accept_ra: Optional[bool] = None
    link_local = True
    dynamic: dict[str, set[str]] = {}
    master: Optional[tuple[str, str]] = None
    vlans: set[str] = set()
    addresses: set[str] = set()
    routes: set[Route] = set()
    dns: list[str] = []
    domains: list[str] = []
    for name, items in sections:
        d = dict(items)
        if name == "Match":
            match.update(d)
        elif name == "Link" and "MTUBytes" in d:
            mtu = int(d["MTUBytes"])
        elif name == "Network":
            for key, value in items:
                if key == "DHCP":
                    dhcp4 = value in ("ipv4", "yes", "true")
                    dhcp6 = value in ("ipv6", "yes", "true")
                elif key == "IPv6AcceptRA":
                    accept_ra = _bool(value)
                elif key in ("Bond", "Bridge"):
                    master = (key, value)
                elif key == "VLAN":
                    vlans.add(value)
                elif key == "LinkLocalAddressing":
                    assert value in ("no", "ipv6"), value  # ipv6 is the default
                    link_local = value == "ipv6"
                elif key == "Address":
                    addresses.add(str(ipaddress.ip_interface(value)))
                elif key == "Gateway":
                    gw = ipaddress.ip_address(value)
                    routes.add((_default(gw), str(gw), False, None))
                elif key == "DNS":
                    dns.append(value)
                elif key == "Domains":
                    domains.extend(value.split())
        elif name in ("DHCP", "DHCPv4", "DHCPv6"):  # [DHCP]: netplan's, for both
            for key, value in items:
                dynamic.setdefault(key, set()).add(value)
        elif name == "IPv6AcceptRA":
            pytest.fail("RA settings only where netplan cannot follow: not in these cases")
        elif name == "Route":
            via = ipaddress.ip_address(d["Gateway"]) if d.get("Gateway") else None
            dest = d.get("Destination") or (_default(via) if via else "")
            routes.add((str(ipaddress.ip_network(dest)), None if via is None else str(via),
                        d.get("GatewayOnLink", "no") in ("yes", "true", "1"),
                        int(d["Metric"]) if "Metric" in d else None))
    mac = match.get("PermanentMACAddress") or match.get("MACAddress")
    if "MACAddress" in match and "PermanentMACAddress" in match:
        assert match["MACAddress"] == match["PermanentMACAddress"]
    for key, values in dynamic.items():
        assert len(values) == 1, (key, values)  # DHCPv4 and DHCPv6 agree
    dyn = {k: v.pop() for k, v in dynamic.items()}
    return NetworkSummary(
        ("mac", mac) if mac else ("name", match["Name"]), mtu, dhcp4, frozenset(addresses),
        frozenset(routes), tuple(dns), tuple(domains), dhcp6, accept_ra, link_local,
        _bool(dyn.get("UseGateway", "yes")),
        int(dyn["RouteMetric"]) if "RouteMetric" in dyn else None,
        _bool(dyn.get("UseDNS", "yes")), master, frozenset(vlans),
    )


def _expected_summary(config: HostConfig, iface: Interface) -> NetworkSummary:
    dns = _gets_dns(config, iface)
    return NetworkSummary(
        ("mac", iface.mac) if iface.mac else ("name", iface.name), iface.mtu, iface.dhcp,
        frozenset(str(a) for a in iface.addresses), frozenset(_expected_routes(iface)),
        tuple(str(s) for s in config.dns) if dns else (),
        config.search if dns else (), iface.dhcp6, iface.ipv6_autoconf,
        not iface.ipv6_disabled and not iface.master, iface.defroute or not iface.dhcp,
        (iface.metric4 if iface.dhcp else iface.metric6) if iface.dhcp or iface.dhcp6 else None,
        iface.peerdns or not (iface.dhcp or iface.dhcp6),
        None if iface.master is None else (str(iface.master_kind).capitalize(), iface.master),
        frozenset(v.name for v in iface.vlans(config)),
    )


def _networkd_keys() -> set[str]:
    binary = next((b for b in NETWORKD_BINARIES if os.path.exists(b)), None)
    if binary is None:
        pytest.fail("systemd-networkd is missing: run tools/bootstrap")
    data = Path(binary).read_bytes()
    # networkd's gperf table of .network settings holds "Section.Key" strings.
    pattern = rb"(?<![\x21-\x7e])([A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*)(?=\x00)"
    return {m.decode() for m in re.findall(pattern, data)}


def _netdev(sections: Sections) -> dict[str, str]:
    """A .netdev as Section.Key -> value (MIIMonitorSec in ms, booleans as yes/no)."""
    out = {}
    for section, items in sections:
        for key, value in items:
            if value in ("true", "false"):
                value = "yes" if value == "true" else "no"
            out[f"{section}.{key}"] = value.removesuffix("ms") if key.endswith("Sec") and \
                section == "Bond" else value
    return out


def _expected_netdev(iface: Interface) -> dict[str, str]:
    want = {"NetDev.Name": iface.name, "NetDev.Kind": iface.kind}
    if iface.mtu:
        want["NetDev.MTUBytes"] = str(iface.mtu)
    if iface.kind == "vlan":
        want["VLAN.Id"] = str(iface.vlan_id)
    elif iface.kind == "bond":
        opts = dict(iface.bond_options)
        want["Bond.Mode"] = opts["mode"]
        for name, key in (("miimon", "MIIMonitorSec"), ("updelay", "UpDelaySec"),
                          ("downdelay", "DownDelaySec"), ("lacp_rate", "LACPTransmitRate"),
                          ("xmit_hash_policy", "TransmitHashPolicy"), ("min_links", "MinLinks")):
            if name in opts:
                want[f"Bond.{key}"] = opts[name]
    elif iface.kind == "bridge":
        want["Bridge.STP"] = "yes" if iface.stp else "no"
        if iface.forward_delay is not None:
            want["Bridge.ForwardDelaySec"] = str(iface.forward_delay)
    return want


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_networkd_files_use_known_keys_and_say_what_the_model_says(case: Case) -> None:
    known = _networkd_keys()
    assert {"Network.Address", "Match.MACAddress", "Route.GatewayOnLink"} <= known
    plan = _plan(case, Format.NETWORKD)
    netdevs = {os.path.basename(f.path): f.content.decode() for f in plan.files
               if f.path.endswith(".netdev")}
    assert len(plan.files) - len(netdevs) == len(case.config.interfaces)
    assert sorted(netdevs) == sorted(f"10-fwcfg-{i.name}.netdev" for i in case.config.interfaces
                                     if i.virtual)
    for name, text in netdevs.items():
        sections = _parse_unit(text)
        for section, items in sections:
            for key, _ in items:
                assert f"{section}.{key}" in known, f"networkd does not know {section}.{key}"
        assert _netdev(sections) == _expected_netdev(
            next(i for i in case.config.interfaces if f"10-fwcfg-{i.name}.netdev" == name))
    for iface in case.config.interfaces:
        sections = _parse_unit(_iface_file(plan, iface, "10-fwcfg-").decode())
        for section, items in sections:
            for key, _ in items:
                assert f"{section}.{key}" in known, f"networkd does not know {section}.{key}"
        assert _summarize(sections) == _expected_summary(case.config, iface)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_netplan_generate_accepts_the_file(case: Case, tmp_path: Path) -> None:
    netplan = _need("netplan")
    plan = _plan(case, Format.NETPLAN)
    assert [f.path for f in plan.files] == ["/etc/netplan/90-fwcfg-agent.yaml"]
    _write(plan, tmp_path)
    r = subprocess.run([netplan, "generate", "--root-dir", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr.lower() and "error" not in r.stderr.lower(), r.stderr
    out = tmp_path / "run/systemd/network"
    for iface in case.config.interfaces:
        generated = out / f"10-netplan-{iface.label}.network"
        assert generated.is_file(), sorted(p.name for p in out.iterdir())
        want = _expected_summary(case.config, iface)
        if (iface.dhcp or iface.dhcp6) and want.dhcp_route_metric is None:
            want = dataclasses.replace(want, dhcp_route_metric=100)  # netplan's own default
        assert _summarize(_parse_unit(generated.read_text())) == want
        if iface.virtual:  # netplan's own .netdev says what ours says (it puts no MTU there)
            netdev = _netdev(_parse_unit((out / f"10-netplan-{iface.label}.netdev").read_text()))
            assert netdev == _expected_netdev(iface)
    assert len(list(out.glob("*.network"))) == len(case.config.interfaces)
    assert len(list(out.glob("*.netdev"))) == len([i for i in case.config.interfaces
                                                    if i.virtual])


def _sh_words(line: str) -> str:
    """A command line as the words sh runs, joined by single spaces (quotes removed)."""
    try:
        return " ".join(shlex.split(line))
    except ValueError:  # not shell syntax: as it is
        return " ".join(line.split())


def _unquote_option(option: str) -> str:
    name, sep, value = option.partition(": ")
    if name in ("up", "pre-up", "down", "post-down"):
        return f"{name}: {_sh_words(value)}"
    return option


def _ifquery(*args: str) -> str:
    r = subprocess.run([_need("ifquery"), *args], capture_output=True, text=True)
    assert r.returncode == 0, (args, r.stderr)
    return r.stdout


def _in_netns(script: str, nics: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `script` in a network namespace of its own, with its own /sys, holding veth NICs
    NAME -> MAC: what ifupdown sees of the NICs there is only these."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a network namespace")
    setup = ["mount -t sysfs none /sys"] + [
        f"ip link add {name} address {mac} type veth peer name {name}p"
        for name, mac in nics.items()]
    return subprocess.run(["unshare", "--net", "--mount", "sh", "-ec",
                           " && ".join([*setup, script])], capture_output=True, text=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ifupdown_parses_the_stanzas(case: Case, tmp_path: Path) -> None:
    _need("ifup")
    plan = _plan(case, Format.IFUPDOWN)
    for iface in case.config.interfaces:
        path = tmp_path / f"fwcfg-{iface.label}"
        path.write_bytes(_iface_file(plan, iface, "fwcfg-"))
        # A NIC matched by MAC gets whatever name; here fwt0. Commands name it $IFACE.
        phys = "fwt0" if iface.mac else iface.name
        dev = "$IFACE" if iface.mac else iface.name
        nics = {phys: iface.mac or "02:00:00:00:00:01", "other0": "02:00:00:00:00:02"}
        state = tmp_path / "state"
        state.mkdir(exist_ok=True)
        # `auto` (what networking.service raises at boot: `ifup -a`) and allow-hotplug, as the
        # NICs of this namespace expand them; then what ifup -a would run (--no-act runs
        # nothing; state goes to the temp dir; ifup prints the commands on stderr)
        r = _in_netns(f"ifquery -i {path} --list -a; echo ==; "
                      f"ifquery -i {path} --list --allow=hotplug; echo ==; "
                      f"ifquery -i {path} {iface.label}; echo ==; "
                      f"ifup --no-act --force --state-dir {state} -i {path} -a 2>&1", nics)
        assert r.returncode == 0, r.stderr
        auto, hotplug, query, ifup = r.stdout.split("==\n")
        assert [n for n in auto.split() if n != "lo"] == [phys]  # ifquery always adds lo
        assert hotplug.split() == ([] if iface.mac or iface.virtual else [iface.name])
        # the sh command lines (up, pre-up) as the words sh makes of them: values are quoted
        options = [_unquote_option(o) for o in query.splitlines()]
        for a in iface.addresses:
            assert f"address: {a.ip}" in options
        for gw in _gateways(iface):
            if iface.dhcp and gw.version == 4:
                assert f"up: ip route replace default via {gw} dev {dev} onlink" in options
            else:
                assert f"gateway: {gw}" in options
        if iface.mtu:
            assert (f"mtu: {iface.mtu}" in options or f"pre-up: ip link set dev {dev} mtu "
                    f"{iface.mtu}" in options)
        # VLANs, bonds, bridges (issue 14): what the vlan, ifenslave and bridge-utils scripts read
        if iface.master_kind == "bond":
            assert f"bond-master: {iface.master}" in options, options
        if iface.kind == "bond":
            assert "bond-slaves: none" in options
            for name, value in iface.bond_options:
                assert f"bond-{name.replace('_', '-')}: {value}" in options, options
        if iface.kind == "bridge":
            ports = " ".join(m.name for m in iface.members(case.config)) or "none"
            assert f"bridge_ports: {ports}" in options, options
            assert f"bridge_stp: {'on' if iface.stp else 'off'}" in options
        if iface.kind == "vlan":
            assert f"vlan-raw-device: {iface.parent}" in options, options
        if iface.master:
            assert not [o for o in options if o.startswith(("address", "gateway", "dns-"))]
        dns = " ".join(str(s) for s in case.config.dns)
        assert (f"dns-nameservers: {dns}" in options) == bool(
            case.config.dns and _gets_dns(case.config, iface))

        commands = [_sh_words(line) for line in ifup.splitlines()]
        for a4 in iface.ipv4:
            assert any(c.startswith(f"ip addr add {a4.ip}/{a4.netmask} ") and f"dev {phys}" in c
                       for c in commands), commands
        for a6 in iface.ipv6:
            assert any(c.startswith(f"ip -6 addr add {a6} ") for c in commands), commands
        for gw in _gateways(iface):
            ip = "ip" if gw.version == 4 else "ip -6"
            m = _metric(iface, gw.version)
            metric = rf" metric {m}" if m is not None else ""
            # ifupdown puts `metric` before `dev`, the up command after it
            assert any(re.match(rf"{ip} route (add|replace) default via {gw}({metric})? dev "
                                rf"({re.escape(phys)}|{re.escape(dev)})({metric})? onlink", c)
                       and (not metric or metric in c) for c in commands), commands
        for rt in iface.routes:
            ip = "ip" if rt.version == 4 else "ip -6"
            want = f"{ip} route replace {rt.destination}"
            if rt.gateway is not None:
                want += f" via {rt.gateway}"
            want += f" dev {dev}"
            if _offlink(rt.gateway, iface):
                want += " onlink"
            if rt.metric is not None:
                want += f" metric {rt.metric}"
            assert want in commands, commands
        if iface.mtu:
            assert any(c.startswith(f"ip link set dev {d} mtu {iface.mtu}")
                       for c in commands for d in (phys, dev)), commands
        assert any("dhclient" in c and "-6" not in c for c in commands) == iface.dhcp
        assert any("dhclient" in c and "-6" in c for c in commands) == iface.dhcp6
        # IPv6 autoconfiguration as the model says (issue 14): ifupdown's own sysctl calls, or
        # the first stanza's pre-up writes where there is no inet6 stanza to carry them
        sysctls: dict[str, int] = {}
        if iface.ipv6_disabled:
            sysctls["disable_ipv6"] = 1
        elif iface.ipv6_autoconf is not None:
            sysctls["accept_ra"] = sysctls["autoconf"] = int(iface.ipv6_autoconf)
        if not iface.defroute6 and iface.accept_ra:
            sysctls["accept_ra_defrtr"] = 0
        for sysctl, setting in sysctls.items():
            # (sysctl's dotted names write a dot in an interface name as '/')
            assert (f"sysctl -q -e -w net.ipv6.conf.{phys.replace('.', '/')}.{sysctl}={setting}"
                    in commands
                    or any(c == f"echo {setting} > /proc/sys/net/ipv6/conf/{d}/{sysctl}"
                           for c in commands for d in (phys, dev))), (sysctl, commands)
        assert "other0" not in ifup  # the other NIC is left alone


def _parse_keyfile(text: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line[1:-1]
            out.setdefault(section, {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None, raw
        assert key not in out[section], f"repeated key {section}.{key}"
        out[section][key] = value
    return out


def _uuid_of(plan: Plan, iface: Interface) -> str:
    return _parse_keyfile(_iface_file(plan, iface, "fwcfg-").decode())["connection"]["uuid"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_networkmanager_accepts_the_keyfiles(case: Case) -> None:
    nmcli = _need("nmcli")
    plan = _plan(case, Format.NM)
    for iface in case.config.interfaces:
        ours = _iface_file(plan, iface, "fwcfg-")
        # nmcli --offline reads the keyfile from stdin, verifies the whole connection (it refuses
        # e.g. a gateway without addresses) and writes it back normalized. Setting the id to
        # the same value changes nothing.
        r = subprocess.run([nmcli, "--offline", "connection", "modify", "connection.id",
                            f"fwcfg-{iface.label}"], input=ours, capture_output=True)
        assert r.returncode == 0, r.stderr.decode()
        assert r.stderr == b"", r.stderr.decode()
        mine, theirs = _parse_keyfile(ours.decode()), _parse_keyfile(r.stdout.decode())
        for section, items in mine.items():
            for key, value in items.items():
                assert theirs.get(section, {}).get(key) == value, (
                    f"NM read {section}.{key}={value} as {theirs.get(section, {}).get(key)}")
        assert theirs["connection"]["type"] == iface.kind
        if iface.kind == "vlan":
            parent = next(i for i in case.config.interfaces if i.name == iface.parent)
            assert theirs["vlan"]["id"] == str(iface.vlan_id)
            assert theirs["vlan"]["parent"] == _uuid_of(plan, parent)
        if iface.kind == "bond":
            assert {k: v for k, v in theirs["bond"].items()} == dict(iface.bond_options)
        if iface.kind == "bridge":
            assert theirs["bridge"]["stp"] == ("true" if iface.stp else "false")
        if iface.master:
            master = next(i for i in case.config.interfaces if i.name == iface.master)
            assert theirs["connection"]["master"] == _uuid_of(plan, master)
            assert theirs["connection"]["slave-type"] == iface.master_kind
            assert "ipv4" not in theirs and "ipv6" not in theirs
            continue
        # Read back: the addresses and the match are NM's now.
        for family, addrs in (("ipv4", iface.ipv4), ("ipv6", iface.ipv6)):
            read = {v.split(",")[0] for k, v in theirs[family].items()
                    if re.fullmatch(r"address\d+", k)}
            assert read == {str(a) for a in addrs}
        if iface.mac:
            assert theirs["ethernet"]["mac-address"].lower() == iface.mac
            assert "interface-name" not in theirs["connection"]
        else:
            assert theirs["connection"]["interface-name"] == iface.name
        assert theirs["ipv4"]["method"] == (
            "auto" if iface.dhcp else "manual" if iface.ipv4 else "disabled")
        # IPv6 as the model says (issue 14): manual and link-local take no RAs
        if iface.ipv6_disabled:
            method6 = "disabled"
        elif not iface.ipv6_init:
            method6 = "link-local"
        elif iface.ipv6_autoconf is not False:
            method6 = "auto"
        else:
            method6 = "dhcp" if iface.dhcp6 else "manual" if iface.ipv6 else "link-local"
        assert theirs["ipv6"]["method"] == method6
        for family, metric in (("ipv4", iface.metric4), ("ipv6", iface.metric6)):
            if metric is not None and theirs[family]["method"] in ("auto", "dhcp", "manual"):
                assert theirs[family]["route-metric"] == str(metric)
            defroute = iface.defroute if family == "ipv4" else iface.defroute6
            if not defroute and theirs[family]["method"] in ("auto", "dhcp", "manual"):
                assert theirs[family]["never-default"] == "true"


# ifcfg: sourced by bash. The script records which variables the file set and their values,
# NUL-separated so that any byte survives; then checks the shell's own variables are intact.
SOURCE_SCRIPT = r"""
set -eu
__path=$PATH __ifs=$IFS
__before=" $(compgen -v | tr '\n' ' ') "
. "$1"
[ "$PATH" = "$__path" ] && [ "$IFS" = "$__ifs" ] || { echo "shell variables changed" >&2; exit 9; }
for __v in $(compgen -v); do
  case "$__before" in *" $__v "*) continue ;; esac
  case "$__v" in __*) continue ;; esac
  printf '%s\0%s\0' "$__v" "${!__v}"
done
"""


def _source(path: Path, cwd: Path) -> dict[str, str]:
    r = subprocess.run(["env", "-i", "bash", "--noprofile", "--norc", "-c", SOURCE_SCRIPT,
                        "bash", str(path)], capture_output=True, cwd=cwd)
    assert r.returncode == 0, r.stderr.decode()
    assert r.stderr == b"", r.stderr.decode()
    fields = r.stdout.split(b"\0")
    assert fields[-1] == b""
    return {fields[i].decode(): fields[i + 1].decode() for i in range(0, len(fields) - 1, 2)}


def _expected_ifcfg(config: HostConfig, iface: Interface) -> dict[str, str]:
    want = {"DEVICE": iface.name, "TYPE": iface.kind.capitalize(),
            "NAME": f"fwcfg-{iface.name}", "BOOTPROTO": iface.bootproto.value, "ONBOOT": "yes"}
    if iface.mac:
        want["HWADDR"] = iface.mac
    if iface.kind == "vlan":
        want.update(VLAN="yes", PHYSDEV=str(iface.parent), VLAN_ID=str(iface.vlan_id))
    elif iface.kind == "bond":
        want.update(BONDING_MASTER="yes",
                    BONDING_OPTS=" ".join(f"{k}={v}" for k, v in iface.bond_options))
    elif iface.kind == "bridge":
        want["STP"] = "on" if iface.stp else "off"
        if iface.forward_delay is not None:
            want["DELAY"] = str(iface.forward_delay)
    if iface.master:
        if iface.master_kind == "bond":
            want.update(MASTER=iface.master, SLAVE="yes")
        else:
            want["BRIDGE"] = iface.master
        if iface.mtu:
            want["MTU"] = str(iface.mtu)
        return want
    if iface.ipv6_disabled or not iface.ipv6_init:
        want["IPV6INIT"] = "no"
        if iface.ipv6_disabled:
            want["IPV6_DISABLED"] = "yes"
    else:
        want["IPV6INIT"] = "yes"
        want["IPV6_AUTOCONF"] = "no" if iface.ipv6_autoconf is False else "yes"
        if iface.dhcp6:
            want["DHCPV6C"] = "yes"
    if not iface.defroute:
        want.update(DEFROUTE="no")
    if not iface.defroute6:
        want.update(IPV6_DEFROUTE="no")
    if not iface.peerdns:
        want.update(PEERDNS="no", IPV6_PEERDNS="no")
    for key, metric in (("IPV4_ROUTE_METRIC", iface.metric4), ("IPV6_ROUTE_METRIC", iface.metric6)):
        if metric is not None:
            want[key] = str(metric)
    if iface.mac:
        want["HWADDR"] = iface.mac
    for i, a in enumerate(iface.ipv4):
        want[f"IPADDR{i}"] = str(a.ip)
        want[f"PREFIX{i}"] = str(a.network.prefixlen)
    if iface.gateway:
        want["GATEWAY"] = str(iface.gateway)
    if _gets_dns(config, iface):
        for i, server in enumerate(config.dns, start=1):
            want[f"DNS{i}"] = str(server)
        if config.search:
            want["DOMAIN"] = " ".join(config.search)
    if iface.ipv6:
        want["IPV6ADDR"] = str(iface.ipv6[0])
        if len(iface.ipv6) > 1:
            want["IPV6ADDR_SECONDARIES"] = " ".join(str(a) for a in iface.ipv6[1:])
    if iface.gateway6:
        want["IPV6_DEFAULTGW"] = str(iface.gateway6)
    if iface.mtu:
        want["MTU"] = str(iface.mtu)
    want.update((k, v) for k, v in iface.extra if k not in INJECTION_SKIPPED)
    return want


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ifcfg_is_inert_shell_that_reads_back_the_payload(case: Case, tmp_path: Path) -> None:
    _need("bash")
    pwned = Path("/tmp/pwned")
    existed = pwned.exists()
    plan = _plan(case, Format.IFCFG)
    files = _write(plan, tmp_path / "root")
    work = tmp_path / "cwd"
    work.mkdir()
    for iface in case.config.interfaces:
        path = files[f"/etc/sysconfig/network-scripts/ifcfg-{iface.name}"]
        r = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert _source(path, work) == _expected_ifcfg(case.config, iface)
    assert list(work.iterdir()) == [], "sourcing an ifcfg file created files"
    assert pwned.exists() == existed, "sourcing an ifcfg file ran a command"


def test_ifcfg_injection_values_come_back_byte_for_byte(tmp_path: Path) -> None:
    case = CASE_BY_NAME["injection"]
    (iface,) = case.config.interfaces
    assert dict(iface.extra) == {**INJECTION_EXTRA, **INJECTION_SKIPPED}  # what the parser read
    content = _iface_file(_plan(case, Format.IFCFG), iface, "ifcfg-")
    path = tmp_path / "ifcfg-eth0"
    path.write_bytes(content)
    work = tmp_path / "cwd"
    work.mkdir()
    values = _source(path, work)
    for key, value in INJECTION_EXTRA.items():
        assert values[key] == value
    for key in INJECTION_SKIPPED:
        assert key not in values
        assert f"# not written, a shell variable or not an ifcfg word: {key}\n".encode() in content
    assert list(work.iterdir()) == []


ROUTE_LINE = re.compile(r"(?P<dest>\S+)(?: via (?P<via>\S+))? dev (?P<dev>\S+)(?P<onlink> onlink)?"
                        r"(?: metric (?P<metric>\d+))?")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_ifcfg_route_files_are_ip_route_arguments(case: Case) -> None:
    plan = _plan(case, Format.IFCFG)
    by_path = {f.path: f.content.decode() for f in plan.files}
    for iface in case.config.interfaces:
        for version, name in ((4, "route"), (6, "route6")):
            want = {(str(r.destination), None if r.gateway is None else str(r.gateway),
                     _offlink(r.gateway, iface), r.metric)
                    for r in iface.routes if r.version == version}
            text = by_path.get(f"/etc/sysconfig/network-scripts/{name}-{iface.name}")
            assert (text is not None) == bool(want)
            got = set()
            for line in (text or "").splitlines():
                if line.startswith("#"):
                    continue
                m = ROUTE_LINE.fullmatch(line)
                assert m, line
                dest = m["dest"] if m["dest"] != "default" else ("0.0.0.0/0" if version == 4
                                                                  else "::/0")
                assert ipaddress.ip_network(dest).version == version
                assert m["dev"] == iface.name
                got.add((dest, m["via"], bool(m["onlink"]),
                         int(m["metric"]) if m["metric"] else None))
            assert got == want
