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
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys

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


setup(ext_modules=ext_modules(),
      cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPy})
