"""Command line: `fwcfg-agent apply|diff|show|journal|rollback|host`. The only place errors become
exit codes; tracebacks only with --debug."""

import sys

from . import __version__, fast

TYPE_CHECKING = False  # typing is not loaded at start-up: the fast path does without it
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, Optional

EXIT_CODES = """\
exit codes:
  0  done: files applied, nothing to change, or no entries in any channel (nothing to do)
  1  `diff` found changes; for other commands an unexpected internal error
  2  bad command line or agent.conf
  3  invalid input, nothing was written: a payload (the error names the entry, line and key),
     an OEM string or credential for the agent with a bad name or base64, a name in two
     channels; `host`: an entry the guest or the VM host would refuse
  4  an input could not be read: fw_cfg (device, sysfs tree, permissions, a malformed file
     directory), a malformed SMBIOS table, an unreadable credential
  5  another run holds the lock
  6  the journal, state or a backup is missing or damaged (rollback)
  7  the root cannot be used: a path is of the wrong type, read-only, or its disk is full
"""


def _parser() -> "argparse.ArgumentParser":
    import argparse

    from .formats import Format

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default="/", metavar="DIR",
                        help="work on the tree at DIR: /sys input, /etc output, state (default /)")
    common.add_argument("--config", metavar="FILE",
                        help="agent.conf to use (default ROOT/etc/fwcfg-agent/agent.conf)")
    common.add_argument("--debug", action="store_true", help="log more; show tracebacks")
    reading = argparse.ArgumentParser(add_help=False)
    reading.add_argument("--source", choices=("auto", "sysfs", "raw"),
                         help="read fw_cfg through sysfs, the raw device, or sysfs then raw")
    reading.add_argument("--format", dest="formats", action="append", metavar="F",
                         choices=[f.value for f in Format],
                         help="write this format (repeatable); replaces detection and FORMATS=")

    p = argparse.ArgumentParser(
        prog="fwcfg-agent",
        description="Configure hostname and static network settings from QEMU fw_cfg entries.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"fwcfg-agent {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    a = sub.add_parser("apply", parents=[common, reading], epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="make the files match the fw_cfg entries (what the unit runs)")
    a.add_argument("--dry-run", action="store_true",
                   help="print every file that would be written; change nothing")
    sub.add_parser("diff", parents=[common, reading], epilog=EXIT_CODES,
                   formatter_class=argparse.RawDescriptionHelpFormatter,
                   help="unified diff of what apply would change (exit 1 if anything)")
    s = sub.add_parser("show", parents=[common, reading], epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="the entries found and the settings parsed from them")
    s.add_argument("--json", action="store_true")
    j = sub.add_parser("journal", parents=[common], epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="every run the agent recorded, with the files it touched")
    j.add_argument("--json", action="store_true")
    r = sub.add_parser("rollback", parents=[common], epilog=EXIT_CODES,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="undo RUN and every later run (default: the last run that changed "
                       "files), restoring the files byte for byte")
    r.add_argument("run", nargs="?", metavar="RUN", help="a run id (or its unique prefix)")
    from .host.cli import add_parser as add_host_parser

    add_host_parser(sub)
    return p


def _unit_args(argv: "Sequence[str]") -> "Optional[Any]":
    """The parsed command line the unit's `apply [--root DIR]` gives, without argparse: with
    gettext, locale and shutil, argparse costs more than everything else a first boot loads.
    (The class is made here, on the full path only: a class costs the fast path to create.)"""
    root = fast.apply_root(argv)
    if root is None:
        return None

    class Args:
        command = "apply"
        config = None
        debug = False
        source = None
        formats = None
        dry_run = False

        def __init__(self, root: str) -> None:
            self.root = root

    return Args(root)


def main(argv: "Optional[Sequence[str]]" = None) -> int:
    """The command line: the fast path first (fast.main), then, if it cannot finish, full_run."""
    return fast.main(argv)


def full_run(argv: "Sequence[str]", done: "fast.Result") -> int:
    """The full path, once the fast path (`done`) could not finish; `done.why` says why."""
    _terminate_on_sigterm()
    from .errors import AgentError

    args: Any = _unit_args(argv) or _parser().parse_args(argv)
    if args.command == "host":  # the host half: no root, no lock, no journal
        from .host.cli import main as host_main

        return host_main(args)

    from .formats import Format
    from .log import MSG_INVALID, Log

    log = Log(debug=args.debug)
    try:
        from . import commands

        opts = commands.Options(
            root=commands.root_path(args.root), config_file=args.config,
            source=getattr(args, "source", None),
            formats=[Format(f) for f in args.formats] if getattr(args, "formats", None) else None,
            dry_run=getattr(args, "dry_run", False), log=log, why=done.why, waiter=done.waiter,
        )
        if args.command == "apply":
            return commands.cmd_apply(opts)
        if args.command == "diff":
            return commands.cmd_diff(opts)
        if args.command == "show":
            return commands.cmd_show(opts, args.json)
        from . import history

        if args.command == "journal":
            return history.cmd_journal(opts, args.json)
        return history.cmd_rollback(opts, args.run)
    except AgentError as e:
        if args.debug:
            raise
        log.error(str(e), MSG_INVALID if e.exit_code == 3 else None)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except OSError as e:  # a path the checks above did not name: still one line, code 7
        if args.debug:
            raise
        where = f"{e.filename}: " if e.filename else ""
        log.error(f"{where}{e.strerror or e} (the root cannot be used)")
        return 7
    except Exception as e:
        if args.debug:
            raise
        log.error(f"internal error: {type(e).__name__}: {e} (run with --debug for details)")
        return 1
    finally:
        log.close()


def _terminate_on_sigterm() -> None:
    """systemd's start timeout sends SIGTERM: unwind (finally blocks rebind the fw_cfg driver
    and release the lock) instead of dying on the spot."""
    import _signal  # type: ignore[import-not-found]  # signal loads enum; this is builtin

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    _signal.signal(_signal.SIGTERM, handler)


if __name__ == "__main__":
    sys.exit(main())
