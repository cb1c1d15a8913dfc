"""The jinja2 environment: packaged templates, overridden by /etc/fwcfg-agent/templates/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from ..errors import ConfigError
from .cache import TemplateCache
from .filters import FILTERS, SYNTAX, TESTS
from .lite import packaged_cache_dir, packaged_template_dir, template_dirs


class Templates:
    """The templates, compiled through a bytecode cache: the one shipped in the package
    (`fwcfg-agent-precompile` at build time), then `cache_dir` (written at run time)."""

    def __init__(self, override_dir: Path | None = None,
                 cache_dir: Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = [
            jinja2.FileSystemLoader(str(d)) for d in template_dirs(override_dir)]
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            bytecode_cache=TemplateCache([packaged_cache_dir(packaged_template_dir())],
                                         cache_dir),
            **SYNTAX,
        )
        self.env.filters.update(FILTERS)
        self.env.tests.update(TESTS)

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
