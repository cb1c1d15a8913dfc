"""Issue 14, part 1: IPv6 on each interface (IPV6INIT, IPV6_DISABLED, IPV6_AUTOCONF, DHCPV6C),
routing with several NICs (DEFROUTE, IPV4_ROUTE_METRIC, IPV6_ROUTE_METRIC, PEERDNS), the one
default for "static IPv6 only", and exit 3 where a format cannot say a setting.

What each format writes is checked by its real consumer in test_render_consumers.py (the cases
ipv6-static-only, ipv6-modes and routing of render_cases.py) and pinned by the golden files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fwcfg_agent.errors import PayloadError
from fwcfg_agent.model import NETWORK_FORMATS, Format, Interface
from fwcfg_agent.payload import parse
from fwcfg_agent.render import render
from fwcfg_agent.render.env import Templates
from fwcfg_agent.settings import NetDev, build
from tests.agent import agent, snapshot
from tests.conftest import make_guest_root
from tests.render_cases import CASE_BY_NAME

NICS = (NetDev("ens3", "52:54:00:00:00:01"), NetDev("ens4", "52:54:00:00:00:02"))


def iface(text: str) -> Interface:
    (i,) = build([parse("opt/net", text.encode())], NICS, "eth0").config.interfaces
    return i


def error(text: str) -> PayloadError:
    with pytest.raises(PayloadError) as e:
        build([parse("opt/net", text.encode())], NICS, "eth0")
    return e.value


# --- the model --------------------------------------------------------------------------------


def test_static_ipv6_only_means_no_autoconfiguration() -> None:
    i = iface("DEVICE=ens3\nIPV6ADDR=2001:db8::5/64\n")
    assert i.ipv6_autoconf is False and not i.accept_ra and i.ipv6_init and not i.dhcp6


def test_without_ipv6_settings_the_distribution_default_stays() -> None:
    i = iface("DEVICE=ens3\nIPADDR=192.0.2.5/24\n")
    assert i.ipv6_autoconf is None and i.accept_ra  # Somlo's payload: as before


@pytest.mark.parametrize(("extra", "autoconf", "dhcp6"), [
    ("IPV6_AUTOCONF=yes", True, False),
    ("IPV6_AUTOCONF=no", False, False),
    ("DHCPV6C=yes", False, True),
    ("DHCPV6C=yes\nIPV6_AUTOCONF=yes", True, True),
    ("IPV6INIT=yes", None, False),
])
def test_ipv6_keys(extra: str, autoconf: Optional[bool], dhcp6: bool) -> None:
    i = iface(f"DEVICE=ens3\nIPADDR=192.0.2.5/24\n{extra}\n")
    assert (i.ipv6_autoconf, i.dhcp6) == (autoconf, dhcp6)


def test_ipv6init_no_and_ipv6_disabled() -> None:
    i = iface("DEVICE=ens3\nIPADDR=192.0.2.5/24\nIPV6INIT=no\n")
    assert not i.ipv6_init and not i.ipv6_disabled and i.ipv6_autoconf is False
    i = iface("DEVICE=ens3\nIPADDR=192.0.2.5/24\nIPV6_DISABLED=yes\n")
    assert i.ipv6_disabled and not i.accept_ra


@pytest.mark.parametrize(("text", "line", "key", "says"), [
    ("DEVICE=ens3\nIPV6INIT=no\nIPV6ADDR=2001:db8::5\n", 3, "IPV6ADDR", "line 2, key IPV6INIT"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5\nIPV6_DISABLED=yes\nIPV6_DEFAULTGW=fe80::1\n", 4,
     "IPV6_DEFAULTGW", "key IPV6_DISABLED disables IPv6"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5\nIPV6INIT=no\nDHCPV6C=yes\n", 4, "DHCPV6C", "IPV6INIT"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5\nIPV6INIT=no\nIPV6_AUTOCONF=yes\n", 4, "IPV6_AUTOCONF",
     "IPV6INIT"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5\nIPV6_DISABLED=yes\nROUTE1='2001:db8:1::/48 via fe80::1'\n",
     4, "ROUTE1", "IPV6_DISABLED"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5/24\nDEFROUTE=no\nGATEWAY=10.0.0.1\n", 4, "GATEWAY",
     "key DEFROUTE says this interface has no IPv4 default route"),
    ("DEVICE=ens3\nIPV6ADDR=2001:db8::5/64\nIPV6_DEFROUTE=no\nIPV6_DEFAULTGW=2001:db8::1\n", 4,
     "IPV6_DEFAULTGW", "key IPV6_DEFROUTE says this interface has no IPv6 default route"),
    ("DEVICE=ens3\nIPV6ADDR=2001:db8::5/64\nIPV6_DEFROUTE=no\nROUTE1='::/0 via 2001:db8::1'\n",
     4, "ROUTE1", "IPV6_DEFROUTE"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5/24\nDEFROUTE=no\nROUTE1='default via 10.0.0.1'\n", 4,
     "ROUTE1", "DEFROUTE"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5/24\nIPV6_AUTOCONF=maybe\n", 3, "IPV6_AUTOCONF", "yes or no"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5/24\nPEERDNS=0x1\n", 3, "PEERDNS", "yes or no"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5/24\nIPV4_ROUTE_METRIC=-1\n", 3, "IPV4_ROUTE_METRIC",
     "metric"),
    ("DEVICE=ens3\nIPADDR=10.0.0.5/24\nIPV6_ROUTE_METRIC=4294967296\n", 3,
     "IPV6_ROUTE_METRIC", "metric"),
])
def test_contradictions_and_bad_values_name_entry_line_key(text: str, line: int, key: str,
                                                           says: str) -> None:
    e = error(text)
    assert (e.entry, e.line, e.key) == ("opt/net", line, key), str(e)
    assert says in str(e), str(e)


def test_route_metric_reaches_routes_without_one_and_the_default_route() -> None:
    i = iface("DEVICE=ens3\nIPADDR=10.0.0.5/24\nGATEWAY=10.0.0.1\nIPV4_ROUTE_METRIC=200\n"
              "ROUTE1='10.2.0.0/16 via 10.0.0.254'\nROUTE2='10.3.0.0/16 via 10.0.0.254 metric 5'\n"
              "ROUTE3='2001:db8:9::/48 via fe80::1'\n")
    assert [r.metric for r in i.routes] == [200, 5, None]  # IPv6 routes: IPV6_ROUTE_METRIC
    assert i.metric4 == 200 and i.metric6 is None
    # a default ROUTEn of the same metric as GATEWAY is the same route twice
    e = error("DEVICE=ens3\nIPADDR=10.0.0.5/24\nGATEWAY=10.0.0.1\nIPV4_ROUTE_METRIC=7\n"
              "ROUTE1='default via 10.0.0.2 metric 7'\n")
    assert (e.line, e.key) == (5, "ROUTE1")


def test_two_nics_with_different_metrics_share_no_default_route() -> None:
    r = build([parse("opt/a", b"HWADDR=52:54:00:00:00:01\nIPADDR=10.0.0.5/24\n"
                               b"GATEWAY=10.0.0.1\nIPV4_ROUTE_METRIC=100\n"),
               parse("opt/b", b"HWADDR=52:54:00:00:00:02\nIPADDR=10.1.0.5/24\n"
                              b"GATEWAY=10.1.0.1\nIPV4_ROUTE_METRIC=200\n")], NICS, "eth0")
    assert not [w for w in r.warnings if "default route" in w]
    r = build([parse("opt/a", b"HWADDR=52:54:00:00:00:01\nIPADDR=10.0.0.5/24\n"
                               b"GATEWAY=10.0.0.1\n"),
               parse("opt/b", b"HWADDR=52:54:00:00:00:02\nIPADDR=10.1.0.5/24\n"
                              b"GATEWAY=10.1.0.1\n")], NICS, "eth0")
    assert [w for w in r.warnings if "default route" in w]


KEYS = ("IPV6INIT", "IPV6_DISABLED", "IPV6_AUTOCONF", "DHCPV6C", "DEFROUTE", "IPV6_DEFROUTE",
        "PEERDNS",
        "IPV4_ROUTE_METRIC", "IPV6_ROUTE_METRIC")
VALUES = st.one_of(st.sampled_from(["yes", "no", "YES", "No", "true", "0", "1", "100", "",
                                    "4294967295", "4294967296", "-1", "yes no", "y"]),
                   st.text(alphabet=st.characters(codec="ascii", exclude_characters="'\n\r\x00"),
                           max_size=12))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1),
       st.sampled_from(["IPADDR=10.0.0.5/24", "IPV6ADDR=2001:db8::5/64", "BOOTPROTO=dhcp",
                        "IPADDR=10.0.0.5/24\nGATEWAY=10.0.0.1\nIPV6_DEFAULTGW=fe80::1"]))
def test_untrusted_values_are_modelled_or_rejected_by_key(keys: dict[str, str], base: str) -> None:
    """Any value of the new keys: a model whose every format renders or refuses by entry, line
    and key (never an exception of another kind, never a value copied into a file)."""
    lines = ["DEVICE=ens3", *base.split("\n")] + [f"{k}='{v}'" for k, v in keys.items()]
    text = "\n".join(lines) + "\n"
    try:
        config = build([parse("opt/net", text.encode())], NICS, "eth0").config
    except PayloadError as e:
        assert e.entry == "opt/net" and e.key is not None and e.line is not None, str(e)
        assert lines[e.line - 1].startswith(e.key + "="), (str(e), text)
        return
    (i,) = config.interfaces
    for key in ("IPV4_ROUTE_METRIC", "IPV6_ROUTE_METRIC"):
        if key in keys:
            assert str(i.metric4 if "4" in key else i.metric6) == keys[key].lstrip("0") or (
                int(keys[key]) == 0)
    case = CASE_BY_NAME["somlo"]
    for fmt in NETWORK_FORMATS:
        try:
            plan = render(config, [fmt], case.facts, TEMPLATES)
        except PayloadError as e:
            assert e.key in keys and e.line is not None, str(e)
            assert lines[e.line - 1].startswith(e.key + "="), str(e)
            assert "cannot express" in e.reason
            continue
        for f in plan.files:
            for k, v in keys.items():
                if v and not v.isdigit() and v.lower() not in ("yes", "no", "true"):
                    assert f"'{v}'" not in f.content.decode(), (fmt, k, v)


TEMPLATES = Templates()


# --- one default, every format ---------------------------------------------------------------


def test_static_ipv6_only_says_no_slaac_in_every_format() -> None:
    """The bug of issue 14: ifcfg and NM turned SLAAC off, the others left the default."""
    case = CASE_BY_NAME["ipv6-static-only"]
    said = {}
    for fmt in NETWORK_FORMATS:
        (f, *_) = render(case.config, [fmt], case.facts, TEMPLATES).files
        said[fmt] = f.content.decode()
    assert "\nIPv6AcceptRA=no\n" in said[Format.NETWORKD]
    assert "\n      accept-ra: false\n" in said[Format.NETPLAN]
    assert "\n    accept_ra 0\n    autoconf 0\n" in said[Format.IFUPDOWN]
    assert "\n[ipv6]\nmethod=manual\n" in said[Format.NM]
    assert "\nIPV6_AUTOCONF='no'\n" in said[Format.IFCFG]


# --- exit 3 where a format cannot say it --------------------------------------------------------


@pytest.mark.parametrize(("fmt", "payload", "line", "key"), [
    ("netplan", b"DEVICE=ens3\nBOOTPROTO=dhcp\nDEFROUTE=no\nIPV6_AUTOCONF=no\n", 3,
     "DEFROUTE"),
    ("netplan", b"DEVICE=ens3\nIPADDR=10.0.0.5/24\nIPV6_DEFROUTE=no\n", 3, "IPV6_DEFROUTE"),
    ("netplan", b"DEVICE=ens3\nIPADDR=10.0.0.5/24\nPEERDNS=no\n", 3, "PEERDNS"),
    ("netplan", b"DEVICE=ens3\nIPADDR=10.0.0.5/24\nIPV6_ROUTE_METRIC=5\n", 3,
     "IPV6_ROUTE_METRIC"),
    ("netplan", b"DEVICE=ens3\nIPADDR=10.0.0.5/24\nDHCPV6C=yes\n", 3, "DHCPV6C"),
    ("ifupdown", b"DEVICE=ens3\nBOOTPROTO=dhcp\nDEFROUTE=no\nIPV6_AUTOCONF=no\n", 3,
     "DEFROUTE"),
    ("ifupdown", b"DEVICE=ens3\nBOOTPROTO=dhcp\nPEERDNS=no\n", 3, "PEERDNS"),
])
def test_a_format_that_cannot_say_it_exits_3_and_writes_nothing(
        tmp_path: Path, fmt: str, payload: bytes, line: int, key: str) -> None:
    root = make_guest_root(tmp_path / "root", {"opt/GuestInfo": b"HOSTNAME=h1\n",
                                               "opt/net": payload})
    before = snapshot(root, "etc")
    r = agent(root, "apply", "--format", "hostname", "--format", fmt)
    assert r.code == 3, r.err
    (err,) = [x for x in r.err.splitlines() if x.startswith("fwcfg-agent: error: ")]
    assert f"opt/net, line {line}, key {key}: " in err and "cannot express" in err, err
    assert snapshot(root, "etc") == before  # not even /etc/hostname
    # every other format can say it
    for other in ("networkd", "nm", "ifcfg"):
        r = agent(root, "apply", "--dry-run", "--format", other)
        assert r.code == 0, (other, r.err)


def test_defroute_is_ipv4_only_as_in_ifcfg(tmp_path: Path) -> None:
    """DEFROUTE=no on a static IPv4 NIC says nothing about IPv6 (NetworkManager's ifcfg reader
    gives it to ipv4.never-default only): every format takes it, netplan included, and the
    IPv6 default route stays the distribution's unless IPV6_DEFROUTE=no."""
    i = iface("DEVICE=ens3\nIPADDR=10.0.0.5/24\nDEFROUTE=no\n")
    assert (i.defroute, i.defroute6) == (False, True)
    i = iface("DEVICE=ens3\nIPADDR=10.0.0.5/24\nIPV6_DEFROUTE=no\nIPV6_AUTOCONF=no\n")
    assert (i.defroute, i.defroute6) == (True, False)
    root = make_guest_root(tmp_path / "root", {
        "opt/GuestInfo": b"HOSTNAME=h1\n",
        "opt/net": b"DEVICE=ens3\nIPADDR=10.0.0.5/24\nDEFROUTE=no\n"})
    for fmt in ("networkd", "netplan", "nm", "ifcfg", "ifupdown"):
        r = agent(root, "apply", "--dry-run", "--format", fmt)
        assert r.code == 0, (fmt, r.err)
