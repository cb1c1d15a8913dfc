"""`fwcfg-agent host check|args|preview`: the subcommands' options and their dispatch."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..config import AgentConfig, load
from ..errors import AgentError, ConfigError
from . import forms, names
from .check import CHANNELS, FWCFG, HostEntry, Report, check, read_entries
from .vm import VM, from_domain_xml, from_macs

if TYPE_CHECKING:
    import argparse

HOST_EPILOG = """\
exit codes:
  0  every entry is fine (warnings are on stderr)
  2  bad command line, a file that cannot be read, an output a host cannot take
  3  an entry the guest or QEMU would refuse: the message names the entry (line and key)
"""


def add_parser(sub: Any) -> None:
    """The `host` subcommand and its three subcommands, on the agent's argparse parser."""
    import argparse

    raw = argparse.RawDescriptionHelpFormatter
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("entries", nargs="+", metavar="NAME=FILE",
                        help="an fw_cfg entry: its name (opt/...) and the payload file")
    common.add_argument("--agent-conf", type=Path, metavar="FILE",
                        help="the guest's agent.conf (INCLUDE, EXCLUDE, MAX_ENTRY_SIZE, "
                        "DEFAULT_INTERFACE); default: the agent's defaults")
    common.add_argument("--channel", choices=CHANNELS, default=FWCFG,
                        help="fw_cfg entries (default) or SMBIOS OEM strings")
    vm = argparse.ArgumentParser(add_help=False)
    which = vm.add_mutually_exclusive_group()
    which.add_argument("--domain-xml", type=Path, metavar="FILE",
                       help="the VM's libvirt domain (virsh dumpxml): its NICs and machine type")
    which.add_argument("--mac", action="append", default=[], metavar="MAC",
                       help="a NIC of the VM, in the guest's order (repeatable)")
    vm.add_argument("--machine", metavar="TYPE",
                    help="QEMU machine type for the slot budget: q35 (default), pc, "
                    "pc-q35-*, pc-i440fx-* (default: the domain's, with --domain-xml)")

    h = sub.add_parser("host", help="on the VM host: check payloads, print what a host needs",
                       description="The host half: check entries before the VM starts and "
                       "print the arguments or XML each host needs.")
    hs = h.add_subparsers(dest="host_command", metavar="SUBCOMMAND")
    hs.required = True
    hs.add_parser("check", parents=[common, vm], epilog=HOST_EPILOG, formatter_class=raw,
                  help="check entries as the guest and QEMU will")
    a = hs.add_parser("args", parents=[common, vm], epilog=HOST_EPILOG, formatter_class=raw,
                      help="print what a host needs to pass the entries")
    a.add_argument("--for", dest="host", choices=forms.HOSTS, required=True)
    a.add_argument("--host-dir", type=Path, metavar="DIR",
                   help="the directory the files will be in on the VM host (default: where "
                   "they are now)")
    a.add_argument("--vmid", type=int, metavar="N", help="Proxmox: the VM's number")
    a.add_argument("--instance", metavar="NAME", help="Incus: the VM's name")
    a.add_argument("--smbios-files", type=Path, metavar="DIR",
                   help="QEMU and Proxmox with --channel smbios: write each OEM string to a "
                   "file DIR/NAME.oem and print -smbios type=11,path=FILE (with --host-dir: "
                   "the directory the files will be in on the VM host)")
    p = hs.add_parser("preview", parents=[common, vm], epilog=HOST_EPILOG, formatter_class=raw,
                      help="show the files each kind of guest would write")
    from .preview import DISTROS

    p.add_argument("--distro", action="append", choices=sorted(DISTROS), metavar="DISTRO",
                   help=f"one of {', '.join(sorted(DISTROS))} (repeatable; default: all)")


def _say(kind: str, lines: list[str]) -> None:
    for line in lines:
        sys.stderr.write(f"fwcfg-agent: {kind}: {line}\n")


def _vm(args: Any) -> Optional[VM]:
    if args.domain_xml is not None:
        return from_domain_xml(args.domain_xml)
    return from_macs(args.mac) if args.mac else None


def _checked(args: Any) -> tuple[Report, Optional[VM], AgentConfig]:
    config = load(args.agent_conf, required=True) if args.agent_conf else AgentConfig()
    vm = _vm(args)
    if args.machine:
        machine, origin = args.machine, "--machine"
    elif vm is not None and vm.machine:
        machine = vm.machine
        origin = f"{args.domain_xml}: <os><type machine=...> (give --machine to override)"
    else:
        machine, origin = "q35", "--machine"
    try:
        budget = names.budget(machine)
    except ValueError as e:
        raise ConfigError(f"{origin}: {e}") from None
    entries = read_entries(args.entries, config)
    report = check(entries, config, default_conf=args.agent_conf is None, vm=vm,
                   budget=budget, channel=args.channel)
    _say("error", report.errors)
    _say("warning", report.warnings)
    return report, vm, config


def _items(entries: tuple[HostEntry, ...], host_dir: Optional[Path]) -> list[forms.Item]:
    if host_dir is not None and not host_dir.is_absolute():
        raise ConfigError(f"--host-dir {host_dir}: must be an absolute path")
    return [forms.Item(e.name, str(host_dir / e.path.name) if host_dir else str(e.path),
                       e.data or b"") for e in entries]


def run(args: Any) -> int:
    report, vm, _config = _checked(args)
    if report.errors:
        return report.exit_code
    if args.host_command == "check":
        for note in report.notes:
            print(note)
        print(f"ok: {len(report.entries)} entr{'y' if len(report.entries) == 1 else 'ies'}, "
              f"channel {args.channel}")
        return 0
    if args.host_command == "args":
        domain = None
        if args.host == "libvirt" and args.domain_xml is not None:
            try:
                domain = (args.domain_xml.read_text(), str(args.domain_xml))
            except (OSError, UnicodeDecodeError) as e:
                raise ConfigError(f"{args.domain_xml}: {e}") from None
        items = _items(report.entries, args.host_dir)
        oem_dir = None
        if args.smbios_files is not None:
            oem_dir = str(args.host_dir or args.smbios_files.absolute())
        text = forms.render(args.host, items, args.channel, vmid=args.vmid, domain=domain,
                            oem_dir=oem_dir, instance=args.instance)
        if args.smbios_files is not None:
            forms.write_oem_files(items, args.smbios_files)
        _say("note", forms.notes(args.host, args.channel))
        sys.stdout.write(text)
        return 0
    from .preview import DISTROS, dry_run

    worst = 0
    for name in args.distro or sorted(DISTROS):
        distro = DISTROS[name]
        code, text = dry_run(distro, report.entries, vm.macs if vm else (),
                             agent_conf=args.agent_conf)
        sys.stdout.write(f"=== {name}: {distro.what}\n{text}")
        worst = max(worst, code)
    return worst


def main(args: argparse.Namespace) -> int:
    """Run a `host` subcommand; errors become one line on stderr and an exit code."""
    try:
        return run(args)
    except AgentError as e:
        if getattr(args, "debug", False):
            raise
        sys.stderr.write(f"fwcfg-agent: error: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
