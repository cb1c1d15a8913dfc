"""The jinja2 environment: packaged templates, overridden by /etc/fwcfg-agent/templates/."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import jinja2

from ..errors import ConfigError


def packaged_template_dir() -> Path:
    """`fwcfg_agent/templates` when installed; the checkout's `templates/` when run from it."""
    installed = Path(__file__).resolve().parent.parent / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent.parent / "templates"


def shquote(value: object) -> str:
    """Quote for a file that a shell sources (ifcfg): nothing in it can expand or run."""
    s = str(value)
    return "'" + s.replace("'", "'\"'\"'") + "'"


def yamlstr(value: object) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(str(value))


def keyfile(value: object) -> str:
    """A GKeyFile value: escape backslash, leading space and control characters."""
    s = str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
    s = s.replace("\r", "\\r")
    return "\\s" + s[1:] if s.startswith(" ") else s


def netmask(iface: ipaddress.IPv4Interface) -> str:
    return str(iface.netmask)


class Templates:
    def __init__(self, override_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir is not None and override_dir.is_dir():
            loaders.append(jinja2.FileSystemLoader(str(override_dir)))
        loaders.append(jinja2.FileSystemLoader(str(packaged_template_dir())))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self.env.filters.update(shquote=shquote, yamlstr=yamlstr, keyfile=keyfile,
                                netmask=netmask)

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
