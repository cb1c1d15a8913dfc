"""The templates, rendered by jinja2: an override in /etc/fwcfg-agent/templates/ first (a file
there replaces the packaged one of the same name), then the packaged templates.

The packaged templates are also shipped precompiled (`python3 -m fwcfg_agent.render.cache` at
build time: `jinja2.Environment.compile_templates` into `templates/__compiled__/`, loaded with
`jinja2.ModuleLoader`), so that a run does not lex, parse and compile them. Code that jinja2
generated runs against that jinja2's runtime only, so the precompiled directory is used only
when its manifest names the jinja2 that runs now (its version and a checksum of its sources:
a distribution's patch keeps the version) and the agent code it was made for (`codeid`), and a
template's module only when the template's source is still the one it was compiled from.
Otherwise, and for every override, the template is compiled from its source.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Optional, Union

import jinja2

from ..codeid import template_dir
from ..errors import ConfigError
from ..runinfo import code_digest
from .filters import FILTERS, SYNTAX, TESTS

if TYPE_CHECKING:
    # a path: a string on the agent's own path (pathlib is not loaded there), or a Path
    StrPath = Union[str, os.PathLike[str]]

PRECOMPILED = "__compiled__"  # in the packaged template directory
MANIFEST = "MANIFEST"  # in the precompiled directory
MAGIC = "fwcfg-agent precompiled templates 1"


def packaged_template_dir() -> str:
    """`fwcfg_agent/templates` when installed; the checkout's `templates/` when run from it
    (codeid.template_dir, for the package this module is in)."""
    return template_dir(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def make_environment(loader: jinja2.BaseLoader) -> jinja2.Environment:
    """The one environment the templates are compiled and run with, at build time and at run
    time alike (the generated code depends on these settings)."""
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, **SYNTAX)
    env.filters.update(FILTERS)
    env.tests.update(TESTS)
    return env


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def sources_checksum(package: str) -> str:
    """CRC-32 over the name, length and bytes of each module of the package in the directory
    `package`, in name order (see jinja2_id)."""
    import binascii

    crc = 0
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name), "rb") as f:
                data = f.read()
            crc = binascii.crc32(f"{name}\0{len(data)}\0".encode(), crc)
            crc = binascii.crc32(data, crc)
    return f"crc32:{crc:08x}"


_jinja2_id: Optional[str] = None


def jinja2_id() -> str:
    """The running jinja2: its version and a checksum of its modules' sources. A distribution's
    patch (a security fix in compiler.py, say) keeps the version but changes the checksum.

    The checksum is CRC-32 (sources_checksum): every full run computes it, and over jinja2's
    half a megabyte of sources CRC-32 costs under a seventh of SHA-256's 13.6M instructions
    (without the SHA extensions, which TCG guests lack). It guards against an accidental
    mismatch (templates precompiled by one build of jinja2, run by another build of the same
    version), not against an attacker: one who can rewrite jinja2's modules has no need of the
    precompiled templates. A change within 32 consecutive bits is always seen; any other change
    is missed with a probability of 2**-32. A digest cached under the files' stat data was not
    the answer: it cannot help the run that pays most, the first boot (its state directory is
    empty, and the build that wrote the manifest saw other files, with other inodes)."""
    global _jinja2_id
    if _jinja2_id is None:
        package = os.path.dirname(os.path.abspath(jinja2.__file__))
        _jinja2_id = f"{jinja2.__version__} {sources_checksum(package)}"
    return _jinja2_id


def manifest_header() -> list[str]:
    """What a precompiled directory must say to be used by this process."""
    return [MAGIC, f"jinja2 {jinja2_id()}", f"code {code_digest().hex()}"]


def read_manifest(directory: StrPath) -> tuple[Optional[dict[str, str]], str]:
    """The source digest of each template precompiled in `directory`, if this process may use
    them; else None and why not."""
    manifest = os.path.join(directory, MANIFEST)
    try:
        with open(manifest, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        return None, f"no precompiled templates ({manifest}: {e})"
    header = manifest_header()
    if lines[:1] != header[:1]:
        return None, f"{manifest} is not a manifest of precompiled templates"
    if lines[1:2] != header[1:2]:
        made_with = (lines[1:2] or ["?"])[0].split(" ")[:2]
        if made_with == header[1].split(" ")[:2]:
            return None, (f"templates precompiled by another build of jinja2 "
                          f"{jinja2.__version__} (its sources differ)")
        return None, (f"templates precompiled with {' '.join(made_with)}, running "
                      f"jinja2 {jinja2.__version__}")
    if lines[2:3] != header[2:3]:
        return None, "templates precompiled for another build of the agent's code"
    digests: dict[str, str] = {}
    for line in lines[len(header):]:
        digest, sep, name = line.partition(" ")
        if not sep or not name:
            return None, f"{manifest}: bad line {line!r}"
        digests[name] = digest
    return digests, ""


class PackagedLoader(jinja2.BaseLoader):
    """The packaged templates: from their precompiled modules when those are valid (see the
    module's docstring), else compiled from source."""

    def __init__(self, template_dir: StrPath, precompiled_dir: Optional[StrPath]) -> None:
        self.source = jinja2.FileSystemLoader(os.fspath(template_dir))
        self.modules: Optional[jinja2.ModuleLoader] = None
        self.digests: dict[str, str] = {}
        self.unused_reason = "no precompiled templates asked for"
        if precompiled_dir is not None:
            digests, self.unused_reason = read_manifest(precompiled_dir)
            if digests is not None:
                self.digests = digests
                self.modules = jinja2.ModuleLoader(os.fspath(precompiled_dir))
        self.precompiled: list[str] = []  # the templates loaded from precompiled modules

    def get_source(self, environment: jinja2.Environment,
                   template: str) -> tuple[str, Optional[str], Optional[Callable[[], bool]]]:
        return self.source.get_source(environment, template)

    def list_templates(self) -> list[str]:
        return self.source.list_templates()

    def load(self, environment: jinja2.Environment, name: str,
             globals: Optional[MutableMapping[str, Any]] = None) -> jinja2.Template:
        expected = self.digests.get(name)
        if self.modules is not None and expected is not None:
            source = self.get_source(environment, name)[0]
            if source_digest(source) == expected:
                try:
                    template = self.modules.load(environment, name, globals)
                except Exception:  # missing or damaged module: compile the source instead
                    pass
                else:
                    self.precompiled.append(name)
                    return template
        return super().load(environment, name, globals)


class Templates:
    """Render templates by name (the `render.Renderer` the agent uses): `override_dir` first,
    then the packaged templates, precompiled ones from `precompiled` (True: the package's
    `__compiled__`; a directory; False: compile everything from source)."""

    def __init__(self, override_dir: Optional[StrPath] = None,
                 precompiled: Union[bool, StrPath] = True) -> None:
        template_dir = packaged_template_dir()
        precompiled_dir: Optional[StrPath] = None
        if not isinstance(precompiled, bool):
            precompiled_dir = precompiled
        elif precompiled:
            precompiled_dir = os.path.join(template_dir, PRECOMPILED)
        self.packaged = PackagedLoader(template_dir, precompiled_dir)
        loaders: list[jinja2.BaseLoader] = [self.packaged]
        if override_dir is not None and os.path.isdir(override_dir):
            loaders.insert(0, jinja2.FileSystemLoader(os.fspath(override_dir)))
        self.env = make_environment(jinja2.ChoiceLoader(loaders))

    def render(self, name: str, **context: Any) -> str:
        try:
            return self.env.get_template(name).render(**context)
        except jinja2.TemplateNotFound:
            raise ConfigError(f"template {name} not found (packaged templates: "
                              f"{packaged_template_dir()})") from None
        except jinja2.TemplateError as e:
            where = name
            if isinstance(e, jinja2.TemplateSyntaxError):
                where = f"{e.filename or name}:{e.lineno}"
            raise ConfigError(f"template {where}: {e}") from e
