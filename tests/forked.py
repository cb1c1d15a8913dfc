"""Test support: run a function in a forked child (its own chroot or mount namespace stays
there) and get its result back."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable


def in_child(fn: Callable[[], object]) -> object:
    """fn() in a forked child; its result (pickled), or its exception raised here. The child's
    changes to its root or mounts are its own, so the tripwire and the write guard, which watch
    this machine's paths, are off there."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            from tests import conftest
            from tests.agent import guard

            conftest._armed = False
            guard.disarm()
            os.close(r)
            try:
                out: object = fn()
            except BaseException as e:  # reported to the parent
                out = e
            os.write(w, pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = pickle.loads(data)
    if isinstance(result, BaseException):
        raise result
    return result
