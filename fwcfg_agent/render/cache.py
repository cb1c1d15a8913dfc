"""Compiled templates, cached: compiling a jinja2 template costs more than rendering it.

Reading goes through a list of directories (the one shipped inside the package first); writing
goes to one directory under the root's /var/cache. jinja2 checks every cached entry against the
template's source (sha1) and the running Python/jinja2 bytecode version, so a stale or foreign
entry is ignored and the template compiled afresh: the cache can only make rendering faster.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import jinja2
from jinja2.bccache import Bucket

from .lite import LITE_DIR, packaged_cache_dir, packaged_template_dir
from .lite import write as write_lite


class TemplateCache(jinja2.BytecodeCache):
    def __init__(self, read_dirs: Sequence[Path], write_dir: Optional[Path]) -> None:
        self.read_dirs = [d for d in read_dirs if d is not None]
        if write_dir is not None:
            self.read_dirs.append(write_dir)
        self.write_dir = write_dir

    def get_cache_key(self, name: str, filename: Optional[str] = None) -> str:
        # The template's name alone: the packaged cache is built in a build tree whose paths
        # differ from the installed ones. The source checksum tells overrides apart.
        return hashlib.sha1(name.encode()).hexdigest()

    def load_bytecode(self, bucket: Bucket) -> None:
        for d in self.read_dirs:
            try:
                with open(d / f"{bucket.key}.cache", "rb") as f:
                    bucket.load_bytecode(f)
            except OSError:
                continue
            except Exception:  # a torn or foreign file (unpickling, marshal errors): skip it
                bucket.reset()
                continue
            if bucket.code is not None:
                return

    def dump_bytecode(self, bucket: Bucket) -> None:
        if self.write_dir is None:
            return
        try:
            self.write_dir.mkdir(parents=True, exist_ok=True)
            path = self.write_dir / f"{bucket.key}.cache"
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                bucket.write_bytecode(f)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only /var only costs compile time


def precompile(dest: Path | None = None) -> list[str]:
    """Compile every packaged template into the package's own cache (run at build time)."""
    from .env import Templates

    out = dest or packaged_cache_dir(packaged_template_dir())
    templates = Templates()
    templates.env.bytecode_cache = TemplateCache([], out)  # compile everything, read nothing
    names = sorted(n for n in templates.env.list_templates() if n.endswith(".j2"))
    for name in names:
        templates.env.get_template(name)
        # and the code the light runtime runs (lite.py), where it can run the template
        source = (packaged_template_dir() / name).read_text(encoding="utf-8")
        write_lite(out / LITE_DIR, name, source)
    return names


def main() -> int:
    dest = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    names = precompile(dest)
    print(f"compiled {len(names)} templates", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
