"""Hash functions from Python's own built-in modules where it has them: hashlib would load
OpenSSL's libcrypto, which costs more than hashing a few small files. (RHEL builds Python
without them: hashlib there.)"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not loaded for this module: mypy reads it, Python does not
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

# hashlib's name -> Python's built-in modules that provide it, newest Python first
_BUILTIN = {"sha1": ("_sha1",), "sha256": ("_sha2", "_sha256")}  # _sha2: Python 3.12+


def hash_function(name: str) -> Callable[[bytes], Any]:
    """The constructor of hash `name` (sha1 or sha256), as hashlib.<name> gives it."""
    for module in _BUILTIN[name]:
        try:
            return getattr(__import__(module), name)  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib

    return getattr(hashlib, name)  # type: ignore[no-any-return]
