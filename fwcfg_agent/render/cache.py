"""Precompile the packaged templates (at build time): `python3 -m fwcfg_agent.render.cache [DEST]`;
`--check [DIR]` says whether this Python and jinja2 use them.

jinja2's own `Environment.compile_templates` writes each template as the Python module jinja2
generates for it (`tmpl_<sha1 of the name>.py`, what `jinja2.ModuleLoader` loads), into DEST
(default: the package's `templates/__compiled__`). Next to them goes a MANIFEST: the jinja2
version that compiled them, the agent's code digest (`codeid`) and each template's source
digest. `env.Templates` uses a module only when all three still hold in the process that runs
(see env.py); setup.py's build_py runs this for the wheel, and so for the DEB and the RPM.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import jinja2

from .env import (
    MANIFEST,
    PRECOMPILED,
    Templates,
    make_environment,
    manifest_header,
    packaged_template_dir,
    read_manifest,
)
from .env import source_digest as _digest


def precompile(dest: Optional[Path] = None, template_dir: Optional[Path] = None) -> list[str]:
    """Compile every template of `template_dir` (default: the packaged ones) into `dest`,
    replacing what was there. Returns the template names."""
    src = template_dir or Path(packaged_template_dir())
    out = dest or src / PRECOMPILED
    env = make_environment(jinja2.FileSystemLoader(str(src)))
    names = sorted(n for n in env.list_templates(extensions=["j2"])
                   if not n.startswith(PRECOMPILED + "/"))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        # a template that does not compile fails the build (ignore_errors=False)
        env.compile_templates(str(tmp), filter_func=names.__contains__, zip=None,
                              ignore_errors=False)
        lines = manifest_header()
        assert env.loader is not None
        for name in names:
            lines.append(f"{_digest(env.loader.get_source(env, name)[0])} {name}")
        (tmp / MANIFEST).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return names


def check(directory: Optional[Path] = None) -> str:
    """Why this process would not use the precompiled templates in `directory` (default: the
    package's), or "" if it uses every packaged template from there."""
    src = Path(packaged_template_dir())
    out = directory or src / PRECOMPILED
    digests, why = read_manifest(out)
    if digests is None:
        return why
    names = sorted(p.name for p in src.glob("*.j2"))
    missing = [n for n in names if n not in digests]
    if missing:
        return f"not precompiled: {' '.join(missing)}"
    templates = Templates(precompiled=out)
    for name in names:
        templates.env.get_template(name)
    unused = sorted(set(names) - set(templates.packaged.precompiled))
    return f"precompiled but not used: {' '.join(unused)}" if unused else ""


USAGE = """usage: python3 -m fwcfg_agent.render.cache [DEST]
       python3 -m fwcfg_agent.render.cache --check [DIR]"""


def main(argv: list[str]) -> int:
    if argv[:1] == ["--check"] and len(argv) <= 2:
        why = check(Path(argv[1]) if len(argv) > 1 else None)
        print(why or f"every template precompiled and used (jinja2 {jinja2.__version__})",
              file=sys.stderr)
        return 1 if why else 0
    if len(argv) > 1 or argv[:1] in (["-h"], ["--help"]):
        print(USAGE, file=sys.stderr)
        return 2
    dest = Path(argv[0]) if argv else None
    names = precompile(dest)
    print(f"precompiled {len(names)} templates with jinja2 {jinja2.__version__}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
