"""The formats' table (formats.py) is the one place each format is defined: every entry is
complete, and everything else reads it."""

from __future__ import annotations

import shutil

import pytest

from fwcfg_agent.formats import CLOUD_INIT_DROPIN, SPECS, Format, managed_paths
from fwcfg_agent.journal import managed_path

from .conftest import REPO


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_has_an_entry_with_templates(fmt: Format) -> None:
    spec = SPECS[fmt]
    assert spec.files
    for f in spec.files:
        assert (REPO / "templates" / f.template).is_file(), f.template
        assert f.path.startswith("/etc/")
        assert "{" not in f.path or f.per_interface


@pytest.mark.parametrize("fmt", [f for f in Format if SPECS[f].network])
def test_every_network_format_names_the_real_program_that_checks_it(fmt: Format) -> None:
    """tests/test_render_consumers.py runs these on the rendered files."""
    consumer = SPECS[fmt].consumer
    assert consumer, f"{fmt} names no consumer"
    assert shutil.which(consumer[0]), f"{consumer[0]} is not installed (tools/bootstrap)"
    assert SPECS[fmt].markers, f"{fmt} cannot be detected"


def test_managed_paths_cover_every_file_a_format_writes() -> None:
    for spec in SPECS.values():
        for f in spec.files:
            path = f.path.format(name="eth0", label="enx525400123456")
            assert managed_path(path), path
    assert managed_path(CLOUD_INIT_DROPIN.path)
    files, dirs = managed_paths()
    assert "/etc/hostname" in files and "/etc/systemd/network/" in dirs
    for bad in ("/etc/passwd", "/etc/systemd/network/../../passwd", "/etc/systemd/network/",
                "/etc/systemd/network/a/b", "etc/hostname", "/etc/hostname\n"):
        assert not managed_path(bad), bad
