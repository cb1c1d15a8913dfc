"""The full path's record of a run, kept for the next boot: ROOT/var/lib/fwcfg-agent/snapshot.

A snapshot is the run's Reader record (every read under the root, with what the run then wrote
in place of what it read for the files it manages) plus three notes that are kept, not
compared: the run's outcome, its source and its entry list for the journal. `replay()` evaluates
every item again; equal means the full path would change nothing.

Only builtin modules are imported here: the fast path uses this module.
"""

import os

from .nics import current_signature
from .rootfs import chase, evaluate, forget_paths, makedirs, read_in_root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Optional

    from .nics import Waiter
    from .rootfs import Item

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
    try:  # noqa: SIM105 (contextlib is not loaded at start-up)
        os.unlink(chase(root, SNAPSHOT, follow_last=False))
    except OSError:
        pass


def load(root: str) -> "Optional[list[Item]]":
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
    drivers load (started first) while the rest is compared, then the NICs are waited for.
    `agent` gives the values of the agent's own facts (kind v) as they are now."""
    forget_paths()  # a new run: the tree may have changed since paths were last resolved
    nic_items = [i for i in items if i[0] == "n"]
    if nic_items and waiter is not None:
        waiter.load_drivers()
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
