"""Debian 13 (trixie) guests: the release's own DEB installed with apt, and the scenarios of
releases.py (first and later boot, invalid payload, raw reader, rollback, each manager).

Part of `make test`; FWCFG_GUEST_RELEASES=bullseye leaves them out. Under this machine's
software emulation (TCG) a Debian 13 guest runs several times slower than a Debian 12 one, so its
test guests raise the agent's start limit (releases.TCG_START_LIMIT; the shipped unit keeps
30 s), and the README's support table says so.
"""

from __future__ import annotations

import os

import pytest

from .releases import ReleaseTests

RELEASES = os.environ.get("FWCFG_GUEST_RELEASES", "bullseye,trixie").split(",")

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif("trixie" not in RELEASES, reason="FWCFG_GUEST_RELEASES does not name "
                       "trixie"),
]


class TestTrixie(ReleaseTests):
    suite = "trixie"
