"""Every path under `--root`, resolved inside it, and the record of what a run read there.

`chase()` resolves a path the way systemd's chase() does with CHASE_PREFIX_ROOT: an absolute
symlink target is taken relative to the root, and `..` never climbs above it. On the running
system (root `/`) that is what the kernel does anyway, so the path is used as it is.

`Reader` is the one way the full path reads the root. Each read is recorded as an item
(kind, path relative to the root, value) and `replay()` evaluates an item again: the boot's fast
path (fast.py) proves that nothing changed by replaying the full path's own record, so the two
cannot drift. Kinds:

    f  a file's bytes (None: missing, unreadable, or not a regular file)
    d  a directory's sorted names, one per line (None: not a directory)
    e  b"1" if the path exists (a link counts, dangling or not), else b"0"
    m  the final component as lstat() sees it: "reg 0644", "lnk TARGET", "dir 0755" or None
    n  the Ethernet NICs (nics.signature), `macs` or `names`
    v  a fact of the agent itself: `version`, `code` (the packaged templates and code)
    h  the running kernel's hostname (only on the running system)

Only builtin modules are imported here: the fast path uses this module.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Optional

    Item = tuple[str, str, Optional[bytes]]

MAX_LINKS = 40
ELOOP = 40
S_IFMT, S_IFREG, S_IFLNK = 0o170000, 0o100000, 0o120000


# The directories chased in this run: (root, rel dir) -> (its resolved components, its host path
# or None when it does not exist). Paths share their directories (sys/firmware/qemu_fw_cfg/
# by_key/N/...), so each directory, and each of its parents, is resolved once, and nothing is
# asked of the kernel below one that does not exist. A run starts with a clean slate
# (forget_paths): between runs a directory may have become a symlink. Within a run the agent
# only creates plain directories, which resolve the same before and after they exist; makedirs
# forgets what it may have made stale (a directory noted as missing).
_dirs: "dict[tuple[str, str], tuple[tuple[str, ...], Optional[str]]]" = {}


def forget_paths() -> None:
    _dirs.clear()


def chase(root: str, rel: str, *, follow_last: bool = True) -> str:
    """The host path of `rel` under `root`, every symlink resolved inside the root (the final
    component's too, unless follow_last is False). Components that do not exist yet are kept
    as they are: the result is where the path would be created."""
    rel = rel.lstrip("/")
    if root == "/":
        return "/" + rel
    head, _, last = rel.rpartition("/")
    parts, host = _dir(root, head)
    if not follow_last and last not in ("", ".", ".."):  # (what _walk would do, without it)
        return host + "/" + last if host is not None else "/".join((root, *parts, last))
    done, _ = _walk(root, list(parts), last, follow_last=follow_last)
    return "/".join((root, *done)) if done else root  # (os.path.join, in C: no component is
    # empty or absolute)


def _final(root: str, rel: str) -> "Optional[str]":
    """chase(root, rel, follow_last=False), or None when a directory on the way does not exist
    (nor, then, the path)."""
    if root == "/":
        return "/" + rel
    head, _, last = rel.rpartition("/")
    if last in ("", ".", ".."):
        return chase(root, rel, follow_last=False)
    host = _dir(root, head)[1]
    return host + "/" + last if host is not None else None


def _dir(root: str, head: str) -> "tuple[tuple[str, ...], Optional[str]]":
    """The resolved components of the directory `head` and its host path (None: it does not
    exist), from the memo or walked from its nearest resolved parent; every parent on the way
    is remembered too. (Resolution composes: a link's relative target is taken from the
    directory it is in, which is resolved first.)"""
    got = _dirs.get((root, head))
    if got is not None:
        return got
    if not head:
        return ((), root)
    parts = head.split("/")
    start = 0
    got = ((), root)
    for i in range(len(parts) - 1, 0, -1):
        cached = _dirs.get((root, "/".join(parts[:i])))
        if cached is not None:
            start, got = i, cached
            break
    for i in range(start, len(parts)):
        part = parts[i]
        comps, host = got
        if part in ("", ".", ".."):
            got = _walked(root, comps, part)
        elif host is None:  # below a missing directory
            got = ((*comps, part), None)
        else:  # (_walk's step for one name, inline: most components are plain directories)
            here = host + "/" + part
            if not lexists(here):  # not there, nor anything below it
                got = ((*comps, part), None)
            elif is_link(here):
                got = _walked(root, comps, part)
            else:
                got = ((*comps, part), here)
        _dirs[(root, "/".join(parts[:i + 1]))] = got
    return got


def _walked(root: str, comps: "tuple[str, ...]",
            part: str) -> "tuple[tuple[str, ...], Optional[str]]":
    done, gone = _walk(root, list(comps), part, follow_last=True)
    return tuple(done), None if gone else "/".join((root, *done)) if done else root


def _walk(root: str, done: "list[str]", path: str, *,
          follow_last: bool) -> "tuple[list[str], bool]":
    """Resolve `path` (components separated by "/") one component at a time below the
    resolved components `done`; also says whether a component is known not to exist. Below a
    component that does not exist (or is not a directory) nothing exists either: the rest is
    taken as it is, without asking the kernel, until a `..` climbs back above it."""
    todo = [p for p in reversed(path.split("/")) if p and p != "."]
    links = 0
    gone = -1  # the index in `done` of a component that does not exist; -1: none
    while todo:
        part = todo.pop()
        if part == "..":
            if done:
                done.pop()
            if len(done) <= gone:
                gone = -1
            continue
        if gone >= 0 or (not todo and not follow_last):
            done.append(part)
            continue
        here = "/".join((root, *done, part))  # (never the root "/": chase returns at once)
        if not lexists(here):  # not there, nor anything below it
            gone = len(done)
            done.append(part)
            continue
        try:
            target = os.readlink(here) if is_link(here) else None
        except OSError:  # (no longer a link)
            target = None
        if target is None:
            done.append(part)
            continue
        links += 1
        if links > MAX_LINKS:
            raise OSError(ELOOP, "too many levels of symbolic links", here)
        if target.startswith("/"):
            done = []
            gone = -1
        todo.extend(p for p in reversed(target.split("/")) if p and p != ".")
    return done, gone >= 0


def lexists(path: str) -> bool:
    """Whether the path exists, a link counting as itself (dangling or not). faccessat with
    AT_SYMLINK_NOFOLLOW: a missing path costs no exception (lstat's OSError costs ten times the
    system call; a run asks this of dozens of paths that are not there)."""
    try:
        return os.access(path, os.F_OK, follow_symlinks=False)
    except ValueError:  # a NUL in the path
        return False


def is_link(path: str) -> bool:
    try:
        return os.lstat(path).st_mode & S_IFMT == S_IFLNK
    except OSError:
        return False


def makedirs(root: str, rel_dir: str) -> "list[str]":
    """Create the directory `rel_dir` under the root (resolved inside it), with every missing
    parent. Returns the directories it created, as paths relative to the root, outermost first."""
    created: list[str] = []
    path = chase(root, rel_dir)
    if os.path.isdir(path):
        return created
    missing: list[str] = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    for d in reversed(missing):
        os.mkdir(d, 0o755)
        created.append(guest_path(root, d))
    if created:
        forget_paths()  # (the memo may hold them as missing)
    return created


def guest_path(root: str, host_path: str) -> str:
    """A host path under the root as the guest sees it: /etc/hostname."""
    if root == "/":
        return host_path
    rel = os.path.relpath(host_path, root)
    return "/" if rel == "." else "/" + rel


# O_NONBLOCK: opening a FIFO for reading would wait for a writer (a FIFO in place of
# /etc/hosts hung the agent until the unit's timeout); it has no effect on a regular file.
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
PAGE = 4096  # a read's size where the file tells none (see _read_all)
MAX_READ = 1 << 20


def read_bytes(path: str) -> "Optional[bytes]":
    """The whole file, or None when it is missing or cannot be read as a file. (os.open and
    os.read: no file object for the many small files a run reads.)"""
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError:
        return None
    return _read_all(fd)


def _read_all(fd: int) -> "Optional[bytes]":
    """What is left to read from fd, which is closed; None when it cannot be read or is not a
    regular file (a FIFO or a device: one would block, another never end; sysfs and procfs
    attributes are regular files).

    Each read asks for what the file says it holds and one byte more (the end shows at once),
    a page where it says nothing (procfs says 0 bytes, sysfs a page), then twice as much, up
    to MAX_READ: the kernel allocates a buffer of the size asked for before it reads some
    files (procfs's sysctl files, such as the boot id, zeroed), and a megabyte asked of
    /proc/sys/kernel/random/boot_id took 58 ms the first time in a TCG guest, 3.5 ms after."""
    try:
        st = os.fstat(fd)
        if st.st_mode & S_IFMT != S_IFREG:
            return None
        size = min(st.st_size + 1 if st.st_size > 0 else PAGE, MAX_READ)
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, size)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size = min(size * 2, MAX_READ)
    except OSError:  # a directory (EISDIR), an I/O error
        return None
    finally:
        os.close(fd)


def read_in_root(root: str, rel: str) -> "Optional[bytes]":
    """read_bytes(chase(root, rel)), with a system call fewer for a file that is not a link:
    the final component is opened without following a link, and only a link is then resolved
    inside the root, as chase does. None at once below a directory that does not exist."""
    rel = rel.lstrip("/")
    if root == "/":
        return read_bytes("/" + rel)
    path = _final(root, rel)
    if path is None:
        return None
    try:
        fd = os.open(path, READ_FLAGS | os.O_NOFOLLOW)
    except OSError as e:
        return read_bytes(chase(root, rel)) if e.errno == ELOOP else None
    return _read_all(fd)


def listing(path: str) -> "Optional[bytes]":
    try:
        return "\n".join(sorted(os.listdir(path))).encode("utf-8", "surrogateescape")
    except OSError:
        return None


def lstat_text(path: str) -> "Optional[bytes]":
    """What the final component is: its type and permission bits (setuid, setgid and sticky
    included), or a link's target."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    kind = st.st_mode & 0o170000
    if kind == 0o120000:
        try:
            return b"lnk " + os.fsencode(os.readlink(path))
        except OSError:
            return None
    name = {0o100000: b"reg", 0o040000: b"dir"}.get(kind, b"oth")
    return name + b" %04o" % (st.st_mode & 0o7777)


def evaluate(root: str, kind: str, rel: str,
             extra: "Optional[Callable[[str, str], Optional[bytes]]]" = None) -> "Optional[bytes]":
    """An item's value now."""
    if kind == "f":
        return read_in_root(root, rel)
    if kind == "e":
        path = _final(root, rel)
        if path is None:
            return b"0"
        return b"1" if lexists(path) else b"0"
    if kind == "d":
        host = "/" + rel if root == "/" else _dir(root, rel)[1]
        return listing(host) if host is not None else None
    if kind == "m":
        path = _final(root, rel)
        return lstat_text(path) if path is not None else None
    if kind == "h":
        return os.uname().nodename.encode() if root == "/" else None
    if extra is not None:
        return extra(kind, rel)
    return None


class Reader:
    """The full path's reads under the root, each recorded once (the first value read wins:
    that is what the run's decisions were based on). `record()` gives the items in order."""

    def __init__(self, root: str) -> None:
        forget_paths()  # a new run: directories may have changed since the last one
        self.root = root
        self.items: dict[tuple[str, str], Optional[bytes]] = {}

    def path(self, rel: str, *, follow_last: bool = True) -> str:
        return chase(self.root, rel, follow_last=follow_last)

    def _note(self, kind: str, rel: str, value: "Optional[bytes]") -> "Optional[bytes]":
        self.items.setdefault((kind, rel.lstrip("/")), value)
        return value

    def read(self, rel: str) -> "Optional[bytes]":
        return self._note("f", rel, evaluate(self.root, "f", rel.lstrip("/")))

    def text(self, rel: str) -> "Optional[str]":
        data = self.read(rel)
        return None if data is None else data.decode("utf-8", "replace")

    def listdir(self, rel: str) -> "Optional[list[str]]":
        data = self._note("d", rel, evaluate(self.root, "d", rel.lstrip("/")))
        if data is None:
            return None
        return data.decode("utf-8", "surrogateescape").split("\n") if data else []

    def exists(self, rel: str) -> bool:
        return self._note("e", rel, evaluate(self.root, "e", rel.lstrip("/"))) == b"1"

    def lstat(self, rel: str) -> "Optional[bytes]":
        return self._note("m", rel, evaluate(self.root, "m", rel.lstrip("/")))

    def fact(self, kind: str, rel: str, value: "Optional[bytes]") -> "Optional[bytes]":
        """Record a value the caller computed (NICs, the agent's version and code)."""
        return self._note(kind, rel, value)

    def set(self, kind: str, rel: str, value: "Optional[bytes]") -> None:
        """What a path holds after the run wrote it: the next boot compares against that."""
        self.items[(kind, rel.lstrip("/"))] = value

    def forget(self, kind: str, rel: str) -> None:
        self.items.pop((kind, rel.lstrip("/")), None)

    def record(self) -> "list[Item]":
        return [(k, r, v) for (k, r), v in self.items.items()]
