"""Build glue for the one compiled part: fwcfg_agent.sources._portio (x86 Linux only).

Everything else is in pyproject.toml. The extension is optional: on other architectures it is not
attempted, and where it cannot be compiled (no compiler, no Python headers) the build warns and
the package installs without it; the agent then reads fw_cfg through sysfs only.
"""

from __future__ import annotations

import platform
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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


setup(ext_modules=ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
