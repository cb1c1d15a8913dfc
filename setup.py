"""Build glue for what pyproject.toml cannot say.

- The one compiled part: fwcfg_agent.sources._portio (x86 Linux only). The extension is
  optional: on other architectures it is not attempted, and where it cannot be compiled (no
  compiler, no Python headers) the build warns and the package installs without it; the agent
  then reads fw_cfg through sysfs only.
- Two files made from the built package, in the build tree (so in the wheel, and through it in
  the DEB and the RPM): `fwcfg_agent/_codeid`, the digest of the agent's code and templates
  (fwcfg_agent/codeid.py), and `fwcfg_agent/templates/__compiled__/`, the templates precompiled
  by the building Python's jinja2 (fwcfg_agent/render/cache.py). Without jinja2 the build warns
  and the templates are compiled at run time instead.
- The metadata for setuptools older than 61 (Debian 11 has 52), which ignores pyproject.toml's
  [project] and [tool.setuptools] tables: `legacy_metadata()` translates them into setup()
  arguments, so pyproject.toml stays the one place the metadata is written. A key it does not
  know stops the build, rather than a package built without it.
"""

from __future__ import annotations

import ast
import importlib
import os
import platform
import re
import subprocess
import sys
from typing import Any

import setuptools
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

X86 = {"x86_64", "amd64", "i386", "i486", "i586", "i686"}


class OptionalBuildExt(build_ext):
    """build_ext that turns a failed compile into a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # any build failure leaves a sysfs-only install
            self._warn(e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            self._warn(e)

    @staticmethod
    def _warn(e: BaseException) -> None:
        sys.stderr.write(
            "WARNING: could not build fwcfg_agent.sources._portio "
            f"({e.__class__.__name__}: {e}); the raw fw_cfg reader will be unavailable, "
            "the sysfs reader still works\n"
        )


class BuildPy(build_py):
    """build_py, then the code digest and the precompiled templates of the built package."""

    def run(self) -> None:
        super().run()
        if self.dry_run or getattr(self, "editable_mode", False):
            return  # an editable install runs the checkout: codeid computes, nothing precompiled
        self._in_build("from fwcfg_agent.codeid import main; sys.exit(main(['--write']))")
        if self._in_build("import jinja2", probe=True) != 0:
            sys.stderr.write("WARNING: jinja2 cannot be imported by the building Python: the "
                             "templates are not precompiled (they will be compiled at run time)\n")
            return
        self._in_build("from fwcfg_agent.render.cache import main; sys.exit(main([]))")

    def _in_build(self, code: str, probe: bool = False) -> int:
        """Run `code` with the built package first on sys.path (-B: no __pycache__ in it);
        a failure fails the build, unless `probe`."""
        lib = os.path.abspath(self.build_lib)
        quiet = subprocess.DEVNULL if probe else None
        return subprocess.run([sys.executable, "-B", "-c",
                               f"import sys; sys.path.insert(0, {lib!r}); {code}"],
                              check=not probe, stdout=quiet, stderr=quiet).returncode

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs: list[str] = super().get_outputs(include_bytecode)
        package = os.path.join(self.build_lib, "fwcfg_agent")
        compiled = os.path.join(package, "templates", "__compiled__")
        made = [os.path.join(package, "_codeid")]
        if os.path.isdir(compiled):
            made += [os.path.join(compiled, n) for n in sorted(os.listdir(compiled))]
        return outputs + [f for f in made if os.path.isfile(f)]


def ext_modules() -> list[Extension]:
    if not sys.platform.startswith("linux") or platform.machine().lower() not in X86:
        return []
    return [
        Extension(
            "fwcfg_agent.sources._portio",
            sources=["fwcfg_agent/sources/_portio.c"],
            extra_compile_args=["-O2", "-Wall"],
            optional=True,
        )
    ]


HERE = os.path.dirname(os.path.abspath(__file__))


def _setuptools_reads_pyproject() -> bool:
    """setuptools 61 was the first to take the metadata from pyproject.toml."""
    m = re.match(r"(\d+)", setuptools.__version__)
    return m is not None and int(m.group(1)) >= 61


def _read_toml(path: str) -> dict[str, Any]:
    """tomllib (Python 3.11+), tomli, or on Debian 11 python3-toml (that suite's Build-Depends)."""
    for name in ("tomllib", "tomli"):
        try:
            reader = importlib.import_module(name)
        except ImportError:
            continue
        with open(path, "rb") as f:
            data: dict[str, Any] = reader.load(f)
            return data
    with open(path, encoding="utf-8") as f:
        data = importlib.import_module("toml").load(f)
        return data


def _attr_version(attr: str) -> str:
    """`version = { attr = "pkg.__version__" }`: the string literal assigned in pkg's
    __init__.py, read without importing the package (as setuptools does)."""
    module, _, name = attr.rpartition(".")
    path = os.path.join(HERE, *module.split("."), "__init__.py")
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise SystemExit(f"setup.py: no string {name} in {path}")


def legacy_metadata() -> dict[str, Any]:
    """pyproject.toml's [project] and [tool.setuptools] as setup() keyword arguments."""
    data = _read_toml(os.path.join(HERE, "pyproject.toml"))
    project: dict[str, Any] = dict(data["project"])
    tool: dict[str, Any] = dict(data.get("tool", {}).get("setuptools", {}))
    kw: dict[str, Any] = {"name": project.pop("name")}
    dynamic = project.pop("dynamic", [])
    for key in dynamic:
        if key != "version":
            raise SystemExit(f"setup.py: dynamic {key!r} is not translated for old setuptools")
    if "version" in dynamic:
        kw["version"] = _attr_version(tool.get("dynamic", {}).pop("version")["attr"])
        if not tool["dynamic"]:
            del tool["dynamic"]
    else:
        kw["version"] = project.pop("version")
    readme = project.pop("readme", None)
    if readme is not None:
        with open(os.path.join(HERE, readme), encoding="utf-8") as f:
            kw["long_description"] = f.read()
        kw["long_description_content_type"] = "text/markdown"
    simple = {"description": "description", "requires-python": "python_requires",
              "dependencies": "install_requires", "classifiers": "classifiers",
              "optional-dependencies": "extras_require"}
    for key, arg in simple.items():
        if key in project:
            kw[arg] = project.pop(key)
    if "license" in project:
        kw["license"] = project.pop("license")["text"]
    tools = {"packages": "packages", "script-files": "scripts", "package-dir": "package_dir",
             "package-data": "package_data", "exclude-package-data": "exclude_package_data"}
    for key, arg in tools.items():
        if key in tool:
            kw[arg] = tool.pop(key)
    if project or tool:
        raise SystemExit("setup.py: pyproject.toml keys not translated for setuptools "
                         f"{setuptools.__version__}: {sorted(project)} {sorted(tool)}")
    return kw


setup(ext_modules=ext_modules(),
      cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPy},
      **({} if _setuptools_reads_pyproject() else legacy_metadata()))
