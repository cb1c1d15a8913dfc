"""Rendering the templates without loading jinja2: a first boot's biggest cost.

Importing jinja2 costs about twice the interpreter's whole start-up, on every run that writes
anything. So the packages ship each template also as the Python code jinja2 compiles it to
(`python3 -m fwcfg_agent.render.cache` at build time; `generate`). That code needs only a small
runtime, which this module provides: the context, loops, macros, namespaces, attribute lookup
and the filters and tests of `filters.py`, jinja2's built-ins among them, as plain functions
(the code is generated against those, so it calls them plainly).

Safe by construction: a generated module is used only if it was compiled from exactly the
template source jinja2 would load now (an override in /etc/fwcfg-agent/templates included), and
anything this runtime does not implement (an unknown name, filter form, undefined variable...)
raises `Unsupported`; the caller then renders that template with jinja2 itself. The tests render
every golden case both ways and compare the bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from .filters import ALL_FILTERS, ALL_TESTS, SYNTAX, Unsupported, attr

TYPE_CHECKING = False  # typing is not loaded for this module: mypy reads it, Python does not
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence
    from typing import Any, Optional

    from .env import Templates

PACKAGED_CACHE = "__compiled__"  # in the template directory: what the packages precompile
LITE_DIR = "lite"  # in a cache directory: the generated code
ABI = 1  # the contract between `generate` and this runtime; bump when either changes
SUFFIX = ".lite.py"
_IMPORT = "from jinja2.runtime import "


class _Missing:
    def __repr__(self) -> str:
        return "missing"


missing: Any = _Missing()


class Undefined:
    """A name or attribute that does not exist. The templates use StrictUndefined, where any
    use is an error: here any use hands the template to jinja2, which reports it properly."""

    def __init__(self, hint: Optional[str] = None, obj: Any = missing,
                 name: Optional[str] = None, exc: Any = None) -> None:
        self._lite_name = name

    def _fail(self, *args: Any, **kwargs: Any) -> Any:
        raise Unsupported(f"undefined {self._lite_name!r}")

    __str__ = __iter__ = __len__ = __bool__ = __eq__ = __ne__ = __call__ = _fail
    __getitem__ = __contains__ = __add__ = __radd__ = __lt__ = __gt__ = _fail
    __hash__ = None  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._fail()


class TemplateRuntimeError(Exception):
    pass


class Namespace:
    """`namespace(...)`: attributes that `{% set ns.x = ... %}` can assign."""

    def __init__(self, **attrs: Any) -> None:
        object.__setattr__(self, "_lite_attrs", dict(attrs))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._lite_attrs[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setitem__(self, name: str, value: Any) -> None:
        self._lite_attrs[name] = value


class LoopContext:
    """`loop` in a for loop: index, index0, first, last, length, revindex, revindex0, cycle."""

    def __init__(self, iterable: Iterable[Any], undefined: Any, recurse: Any = None,
                 depth0: int = 0) -> None:
        if recurse is not None or depth0:
            raise Unsupported("recursive loops")
        self._items = list(iterable)
        self.length = len(self._items)
        self.index0 = -1

    def __iter__(self) -> Iterator[tuple[Any, LoopContext]]:
        for i, item in enumerate(self._items):
            self.index0 = i
            yield item, self

    @property
    def index(self) -> int:
        return self.index0 + 1

    @property
    def first(self) -> bool:
        return self.index0 == 0

    @property
    def last(self) -> bool:
        return self.index0 == self.length - 1

    @property
    def revindex(self) -> int:
        return self.length - self.index0

    @property
    def revindex0(self) -> int:
        return self.length - self.index0 - 1

    def cycle(self, *values: Any) -> Any:
        return values[self.index0 % len(values)]


class Macro:
    """`{% macro %}`: positional and keyword arguments, defaults in the macro's own code."""

    def __init__(self, environment: Any, func: Callable[..., str], name: str,
                 arguments: Sequence[str], catch_kwargs: bool, catch_varargs: bool,
                 caller: bool, default_autoescape: Any = None) -> None:
        if catch_kwargs or catch_varargs or caller:
            raise Unsupported(f"macro {name}: varargs, kwargs or caller")
        self._func = func
        self._arguments = tuple(arguments)

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        if len(args) > len(self._arguments):
            raise Unsupported("too many macro arguments")
        values = list(args)
        for name in self._arguments[len(args):]:
            values.append(kwargs.pop(name, missing))
        if kwargs:
            raise Unsupported(f"unknown macro arguments {sorted(kwargs)}")
        return self._func(*values)


class Environment:
    """What generated code asks of `environment`."""

    def __init__(self) -> None:
        self.filters = ALL_FILTERS
        self.tests = ALL_TESTS
        self.globals: dict[str, Any] = {"namespace": Namespace, "range": range, "dict": dict}
        self.undefined = Undefined
        self.concat = "".join

    def getattr(self, obj: Any, attribute: str) -> Any:
        try:
            return attr(obj, attribute)
        except Unsupported:
            return Undefined(obj=obj, name=attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        try:
            return obj[argument]
        except (AttributeError, TypeError, LookupError):
            if isinstance(argument, str):
                try:
                    return getattr(obj, argument)
                except AttributeError:
                    pass
            return Undefined(obj=obj, name=argument)


class _EvalContext:
    autoescape = False
    volatile = False


class Context:
    def __init__(self, parent: dict[str, Any]) -> None:
        self.parent = parent
        self.vars: dict[str, Any] = {}
        self.exported_vars: set[str] = set()
        self.eval_ctx = _EvalContext()

    def resolve_or_missing(self, key: str) -> Any:
        if key in self.vars:
            return self.vars[key]
        return self.parent.get(key, missing)

    def call(self, func: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(func, "jinja_pass_arg", None) is not None:
            raise Unsupported("a function that wants jinja2's context")
        kwargs.pop("_loop_vars", None)  # jinja2's bookkeeping for the scope of the call
        kwargs.pop("_block_vars", None)
        return func(*args, **kwargs)


def _unsupported(*args: Any, **kwargs: Any) -> Any:
    raise Unsupported("autoescaping, includes or template references")


def _identity(x: Any) -> Any:
    return x


def _str_join(seq: Iterable[Any]) -> str:
    return "".join(map(str, seq))


class _Markup(str):
    pass


ENVIRONMENT = Environment()
# Everything generated code may import from jinja2.runtime, as this runtime provides it.
RUNTIME: dict[str, Any] = {
    "LoopContext": LoopContext, "Macro": Macro, "Namespace": Namespace,
    "Undefined": Undefined, "TemplateRuntimeError": TemplateRuntimeError,
    "TemplateNotFound": TemplateRuntimeError, "TemplateReference": _unsupported,
    "Markup": _Markup, "escape": _unsupported, "markup_join": _unsupported,
    "str_join": _str_join, "identity": _identity, "internalcode": _identity,
    "missing": missing,
}


def packaged_template_dir() -> Path:
    """`fwcfg_agent/templates` when installed; the checkout's `templates/` when run from it."""
    installed = Path(__file__).resolve().parent.parent / "templates"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent.parent / "templates"


def packaged_cache_dir(template_dir: Path) -> Path:
    return template_dir / PACKAGED_CACHE


def template_dirs(override_dir: Optional[Path]) -> list[Path]:
    """Where templates are looked up, first hit wins: the override directory (if there is
    one), then the packaged templates. jinja2's loader and the light runtime both use this."""
    dirs = [packaged_template_dir()]
    if override_dir is not None and override_dir.is_dir():
        dirs.insert(0, override_dir)
    return dirs


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


class LiteTemplates:
    """Templates by name from `template_dirs` (first hit wins, as jinja2's loader does), run
    from the generated code in `code_dirs` when that code matches the template's source."""

    def __init__(self, template_dirs: Sequence[Path], code_dirs: Sequence[Path]) -> None:
        self.template_dirs = [str(d) for d in template_dirs]
        self.code_dirs = [str(d) for d in code_dirs]
        self._roots: dict[str, Callable[[Context], Iterator[str]]] = {}

    def _root(self, name: str) -> Callable[[Context], Iterator[str]]:
        root = self._roots.get(name)
        if root is not None:
            return root
        source = None
        for d in self.template_dirs:
            source = _read_text(os.path.join(d, name))
            if source is not None:
                break
        if source is None:
            raise Unsupported(f"template {name} not found")
        from importlib.machinery import SourceFileLoader

        for d in self.code_dirs:
            path = os.path.join(d, name + SUFFIX)
            if not os.path.isfile(path):
                continue
            module = f"fwcfg_agent.lite.{name}"
            namespace: dict[str, Any] = {**RUNTIME, "environment": ENVIRONMENT,
                                         "__name__": module}
            try:
                # through Python's bytecode cache (__pycache__, which the packages fill at
                # install time), checked against the file as for any module
                code = SourceFileLoader(module, path).get_code(module)
                if code is None:
                    continue
                exec(code, namespace)
            except Exception:
                continue  # damaged or foreign: the next directory, else jinja2
            if namespace.get("LITE_ABI") == ABI and namespace.get("SOURCE") == source \
                    and callable(namespace.get("root")):
                root = namespace["root"]
                self._roots[name] = root
                return root
        raise Unsupported(f"no generated code for the current {name}")

    def render(self, name: str, **context: Any) -> str:
        root = self._root(name)
        parent = {**ENVIRONMENT.globals, **context}
        try:
            return "".join(root(Context(parent)))
        except Unsupported:
            raise
        except Exception as e:  # whatever it is, jinja2 will say it properly
            raise Unsupported(f"{name}: {type(e).__name__}: {e}") from e


def generate(source: str, name: str) -> Optional[str]:
    """The module `LiteTemplates` runs for a template (None: this runtime cannot run it).
    Needs jinja2: run at build time, or when a run has loaded jinja2 anyway."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, **SYNTAX)
    # plain functions: the generated code calls them as f(value, *arguments)
    env.filters = dict(ALL_FILTERS)
    env.tests = dict(ALL_TESTS)
    try:
        code = env.compile(source, name=name, raw=True)
    except jinja2.TemplateError:
        return None  # a filter or test this runtime lacks, or a syntax error jinja2 reports
    first, _, rest = str(code).partition("\n")
    if not first.startswith(_IMPORT):
        return None
    names = {n.strip() for n in first[len(_IMPORT):].split(",")}
    if not names <= set(RUNTIME):
        return None
    return (f"# Generated by fwcfg-agent from the template {name} with jinja2 "
            f"{jinja2.__version__}: the code lite.py runs without jinja2. Do not edit.\n"
            f"LITE_ABI = {ABI}\nSOURCE = {source!r}\n{rest}")


def write(dest: Path, name: str, source: str) -> bool:
    """Generate `name` into `dest`, atomically; False if this runtime cannot run it."""
    text = generate(source, name)
    if text is None:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / (name + SUFFIX)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return True


class Renderer:
    """Render by template name: the light runtime where it can, jinja2 (loaded on first need)
    for the rest, with the same template search order: `override_dir`, then the packaged
    templates. After jinja2 rendered a template, its generated code is written to `cache_dir`,
    so the next run that renders it need not load jinja2."""

    def __init__(self, override_dir: Optional[Path] = None,
                 cache_dir: Optional[Path] = None) -> None:
        self.override_dir = override_dir
        self.cache_dir = cache_dir
        code_dirs = [packaged_cache_dir(packaged_template_dir()) / LITE_DIR]
        if cache_dir is not None:
            code_dirs.append(cache_dir / LITE_DIR)
        self.lite = LiteTemplates(template_dirs(override_dir), code_dirs)
        self._jinja: Optional[Templates] = None
        self.with_jinja: list[str] = []  # the templates jinja2 had to render

    def render(self, name: str, **context: Any) -> str:
        try:
            return self.lite.render(name, **context)
        except Unsupported:
            pass
        if self._jinja is None:
            from .env import Templates

            self._jinja = Templates(self.override_dir, self.cache_dir)
        text = self._jinja.render(name, **context)
        self.with_jinja.append(name)
        if self.cache_dir is not None:
            try:
                env = self._jinja.env
                source = env.loader.get_source(env, name)[0] if env.loader else None
                if source is not None:
                    write(self.cache_dir / LITE_DIR, name, source)
            except Exception:
                pass
        return text
