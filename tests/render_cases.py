"""Named HostConfig cases for the render tests (golden files and real consumers).

Each case is built the way the agent builds it: payload bytes through `payload.parse`, then
`settings.build` with the guest's NICs, so the values the templates see are exactly the parser's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from fwcfg_agent.facts import Facts
from fwcfg_agent.model import NETWORK_FORMATS, Format, HostConfig
from fwcfg_agent.payload import parse
from fwcfg_agent.settings import NetDev, build

DEFAULT_INTERFACE = "eth0"


@dataclass(frozen=True)
class Case:
    name: str
    entries: tuple[tuple[str, bytes], ...]
    nics: tuple[tuple[str, str], ...]
    description: str = ""

    @cached_property
    def config(self) -> HostConfig:
        payloads = [parse(name, data) for name, data in sorted(self.entries)]
        netdevs = [NetDev(name, mac) for name, mac in self.nics]
        return build(payloads, netdevs, DEFAULT_INTERFACE).config

    @property
    def facts(self) -> Facts:
        return Facts(
            os_release={"ID": "debian", "VERSION_ID": "12"},
            netdevs=tuple(NetDev(name, mac) for name, mac in self.nics),
            hosts=None,
            installed=frozenset(),
            enabled=frozenset(),
        )


# The values the injection case's unknown keys carry, as the parser must return them: the
# consumer tests check that a shell sourcing the ifcfg file reads back exactly these bytes.
INJECTION_EXTRA: dict[str, str] = {
    "ZONE": "$(touch /tmp/pwned)",
    "NM_CONTROLLED": "`touch pwned-backtick`",
    "X_SEMICOLON": "yes; touch pwned-semicolon",
    "X_QUOTES": "it's \"quoted\" '' \"\"",
    "X_MIXED": "a\"b\\c$d`e'f $(id) ${HOME} !x *",
    "X_SPACES": "  leading and trailing  ",
    "X_EMPTY": "",
}
# Unknown keys the ifcfg template must not write as assignments (shell variables, lower case).
INJECTION_SKIPPED: dict[str, str] = {
    "PATH": "/tmp/evil",
    "IFS": "x",
    "BASH_ENV": "/tmp/evil.sh",
    "lower_case": "x",
}

_INJECTION_PAYLOAD = b"""\
# Everything below is data: a shell must never run any of it.
DEVICE=eth0
IPADDR=10.0.0.5/24
ZONE='$(touch /tmp/pwned)'
NM_CONTROLLED='`touch pwned-backtick`'
X_SEMICOLON='yes; touch pwned-semicolon'
X_QUOTES='it'"'"'s "quoted" '"''"' ""'
X_MIXED="a\\"b\\\\c\\$d\\`e'f \\$(id) \\${HOME} !x *"
X_SPACES='  leading and trailing  '
X_EMPTY=
PATH=/tmp/evil
IFS=x
BASH_ENV=/tmp/evil.sh
lower_case=x
"""

CASES: tuple[Case, ...] = (
    Case(
        "somlo",
        (("opt/GuestInfo", b"HOSTNAME=guest1\nIPADDR=192.168.122.50\n"),),
        (("ens3", "52:54:00:12:34:56"),),
        "Somlo's example: a hostname and one IPv4 address for the first NIC",
    ),
    Case(
        "full",
        (
            ("opt/00-host", b"HOSTNAME=web1\nDOMAIN=example.com\nDNS1=192.0.2.53\n"
                            b"DNS2=2001:db8::53\nSEARCH='corp.example.com lab.example.com'\n"),
            ("opt/10-lan", b"HWADDR=52:54:00:aa:00:01\nIPADDR=192.0.2.10\nPREFIX=24\n"
                           b"IPADDR1=198.51.100.10/25\nGATEWAY=192.0.2.1\n"
                           b"IPV6ADDR=2001:db8:0:1::10/64\n"
                           b"IPV6ADDR_SECONDARIES='2001:db8:0:2::10/64 2001:db8:0:3::10/64'\n"
                           b"IPV6_DEFAULTGW=2001:db8:0:1::1\n"
                           b"ROUTE1='10.0.0.0/8 via 192.0.2.254 metric 100'\n"
                           b"ROUTE2='2001:db8:100::/48 via 2001:db8:0:1::fe metric 200'\n"
                           b"ROUTE3='203.0.113.0/24'\n"
                           b"MTU=9000\n"),
            ("opt/20-backend", b"HWADDR=52:54:00:aa:00:02\nIPADDR=172.16.0.10\n"
                               b"NETMASK=255.255.0.0\nROUTE1='172.17.0.0/16 via 172.16.0.1'\n"
                               b"MTU=1450\n"),
        ),
        (("ens3", "52:54:00:aa:00:01"), ("ens4", "52:54:00:aa:00:02")),
        "FQDN, two DNS servers, search domains, two NICs by MAC, IPv4 and IPv6, routes, MTU",
    ),
    Case(
        "dhcp",
        (
            ("opt/net", b"HOSTNAME=dyn1\nDNS1=9.9.9.9\nSEARCH=example.org\n"
                        b"DEVICE=eth0\nBOOTPROTO=dhcp\nMTU=1400\n"),
            ("opt/net2", b"DEVICE=eth1\nBOOTPROTO=none\n"),
        ),
        (("eth0", "52:54:00:00:00:10"), ("eth1", "52:54:00:00:00:11")),
        "DHCP on one NIC, a bare link on another; no static addresses: DNS goes to the DHCP NIC",
    ),
    Case(
        "offlink",
        (
            ("opt/10-wan", b"HOSTNAME=ovh1\nDNS1=213.186.33.99\nDNS2=2001:41d0:3:163::1\n"
                           b"DEVICE=eth0\nIPADDR=203.0.113.10/32\nGATEWAY=100.64.0.1\n"
                           b"IPV6ADDR=2001:db8:1:2::10/64\n"
                           b"IPV6_DEFAULTGW=2001:db8:1:ff:ff:ff:ff:ff\n"
                           b"ROUTE1='10.0.0.0/8 via 100.64.0.1 metric 50'\n"),
            ("opt/20-mgmt", b"DEVICE=eth1\nBOOTPROTO=dhcp\n"),
        ),
        (("eth0", "52:54:00:00:00:20"), ("eth1", "52:54:00:00:00:21")),
        "gateways outside every subnet (a /32 and another /64); DHCP NIC without the DNS",
    ),
    Case(
        "linklocal",
        (("opt/v6", "DEVICE=eth0\nIPADDR=10.0.0.5/24\nIPV6ADDR=2001:db8:7::10/64\n"
                    "IPV6_DEFAULTGW='fe80::1%eth0'\n"
                    "ROUTE1='2001:db8:8::/48 via fe80::2%eth0 metric 20'\n"
                    "ROUTE2='10.9.0.0/16 via 10.0.0.1'\nDNS1=2001:db8:7::53\n"
                    "ZONE='z\u00f6ne \u2713 \"quoted\" \U0001f600'\n".encode()),),
        (("eth0", "52:54:00:00:00:40"),),
        "link-local IPv6 gateways given with their scope ID, which the files do not need (they "
        "are the interface's own) and most readers refuse; a non-ASCII pass-through value",
    ),
    Case(
        "ipv6-static-only",
        (("opt/v6only", b"DEVICE=eth0\nIPV6ADDR=2001:db8:5::10/64\n"
                        b"IPV6_DEFAULTGW=2001:db8:5::1\n"),),
        (("eth0", "52:54:00:00:00:50"),),
        "only a static IPv6 address: the one default, no SLAAC and no router advertisements, "
        "said the same way in every format (issue 14)",
    ),
    Case(
        "ipv6-modes",
        (
            ("opt/10-slaac", b"DEVICE=eth0\nIPADDR=192.0.2.20/24\n"
                             b"IPV6ADDR=2001:db8:6::10/64\nIPV6_AUTOCONF=yes\n"),
            ("opt/20-noinit", b"DEVICE=eth1\nIPADDR=192.0.2.21/24\nIPV6INIT=no\n"),
            ("opt/30-disabled", b"DEVICE=eth2\nIPADDR=192.0.2.22/24\nIPV6_DISABLED=yes\n"),
            ("opt/40-noautoconf", b"HWADDR=52:54:00:00:00:63\nIPADDR=192.0.2.23/24\n"
                                  b"IPV6_AUTOCONF=no\n"),
            ("opt/50-dhcpv6", b"DEVICE=eth4\nBOOTPROTO=dhcp\nDHCPV6C=yes\n"
                              b"IPV6_AUTOCONF=yes\n"),
        ),
        (("eth0", "52:54:00:00:00:60"), ("eth1", "52:54:00:00:00:61"),
         ("eth2", "52:54:00:00:00:62"), ("eth3", "52:54:00:00:00:63"),
         ("eth4", "52:54:00:00:00:64")),
        "IPv6 per interface: SLAAC beside a static address, IPV6INIT=no, IPV6_DISABLED=yes, "
        "IPV6_AUTOCONF=no without addresses, DHCPv6 with SLAAC",
    ),
    Case(
        "routing",
        (
            ("opt/00-host", b"HOSTNAME=multi\nDNS1=192.0.2.53\n"),
            ("opt/10-front", b"HWADDR=52:54:00:00:00:70\nIPADDR=192.0.2.30/24\n"
                             b"GATEWAY=192.0.2.1\nIPV4_ROUTE_METRIC=100\n"
                             b"IPV6ADDR=2001:db8:7::30/64\nIPV6_DEFAULTGW=2001:db8:7::1\n"
                             b"IPV6_ROUTE_METRIC=100\n"),
            ("opt/20-back", b"HWADDR=52:54:00:00:00:71\nIPADDR=10.1.0.30/16\nDEFROUTE=no\n"
                            b"IPV6_DEFROUTE=no\n"
                            b"PEERDNS=no\nIPV6_AUTOCONF=no\nIPV4_ROUTE_METRIC=200\n"
                            b"ROUTE1='10.2.0.0/16 via 10.1.0.1'\n"
                            b"ROUTE2='10.3.0.0/16 via 10.1.0.1 metric 50'\n"),
            ("opt/30-dhcp", b"DEVICE=eth2\nBOOTPROTO=dhcp\nIPV4_ROUTE_METRIC=300\n"
                            b"IPV6_AUTOCONF=no\n"),
        ),
        (("eth0", "52:54:00:00:00:70"), ("eth1", "52:54:00:00:00:71"),
         ("eth2", "52:54:00:00:00:72")),
        "several NICs: metrics on the default routes, on routes without one and on DHCP's, a "
        "back NIC with DEFROUTE=no and PEERDNS=no",
    ),
    Case(
        "bond-vlan-bridge",
        (
            ("opt/00-host", b"HOSTNAME=shapes\nDNS1=192.0.2.53\n"),
            ("opt/10-bond", b"DEVICE=bond0\nTYPE=Bond\nBONDING_MASTER=yes\n"
                            b"BONDING_OPTS='mode=active-backup miimon=100 primary=ens3'\n"
                            b"BOOTPROTO=none\n"),
            ("opt/11-bond-a", b"HWADDR=52:54:00:00:00:80\nMASTER=bond0\nSLAVE=yes\n"),
            ("opt/12-bond-b", b"HWADDR=52:54:00:00:00:81\nMASTER=bond0\nSLAVE=yes\n"),
            ("opt/20-vlan", b"DEVICE=bond0.100\nVLAN=yes\nIPADDR=192.0.2.10/24\n"
                            b"GATEWAY=192.0.2.1\nIPV6ADDR=2001:db8:80::10/64\n"),
            ("opt/30-bridge", b"DEVICE=br0\nTYPE=Bridge\nSTP=off\nDELAY=0\n"
                              b"IPADDR=198.51.100.5/24\nIPV6_AUTOCONF=no\n"),
            ("opt/31-port", b"DEVICE=ens5\nBRIDGE=br0\n"),
        ),
        (("ens3", "52:54:00:00:00:80"), ("ens4", "52:54:00:00:00:81"),
         ("ens5", "52:54:00:00:00:82")),
        "the issue's guest: an active-backup bond of two NICs (by MAC) with a VLAN on top "
        "carrying a static address, a bridge over the third NIC, IPV6_AUTOCONF=no on one link",
    ),
    Case(
        "vlans",
        (
            ("opt/10-nic", b"DEVICE=eth0\nIPADDR=10.0.0.5/24\nMTU=9000\n"),
            ("opt/20-vlan", b"DEVICE=eth0.100\nTYPE=Vlan\nIPADDR=10.100.0.5/24\nMTU=1500\n"),
            ("opt/30-vlan", b"DEVICE=vlan200\nVLAN=yes\nPHYSDEV=eth1\nVLAN_ID=200\n"
                            b"BOOTPROTO=dhcp\n"),
        ),
        (("eth0", "52:54:00:00:00:90"), ("eth1", "52:54:00:00:00:91")),
        "a VLAN named PARENT.ID on an addressed NIC, one by PHYSDEV and VLAN_ID on a NIC no "
        "entry configures (a bare link for it)",
    ),
    Case(
        "injection",
        (("opt/evil", _INJECTION_PAYLOAD),),
        (("eth0", "52:54:00:00:00:30"),),
        "unknown keys whose values are shell code; all must land as inert data",
    ),
)
CASE_BY_NAME = {c.name: c for c in CASES}
FORMATS: tuple[Format, ...] = NETWORK_FORMATS
