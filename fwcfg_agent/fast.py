"""The boot's fast path: replay the last full run's record, or hand over to the full path.

The full path records every read it makes under the root (rootfs.Reader), and what it wrote in
place of the files it manages; that record is the snapshot (snapshot.py). At the next boot this
module replays it: every item equal means the full path would change nothing, and the run ends
with the same journal record and log line the full path writes for "nothing changed", without
loading jinja2, pyudev, systemd-python, argparse, json or the model. Any difference, any doubt,
any option on the command line: the full path runs, and is told why.

`main` is the command line's entry (the launcher's, and cli.main's): the full path's code
(cli.py, argparse) is loaded only when this path cannot finish.

Only builtin modules, and this package's modules that import only those, are loaded here.
"""

import os
import sys

from . import __version__
from .device import device_present
from .log import MSG_NOTHING, MSG_UNCHANGED, Log

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any, Optional

    from .errors import AgentError
    from .nics import Waiter

NO_DEVICE_MESSAGE = ("no fw_cfg device (no ACPI QEMU0002 or DT fw-cfg node), and no SMBIOS OEM "
                     "string or system credential for fwcfg-agent: nothing to do")
NO_ENTRIES_MESSAGE = ("no fw_cfg entries for fwcfg-agent ({source}): nothing to do, files left "
                      "as they are")


class Result:
    """What the fast path did: `code` is the exit code, or None when the full path must run;
    then `why` says why, and `waiter` carries the NIC wait the full path need not repeat."""

    __slots__ = ("code", "waiter", "why")

    def __init__(self, code: "Optional[int]", why: str, waiter: "Optional[Waiter]") -> None:
        self.code = code
        self.why = why
        self.waiter = waiter


def agent_error() -> "type[AgentError]":
    """errors.AgentError, for an except clause: Python evaluates a clause's expression only when
    an exception reaches it, so a run that raises nothing never loads the error classes."""
    from .errors import AgentError

    return AgentError


def apply_root(argv: "Sequence[str]") -> "Optional[str]":
    """The root of the unit's command line, `apply [--root DIR]`; None for any other."""
    args = list(argv)
    if not args or args[0] != "apply":
        return None
    rest = args[1:]
    if not rest:
        return "/"
    if len(rest) == 2 and rest[0] == "--root" and rest[1]:
        return rest[1]
    if len(rest) == 1 and rest[0].startswith("--root=") and len(rest[0]) > len("--root="):
        return rest[0][len("--root="):]
    return None


def agent_facts() -> "dict[str, bytes]":
    """The agent's own inputs: its version, and the digest of its packaged templates and code
    (a rebuild that patches a template changes it, even with the same version)."""
    from .runinfo import code_digest

    return {"version": __version__.encode(), "code": code_digest()}


def run(argv: "Sequence[str]") -> "Result":
    given = apply_root(argv)
    if given is None:
        return Result(None, "", None)  # another command, any other option: the full path
    root = os.path.abspath(given)
    if not device_present(root):
        # Entries may come by SMBIOS OEM strings or systemd credentials too: a DMI table that
        # never mentions the agent and no fwcfg-agent.* credential prove there are none.
        from .channels import any_agent_input

        if not any_agent_input(root):
            log = Log()
            log.info(NO_DEVICE_MESSAGE, MSG_NOTHING)
            log.close()
            return Result(0, "", None)
    # Only now the modules of the replay: a boot without a device (bare metal, another
    # hypervisor) does not pay for them.
    from . import snapshot
    from .nics import Waiter
    from .rootfs import forget_paths
    from .runinfo import RawJSON, RunLock, append, record

    forget_paths()
    items = snapshot.load(root)
    if not items:
        return Result(None, "this is the first run (no record of an earlier one)", None)
    waiter = Waiter(root)
    try:
        with RunLock(root, timeout=0):
            why = snapshot.replay(root, items, agent_facts(), waiter)
            if why:
                return Result(None, why, waiter)
            notes = snapshot.notes(items)
            outcome = (notes.get("o") or b"unchanged").decode()
            source = (notes.get("s") or b"sysfs").decode()
            fields: dict[str, Any] = {"source": source,
                                         "entries": RawJSON((notes.get("j") or b"[]").decode())}
            if outcome == "unchanged":
                fields["files"] = []
            append(root, record(root, "apply", outcome, **fields))
    except agent_error() as e:
        return Result(None, f"the fast path could not finish ({e})", waiter)
    except OSError as e:
        return Result(None, f"the fast path could not finish ({e.strerror})", waiter)
    log = Log()
    if outcome == "no-entries":
        log.info(NO_ENTRIES_MESSAGE.format(source=source), MSG_NOTHING, source=source)
    else:
        report = waiter.report
        log.info("nothing changed" + (f" ({report})" if report else ""), MSG_UNCHANGED,
                 source=source)
    log.close()
    return Result(0, "", waiter)


def main(argv: "Optional[Sequence[str]]" = None) -> int:
    """`fwcfg-agent ARGS`: a boot where nothing changed ends here, cheaply; anything else is
    handed to the full path with the reason."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        done = run(args)
    except agent_error() as e:  # no device check or journal line possible: say so, plainly
        sys.stderr.write(f"fwcfg-agent: error: {e}\n")
        return e.exit_code
    if done.code is not None:
        return done.code
    from .cli import full_run

    return full_run(args, done)
