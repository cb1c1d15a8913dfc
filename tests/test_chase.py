"""rootfs.chase(): every path under --root resolved inside the root, as the kernel resolves it
for a process chrooted there (systemd's chase() with CHASE_PREFIX_ROOT says the same)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fwcfg_agent.rootfs import (
    MAX_READ,
    PAGE,
    chase,
    evaluate,
    forget_paths,
    listing,
    lstat_text,
    makedirs,
    read_bytes,
    read_in_root,
)

from .forked import in_child

# A small tree: directories, and symlinks of every kind chase must handle: absolute (taken
# relative to the root), relative, climbing above the root, to a link, dangling, a loop.
DIRS = ("a", "a/b", "a/b/c", "d", "etc", "etc/systemd/network")
LINKS = {
    "abs": "/a/b",
    "rel": "a/b",
    "up": "../../../../d",
    "a/b/back": "../../etc",
    "a/b/root": "/",
    "a/chain": "../abs",
    "dangling": "/nope/x",
    "loop1": "loop2",
    "loop2": "loop1",
    "etc/net": "systemd/network",
    "d/self": ".",
}
NAMES = ("a", "b", "c", "d", "abs", "rel", "up", "back", "root", "chain", "dangling", "..",
         ".", "etc", "net", "network", "self", "missing", "loop1")


def _tree(root: Path) -> Path:
    for d in DIRS:
        (root / d).mkdir(parents=True, exist_ok=True)
    for link, target in LINKS.items():
        (root / link).symlink_to(target)
    (root / "etc/hostname").write_text("x\n")
    return root


def _kernel_view(root: Path, rels: list[str]) -> list[object]:
    """What a process chrooted into `root` sees for each path: realpath inside the chroot
    (missing components kept), mapped back to a host path; "ELOOP" for a symlink loop, on the
    path or where realpath ends."""

    def view() -> list[object]:
        os.chroot(root)
        os.chdir("/")
        out: list[object] = []
        for rel in rels:
            try:
                os.stat("/" + rel)  # the kernel's own walk: ELOOP on a loop
            except OSError as e:
                if e.errno == errno.ELOOP:
                    out.append("ELOOP")
                    continue
            real = os.path.realpath("/" + rel)
            try:  # realpath leaves a loop unresolved, also one it reaches after a missing
                os.stat(real)  # component and a `..` back (a/missing/../../loop1)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    out.append("ELOOP")
                    continue
            out.append(str(root) + real if real != "/" else str(root))
        return out

    got = in_child(view)
    assert isinstance(got, list)
    return got


def _chase(root: Path, rel: str) -> object:
    try:
        return chase(str(root), rel)
    except OSError as e:
        return "ELOOP" if e.errno == errno.ELOOP else f"errno {e.errno}"


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the kernel's view needs chroot")


@needs_root
def test_chase_agrees_with_the_kernel_in_a_chroot(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    rels = ["abs/c", "rel/c", "up/x", "a/b/back/hostname", "a/b/root/etc/hostname", "a/chain/c",
            "dangling", "dangling/y", "etc/net/10.network", "../../../etc/hostname",
            "a/../../d/self/self/z", "missing/../a/b", "/etc/hostname", "etc/systemd/network",
            "a/a/../../loop1", "missing/../abs/c"]
    forget_paths()
    assert [_chase(root, rel) for rel in rels] == _kernel_view(root, rels)


@needs_root
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6).map("/".join),
                min_size=1, max_size=12))
def test_chase_with_its_memo_agrees_with_the_kernel(tmp_path: Path, rels: list[str]) -> None:
    """Many paths in one run share the memo of resolved directories: the answers stay the
    kernel's, whatever the order."""
    root = tmp_path / "root"
    if not root.exists():
        _tree(root)
    forget_paths()
    got = [_chase(root, rel) for rel in rels]
    assert got == _kernel_view(root, rels), rels


def test_the_final_component_is_not_followed_when_asked(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    forget_paths()
    assert chase(str(root), "etc/net", follow_last=False) == str(root / "etc/net")
    assert chase(str(root), "etc/net") == str(root / "etc/systemd/network")
    assert chase(str(root), "abs/../c", follow_last=False) == str(root / "a/c")


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from((*NAMES, "hostname", "hn", "hn-up")), min_size=1,
                max_size=5).map("/".join))
def test_reading_in_the_root_reads_what_chase_names(tmp_path: Path, rel: str) -> None:
    """read_in_root opens the final component without following it, and resolves only a link:
    it reads the same bytes as reading the chased path (or fails the same way: a loop), links
    of every kind included (an absolute or climbing link never reads the host's files)."""
    root = tmp_path / "root"
    if not root.exists():
        _tree(root)
        (root / "etc/hostname").write_text("inside\n")
        (root / "etc/hn").symlink_to("/a/b/root/etc/hostname")
        (root / "a/b/hn-up").symlink_to("../../../../../etc/hostname")
    forget_paths()
    try:
        got: object = read_in_root(str(root), rel)
    except OSError as e:
        got = e.errno
    try:
        want: object = read_bytes(chase(str(root), rel))
    except OSError as e:
        want = e.errno
    assert got == want


def _by_definition(root: Path, kind: str, rel: str) -> object:
    """An item's value as rootfs's docstring defines it, from chase alone."""
    try:
        if kind == "f":
            return read_bytes(chase(str(root), rel))
        if kind == "d":
            return listing(chase(str(root), rel))
        final = chase(str(root), rel, follow_last=False)
        if kind == "e":
            return b"1" if os.path.lexists(final) else b"0"
        return lstat_text(final)
    except OSError as e:
        return e.errno


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("fdem"),
                          st.lists(st.sampled_from((*NAMES, "hostname")), min_size=1,
                                   max_size=5).map("/".join)), min_size=1, max_size=12))
def test_evaluating_with_the_memo_gives_each_kind_its_definition(
        tmp_path: Path, items: list[tuple[str, str]]) -> None:
    """One run evaluates many items with one memo, which also notes the directories that do
    not exist (nothing below one is asked of the kernel): each value is still what the kind's
    definition gives, on a fresh memo for every item."""
    root = tmp_path / "root"
    if not root.exists():
        _tree(root)
    forget_paths()
    got: list[object] = []
    for kind, rel in items:
        try:
            got.append(evaluate(str(root), kind, rel))
        except OSError as e:
            got.append(e.errno)
    want = []
    for kind, rel in items:
        forget_paths()
        want.append(_by_definition(root, kind, rel))
    assert got == want


def test_a_directory_noted_missing_is_seen_once_the_run_makes_it(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    forget_paths()
    assert evaluate(str(root), "e", "var/lib/x/state") == b"0"
    assert evaluate(str(root), "d", "var/lib/x") is None
    assert makedirs(str(root), "var/lib/x") == ["/var", "/var/lib", "/var/lib/x"]
    (root / "var/lib/x/state").write_text("1\n")
    assert evaluate(str(root), "e", "var/lib/x/state") == b"1"
    assert evaluate(str(root), "f", "var/lib/x/state") == b"1\n"
    assert evaluate(str(root), "d", "var/lib/x") == b"state"


def test_reads_ask_for_what_the_file_holds(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A read asks for the file's size and one byte more, a page where the file gives no size
    (procfs), then twice as much up to MAX_READ: never a megabyte of a small file. procfs's
    sysctl files allocate (and zero) a kernel buffer of the size asked for: a megabyte asked of
    the boot id took 58 ms in a TCG guest, and 3.5 ms for the read that finds the end."""
    asked: list[int] = []
    real_read = os.read

    def spy(fd: int, n: int) -> bytes:
        asked.append(n)
        return real_read(fd, n)

    monkeypatch.setattr(os, "read", spy)
    small = tmp_path / "small"
    small.write_bytes(b"0123456789")
    assert read_bytes(str(small)) == b"0123456789"
    assert asked == [11, 22]
    asked.clear()
    # a sysctl file as the boot id is (st_size 0); the boot id itself is the tests' to leave
    assert read_bytes("/proc/sys/kernel/ostype") == b"Linux\n"
    assert asked == [PAGE, 2 * PAGE]
    asked.clear()
    big = tmp_path / "big"
    data = os.urandom(3 * MAX_READ + 5)
    big.write_bytes(data)
    assert read_bytes(str(big)) == data
    assert max(asked) == MAX_READ
