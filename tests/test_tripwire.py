from __future__ import annotations

import pytest


def test_tripwire_catches_real_etc() -> None:
    with pytest.raises(AssertionError, match="real system"):
        open("/etc/hostname").close()


def test_tripwire_catches_real_sysfs() -> None:
    import os

    with pytest.raises(AssertionError, match="real system"):
        os.listdir("/sys/firmware/qemu_fw_cfg")
