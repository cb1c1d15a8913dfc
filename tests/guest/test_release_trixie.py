"""Debian 13 (trixie) guests: the release's own DEB installed with apt, and the scenarios of
releases.py (first and later boot, invalid payload, raw reader, rollback, each manager).

Not part of `make test` by default (FWCFG_GUEST_RELEASES=bullseye,trixie adds them): under this
machine's software emulation (TCG) a Debian 13 guest runs two to four times slower than a Debian
12 one, and a first boot under ifupdown or netplan took 31-35 s of the agent's time, over the
unit's 30 s start limit, so the run is not a reliable gate yet (see the README's support table).
"""

from __future__ import annotations

import os

import pytest

from .releases import ReleaseTests

RELEASES = os.environ.get("FWCFG_GUEST_RELEASES", "bullseye").split(",")

pytestmark = [
    pytest.mark.guest,
    pytest.mark.skipif("trixie" not in RELEASES, reason="Debian 13 guests run only with "
                       "FWCFG_GUEST_RELEASES naming trixie (too slow under TCG for the gate)"),
]


class TestTrixie(ReleaseTests):
    suite = "trixie"
