"""Debian 13 (trixie) guests: the release's own DEB installed with apt, and the scenarios of
releases.py (first and later boot, invalid payload, raw reader, rollback, each manager)."""

from __future__ import annotations

import pytest

from .releases import ReleaseTests

pytestmark = pytest.mark.guest


class TestTrixie(ReleaseTests):
    suite = "trixie"
