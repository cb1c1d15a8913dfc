"""What identifies the code that turns settings into files: a digest of the agent's modules
(fwcfg_agent/*.py, fwcfg_agent/render/*.py) and of the packaged templates (templates/*.j2).

The version alone does not identify it: a distribution's rebuild may patch a template or a module
and keep `__version__`. Builds write the digest into the package (setup.py's build_py writes
`fwcfg_agent/_codeid`, one line of hex, from the files it built; the DEB and the RPM get it
through that build); a run reads that one small file. Where the file is absent (a source
checkout) the digest is computed from the files themselves, the same way.

The boot reads the build's record through runinfo.code_digest (re-exported here); this module
computes the digest (the agent's own `digest`: builtin hash modules) where there is no record.
"""

import os
import sys

# What a run reads (the build's record, else compute() once) is runinfo's: the boot's fast path
# loads that module anyway. The file's name and size are defined there.
from .runinfo import _PACKAGE, FILE, SIZE, code_digest, read

TYPE_CHECKING = False  # typing is not loaded for this module: mypy reads it, Python does not
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["FILE", "SIZE", "code_digest", "compute", "files", "read", "template_dir", "write"]


def template_dir(package_dir: str = _PACKAGE) -> str:
    """`fwcfg_agent/templates` when installed; the checkout's `templates/` when run from it."""
    installed = os.path.join(package_dir, "templates")
    if os.path.isdir(installed):
        return installed
    return os.path.join(os.path.dirname(package_dir), "templates")


def _listdir(directory: str, suffix: str) -> "list[str]":
    try:
        with os.scandir(directory) as it:
            return sorted(e.name for e in it if e.name.endswith(suffix) and e.is_file())
    except OSError:
        return []


def files(package_dir: str, templates: str) -> "Iterator[tuple[str, str]]":
    """(name, path) of every file the digest covers, in a fixed order. Names are relative and
    the same in a checkout and an installed package (`render/env.py`, `templates/hosts.j2`)."""
    for sub, directory, suffix in (("", package_dir, ".py"),
                                   ("render/", os.path.join(package_dir, "render"), ".py"),
                                   ("templates/", templates, ".j2")):
        for name in _listdir(directory, suffix):
            yield sub + name, os.path.join(directory, name)


def compute(package_dir: str = _PACKAGE, templates: "str | None" = None) -> bytes:
    """The digest of the files themselves (what the build writes into `_codeid`)."""
    from .digest import hash_function

    h = hash_function("sha256")(b"fwcfg-agent code 1\n")
    for name, path in files(package_dir, templates or template_dir(package_dir)):
        with open(path, "rb") as f:
            data = f.read()
        # the name and the length first: no two different sets of files hash the same input
        h.update(f"{name}\0{len(data)}\0".encode())
        h.update(data)
    return h.digest()  # type: ignore[no-any-return]


def write(package_dir: str, templates: "str | None" = None) -> str:
    """Compute the digest of the files under `package_dir` and record it there (at build time).
    Returns the file written."""
    path = os.path.join(package_dir, FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(compute(package_dir, templates).hex() + "\n")
    os.replace(tmp, path)
    return path


def main(argv: "list[str]") -> int:
    """`python3 -m fwcfg_agent.codeid [--write]`: print the digest; --write records it in the
    package (what setup.py's build_py does in the build tree)."""
    if argv == ["--write"]:
        path = write(_PACKAGE)
        print(f"wrote {path}", file=sys.stderr)
        return 0
    if argv:
        print("usage: python3 -m fwcfg_agent.codeid [--write]", file=sys.stderr)
        return 2
    print(code_digest().hex())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
