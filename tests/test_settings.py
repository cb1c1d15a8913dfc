from __future__ import annotations

import ipaddress

import pytest

from fwcfg_agent.errors import PayloadError
from fwcfg_agent.model import BootProto
from fwcfg_agent.payload import parse
from fwcfg_agent.settings import NetDev, Result, build

NICS = (NetDev("ens3", "52:54:00:00:00:01"), NetDev("ens4", "52:54:00:00:00:02"))


def run(*entries: tuple[str, str], nics: tuple[NetDev, ...] = NICS) -> Result:
    return build([parse(n, t.encode()) for n, t in entries], nics, "eth0")


def test_somlo_goes_to_first_ethernet_nic() -> None:
    r = run(("opt/GuestInfo", "HOSTNAME=guest1\nIPADDR=10.0.2.15\n"))
    (iface,) = r.config.interfaces
    assert r.config.hostname == "guest1"
    assert iface.name == "ens3" and iface.mac == "52:54:00:00:00:01"  # matched by MAC
    assert iface.addresses == (ipaddress.ip_interface("10.0.2.15/24"),)
    assert any("using /24" in n for n in r.notices)


def test_somlo_without_visible_nics_uses_default_name() -> None:
    r = run(("opt/GuestInfo", "HOSTNAME=guest1\nIPADDR=10.0.2.15\n"), nics=())
    assert r.config.interfaces[0].name == "eth0"


def test_two_nics_by_mac_get_kernel_names() -> None:
    r = run(("opt/net0", "HWADDR=52:54:00:00:00:02\nIPADDR=10.0.0.2\nPREFIX=8\n"),
            ("opt/net1", "HWADDR=52-54-00-00-00-01\nIPADDR=192.168.1.2\nNETMASK=255.255.255.0\n"
             "GATEWAY=192.168.1.1\n"))
    by_name = {i.name: i for i in r.config.interfaces}
    assert by_name["ens4"].mac == "52:54:00:00:00:02"
    assert str(by_name["ens4"].addresses[0]) == "10.0.0.2/8"
    assert by_name["ens3"].mac == "52:54:00:00:00:01"
    assert by_name["ens3"].gateway == ipaddress.ip_address("192.168.1.1")


def test_unseen_mac_gets_predictable_name_and_warning() -> None:
    r = run(("opt/n", "HWADDR=52:54:00:aa:bb:cc\nIPADDR=10.0.0.2/8\n"))
    assert r.config.interfaces[0].name == "enx525400aabbcc"
    assert any("no NIC with HWADDR" in w for w in r.warnings)


def test_full_vocabulary() -> None:
    r = run(("opt/host", "HOSTNAME=web1\nDOMAIN='example.com corp.example'\nDNS1=192.0.2.53\n"
             "DNS2=2001:db8::53\nSEARCH=lab.example\n"),
            ("opt/net", "DEVICE=ens3\nBOOTPROTO=none\nIPADDR=192.0.2.10\nPREFIX=24\n"
             "IPADDR1=192.0.2.11\nNETMASK1=255.255.255.0\nGATEWAY=192.0.2.1\nMTU=9000\n"
             "IPV6ADDR=2001:db8::10/64\nIPV6ADDR_SECONDARIES='2001:db8::11/64 2001:db8:1::1'\n"
             "IPV6_DEFAULTGW=2001:db8::1\nROUTE1='10.0.0.0/8 via 192.0.2.254 metric 10'\n"
             "ROUTE2='2001:db8:9::/48 via 2001:db8::fe'\nONBOOT=yes\nZONE=public\n"))
    c = r.config
    assert c.fqdn == "web1.example.com" and c.short_hostname == "web1"
    assert c.search == ("example.com", "corp.example", "lab.example")
    assert [str(d) for d in c.dns] == ["192.0.2.53", "2001:db8::53"]
    (i,) = c.interfaces
    assert i.bootproto is BootProto.NONE and i.mtu == 9000
    assert [str(a) for a in i.addresses] == ["192.0.2.10/24", "192.0.2.11/24", "2001:db8::10/64",
                                             "2001:db8::11/64", "2001:db8:1::1/64"]
    assert str(i.gateway6) == "2001:db8::1"
    assert [(str(x.destination), str(x.gateway), x.metric) for x in i.routes] == [
        ("10.0.0.0/8", "192.0.2.254", 10), ("2001:db8:9::/48", "2001:db8::fe", None)]
    assert i.extra == (("ZONE", "public"),)
    assert any("ZONE" in w for w in r.warnings)


def test_later_entry_overrides_and_says_so() -> None:
    r = run(("opt/a", "HOSTNAME=first\n"), ("opt/b", "\nHOSTNAME=second\n"))
    assert r.config.hostname == "second"
    assert "opt/b, line 2: HOSTNAME overrides the value from opt/a, line 1" in r.notices


def test_entries_for_default_nic_merge() -> None:
    r = run(("opt/GuestInfo", "HOSTNAME=g\nIPADDR=10.0.0.5\n"),
            ("opt/GuestNet", "PREFIX=16\nGATEWAY=10.0.0.1\n"))
    (i,) = r.config.interfaces
    assert str(i.addresses[0]) == "10.0.0.5/16" and str(i.gateway) == "10.0.0.1"


def test_dhcp_needs_no_address() -> None:
    r = run(("opt/n", "DEVICE=ens4\nBOOTPROTO=dhcp\n"))
    assert r.config.interfaces[0].dhcp


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"),
    [
        ("HOSTNAME=-bad\n", 1, "HOSTNAME", "RFC 1123"),
        ("HOSTNAME=" + "a" * 64 + "\n", 1, "HOSTNAME", "at most 63"),
        ("HOSTNAME=" + ".".join(["a" * 60] * 5) + "\n", 1, "HOSTNAME", "at most 253"),
        ("HOSTNAME='a b'\n", 1, "HOSTNAME", "RFC 1123"),
        ("HOSTNAME=a..b\n", 1, "HOSTNAME", "empty label"),
        ("IPADDR=10.0.0.300\n", 1, "IPADDR", "not an IP address"),
        ("IPADDR=2001:db8::1\n", 1, "IPADDR", "not an IPv4"),
        ("IPADDR=10.0.0.5\nPREFIX=33\n", 2, "PREFIX", "prefix length"),
        ("IPADDR=10.0.0.5\nNETMASK=255.0.255.0\n", 2, "NETMASK", "contiguous"),
        ("IPADDR=10.0.0.5\nPREFIX=16\nNETMASK=255.255.255.0\n", 3, "NETMASK",
         "says /24 but PREFIX says /16"),
        ("IPADDR=10.0.0.5/8\nPREFIX=16\n", 2, "PREFIX", "says /16 but IPADDR says /8"),
        ("IPADDR=10.0.0.0\nPREFIX=24\n", 1, "IPADDR", "network address"),
        ("IPADDR=10.0.0.255\nPREFIX=24\n", 1, "IPADDR", "broadcast address"),
        ("HWADDR=52:54:00:00:00\nIPADDR=10.0.0.5\n", 1, "HWADDR", "not a MAC"),
        ("HWADDR=01:00:5e:00:00:01\nIPADDR=10.0.0.5\n", 1, "HWADDR", "multicast"),
        ("IPADDR=10.0.0.5\nMTU=67\n", 2, "MTU", "not an MTU"),
        ("IPADDR=10.0.0.5\nMTU=70000\n", 2, "MTU", "not an MTU"),
        ("IPV6ADDR=2001:db8::5/64\nMTU=1000\n", 2, "MTU", "IPv6's minimum"),
        ("DEVICE=eth0/x\nIPADDR=10.0.0.5\n", 1, "DEVICE", "not an interface name"),
        ("DEVICE=averyveryverylongname\nIPADDR=10.0.0.5\n", 1, "DEVICE",
         "not an interface name"),
        ("IPADDR=10.0.0.5\nGATEWAY=2001:db8::1\n", 2, "GATEWAY", "not an IPv4"),
        ("IPADDR=10.0.0.5\nBOOTPROTO=bootp\n", 2, "BOOTPROTO", "static, dhcp, none"),
        ("DNS1=8.8.8\n", 1, "DNS1", "not an IP address"),
        ("IPADDR=10.0.0.5\nROUTE1='10.1.0.0/16 via 2001:db8::1'\n", 2, "ROUTE1", "family"),
        ("IPADDR=10.0.0.5\nROUTE1='10.1.0.1/16 via 10.0.0.1'\n", 2, "ROUTE1", "host bits"),
        ("IPADDR=10.0.0.5\nROUTE1='10.1.0.0/16 gw 10.0.0.1'\n", 2, "ROUTE1", "expected 'via"),
        ("IPADDR=10.0.0.5\nPREFIX1=8\n", 2, "PREFIX1", "no IPADDR1"),
        ("IPV6ADDR=2001:db8::5/129\n", 1, "IPV6ADDR", "prefix length"),
        ("DOMAIN=exa_mple.com\n", 1, "DOMAIN", "RFC 1123"),
        ("DEVICE=ens3\nTYPE=Bridge\nIPADDR=10.0.0.5\n", 2, "TYPE", "only Ethernet"),
    ],
)
def test_invalid_values_name_entry_line_key(text: str, line: int, key: str, reason: str) -> None:
    with pytest.raises(PayloadError) as info:
        run(("opt/GuestInfo", text))
    assert (info.value.entry, info.value.line, info.value.key) == ("opt/GuestInfo", line, key)
    assert reason in info.value.reason


def test_static_without_address_is_an_error() -> None:
    with pytest.raises(PayloadError, match="static .BOOTPROTO. but has no IPADDR") as e:
        run(("opt/n", "DEVICE=ens3\nMTU=1500\n"))
    assert (e.value.entry, e.value.line, e.value.key) == ("opt/n", 1, "DEVICE")


def test_same_nic_picked_two_ways_is_an_error() -> None:
    with pytest.raises(PayloadError, match="also configured by"):
        run(("opt/a", "HWADDR=52:54:00:00:00:01\nIPADDR=10.0.0.5\n"),
            ("opt/b", "DEVICE=ens3\nIPADDR=10.0.0.6\n"))


def test_off_link_gateway_warns() -> None:
    r = run(("opt/n", "IPADDR=10.0.0.5/24\nGATEWAY=172.16.0.1\n"))
    assert any("not in any of" in w for w in r.warnings)


def test_default_nic_skips_nics_picked_by_mac() -> None:
    r = run(("opt/GuestInfo", "IPADDR=10.0.0.5\n"),
            ("opt/net", "HWADDR=52:54:00:00:00:01\nIPADDR=10.1.0.5\n"))
    assert {i.name: str(i.addresses[0]) for i in r.config.interfaces} == {
        "ens3": "10.1.0.5/24", "ens4": "10.0.0.5/24"}
