"""The built-in hash functions give exactly hashlib's digests (they only avoid loading OpenSSL)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from fwcfg_agent.digest import hash_function

from .conftest import REPO


@pytest.mark.parametrize("name", ["sha1", "sha256"])
def test_same_digest_as_hashlib(name: str) -> None:
    data = b"fw_cfg\x00" * 1000
    assert hash_function(name)(data).hexdigest() == hashlib.new(name, data).hexdigest()


def test_openssl_is_not_loaded_where_python_has_its_own() -> None:
    code = ("import sys; from fwcfg_agent.digest import hash_function; "
            "hash_function('sha1')(b'x'); hash_function('sha256')(b'x'); "
            "print('_hashlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
