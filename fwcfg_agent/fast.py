"""The boot's fast path: replay the last full run's record, or hand over to the full path.

The full path records every read it makes under the root (rootfs.Reader), and what it wrote in
place of the files it manages; that record, with three notes that are kept, not compared (the
run's outcome, its source and its entry list for the journal), is the snapshot:
ROOT/var/lib/fwcfg-agent/snapshot, written by the full path and read here (both halves are in
this module: the boot loads one module for them). At the next boot this module replays it:
every item equal means the full path would change nothing, and the run ends with the same
journal record and log line the full path writes for "nothing changed", without loading
jinja2, pyudev, systemd-python, argparse, json or the model. Any difference, any doubt,
any option on the command line: the full path runs, and is told why.

`main` is the command line's entry (the launcher's, and cli.main's): the full path's code
(cli.py, argparse) is loaded only when this path cannot finish.

Only builtin modules, and this package's modules that import only those, are loaded here.
"""

import os
import sys

from . import __version__
from .device import device_present

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any, Optional

    from .errors import AgentError
    from .nics import Waiter
    from .rootfs import Item

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


# --- the snapshot: written by the full path, replayed here ------------------------------

SNAPSHOT = "var/lib/fwcfg-agent/snapshot"
MAGIC = b"fwcfg-agent-snapshot 2\n"
NOTES = ("o", "s", "j")  # outcome, source, entries (JSON): recorded, not compared


def serialize(items: "Iterable[Item]") -> bytes:
    out = [MAGIC]
    for kind, rel, data in items:
        if "\n" in rel or " " in kind:
            raise ValueError(f"cannot record the path {rel!r}")
        size = -1 if data is None else len(data)
        out.append(f"{kind} {size} {rel}\n".encode("utf-8", "surrogateescape"))
        if data is not None:
            out.append(data)
            out.append(b"\n")
    return b"".join(out)


def parse(blob: bytes) -> "Optional[list[Item]]":
    if not blob.startswith(MAGIC):
        return None
    items: list[Item] = []
    pos, end = len(MAGIC), len(blob)
    try:
        while pos < end:
            nl = blob.index(b"\n", pos)
            kind, size_text, rel_bytes = blob[pos:nl].split(b" ", 2)
            if not (size_text.isdigit() or size_text == b"-1"):
                return None  # (int() would take " 5" or "+5": only what serialize writes)
            size = int(size_text)
            pos = nl + 1
            data: Optional[bytes] = None
            if size >= 0:
                stop = pos + size
                if blob[stop:stop + 1] != b"\n":  # (also a snapshot cut short)
                    return None
                data = blob[pos:stop]
                pos = stop + 1
            rel = rel_bytes.decode("utf-8", "surrogateescape")
            if rel[:1] == "/" or "/../" in f"/{rel}/" or "\0" in rel:
                return None  # not a path this agent records: a damaged or forged snapshot
            items.append((kind.decode("ascii"), rel, data))
    except ValueError:  # (UnicodeDecodeError is one)
        return None
    return items


def save(root: str, items: "Sequence[Item]") -> None:
    """Save the snapshot atomically (a torn or missing snapshot costs one full run)."""
    from .rootfs import chase, makedirs

    makedirs(root, os.path.dirname(SNAPSHOT))
    path = chase(root, SNAPSHOT, follow_last=False)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        os.write(fd, serialize(items))
    finally:
        os.close(fd)
    os.replace(tmp, path)


def forget(root: str) -> None:
    from .rootfs import chase

    try:  # noqa: SIM105 (contextlib is not loaded at start-up)
        os.unlink(chase(root, SNAPSHOT, follow_last=False))
    except OSError:
        pass


def load(root: str) -> "Optional[list[Item]]":
    from .rootfs import read_in_root

    blob = read_in_root(root, SNAPSHOT)
    return parse(blob) if blob is not None else None


def notes(items: "Sequence[Item]") -> "dict[str, bytes]":
    return {kind: data or b"" for kind, _, data in items if kind in NOTES}


_WHAT = {"f": "{} changed", "d": "the directory {} changed", "e": "{} appeared or went away",
         "m": "the type or mode of {} changed", "n": "the NICs changed",
         "h": "the hostname was changed", "v": "the agent's {} changed"}


def describe(kind: str, rel: str) -> str:
    """Why a full run: in words a user understands."""
    if kind == "f" and rel.startswith("sys/firmware/qemu_fw_cfg/"):
        return "the fw_cfg entries changed"
    if kind == "d" and rel.startswith("sys/firmware/qemu_fw_cfg/"):
        return "the fw_cfg directory changed"
    if rel.startswith("sys/firmware/dmi/"):
        return "the SMBIOS OEM strings changed"
    if rel.startswith("run/credentials/"):
        return "the system credentials changed"
    shown = rel if kind == "v" else "/" + rel
    return _WHAT.get(kind, "{} changed").format(shown)


def replay(root: str, items: "Sequence[Item]", agent: "dict[str, bytes]",
           waiter: "Optional[Waiter]") -> str:
    """'' when every recorded item is as recorded, else why not. The NICs come last: their
    drivers load (`run` started them) while the rest is compared, then the NICs are waited
    for. `agent` gives the values of the agent's own facts (kind v) as they are now."""
    from .nics import current_signature
    from .rootfs import evaluate, forget_paths

    forget_paths()  # a new run: the tree may have changed since paths were last resolved
    nic_items = [i for i in items if i[0] == "n"]
    for kind, rel, data in items:
        if kind in NOTES or kind == "n":
            continue
        now = agent.get(rel) if kind == "v" else evaluate(root, kind, rel)
        if now != data:
            return describe(kind, rel)
    if nic_items and waiter is not None:
        waiter.wait_for_nics()
        if any(rel == "names" for _, rel, _ in nic_items):
            waiter.wait_for_udev_names()
    for kind, rel, data in nic_items:
        if current_signature(root, rel) != data:
            return describe(kind, rel)
    return ""


# --- the boot's run ------------------------------------------------------------------------

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
            from .log import MSG_NOTHING, Log

            log = Log()
            log.info(NO_DEVICE_MESSAGE, MSG_NOTHING)
            log.close()
            return Result(0, "", None)
    # Only now the modules of the replay: a boot without a device (bare metal, another
    # hypervisor) does not pay for them; the log's and the journal's once the drivers are
    # asked for.
    from .nics import Waiter
    from .rootfs import forget_paths

    forget_paths()
    items = load(root)
    waiter = Waiter(root)
    if not items or any(kind == "n" for kind, _, _ in items):
        # The NICs will be waited for (a full run always waits; a replay when the files depend
        # on them): their drivers load from here on, while the rest of the run goes on. In a
        # one-CPU guest the driver took 0.2-0.3 s from modprobe's start to the NIC's
        # registration, most of a later boot's replay.
        waiter.load_drivers()
    if not items:
        return Result(None, "this is the first run (no record of an earlier one)", waiter)
    from .log import MSG_NOTHING, MSG_UNCHANGED, Log
    from .runinfo import RawJSON, RunLock, append, record

    try:
        with RunLock(root, timeout=0):
            why = replay(root, items, agent_facts(), waiter)
            if why:
                return Result(None, why, waiter)
            kept = notes(items)
            outcome = (kept.get("o") or b"unchanged").decode()
            source = (kept.get("s") or b"sysfs").decode()
            fields: dict[str, Any] = {"source": source,
                                         "entries": RawJSON((kept.get("j") or b"[]").decode())}
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


def main(argv: "Optional[Sequence[str]]" = None, *, exit_when_done: bool = False) -> int:
    """`fwcfg-agent ARGS`: a boot where nothing changed ends here, cheaply; anything else is
    handed to the full path with the reason. With exit_when_done (the launcher, which owns the
    process), a run the fast path finished ends the process at once: see end_process, and
    runs without the cyclic garbage collector: see owned_process."""
    if exit_when_done:
        owned_process()
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        done = run(args)
    except agent_error() as e:  # no device check or journal line possible: say so, plainly
        sys.stderr.write(f"fwcfg-agent: error: {e}\n")
        return e.exit_code
    if done.code is not None:
        if exit_when_done:
            end_process(done.code)
        return done.code
    from .cli import full_run

    code = full_run(args, done)
    if exit_when_done and nothing_left_at_exit():
        end_process(code)
    return code


def owned_process() -> None:
    """The launcher's process is one run, a fraction of a second long: the cyclic garbage
    collector is switched off for it. A first boot allocates enough while it imports jinja2 and
    the full path to set the collector off about 36 times, each pass over every object the
    imports made (about 5% of the run's instructions), and it would free almost nothing: module
    dicts, classes and functions live until the process ends. Reference counting still frees
    everything that is not in a cycle, and what a run allocates is bounded by its input (an
    entry is read only up to MAX_ENTRY_SIZE). Peak RSS of the bench's first boot: unchanged."""
    import gc

    gc.disable()


def nothing_left_at_exit() -> bool:
    """No atexit handler registered (the raw reader's finalizer, which gives the fw_cfg device
    back to the kernel's driver, registers one; so does logging) and no thread but this one.
    Where Python cannot say (atexit._ncallbacks is CPython's), the answer is no."""
    import atexit

    count = getattr(atexit, "_ncallbacks", None)
    if count is None or count() != 0:
        return False
    threading = sys.modules.get("threading")
    return threading is None or threading.active_count() == 1


def end_process(code: int) -> None:
    """Exit without tearing the interpreter down: freeing every module and object at exit cost
    about as much as the whole replay (a sixth of a run), and a tenth of a first boot with
    jinja2 loaded. Only from the launcher, which owns the process, once the run is over: the
    agent's files were written through file descriptors, flushed and fsynced, the journal with
    os.write, the log with send; a run that left an atexit handler or a thread exits the normal
    way (nothing_left_at_exit). Python's own stdout and stderr are flushed first."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105 (contextlib is not loaded on this path)
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more to say there
            pass
    os._exit(code)
