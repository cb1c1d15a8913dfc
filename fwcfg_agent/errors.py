"""One error hierarchy. Parsers and readers raise; only the CLI decides what to do.

Only builtin modules are imported here: the fast path uses this module.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


class AgentError(Exception):
    """Base of every error the agent reports without a traceback."""

    exit_code = 1


class ConfigError(AgentError):
    """The agent's own configuration (agent.conf, command line) is wrong."""

    exit_code = 2


class PayloadError(AgentError):
    """An fw_cfg entry's payload is invalid. Names the entry, the line and the key."""

    exit_code = 3

    def __init__(
        self,
        entry: str,
        reason: str,
        *,
        line: "Optional[int]" = None,
        key: "Optional[str]" = None,
    ) -> None:
        self.entry = entry
        self.line = line
        self.key = key
        self.reason = reason
        where = _short(entry)
        if line is not None:
            where += f", line {line}"
        if key is not None:
            where += f", key {_short(key)}"
        super().__init__(f"{where}: {reason}")


def _short(text: str, limit: int = 80) -> str:
    """A name from a payload, as a message shows it: bounded (a key may be thousands of
    characters long)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


class SourceError(AgentError):
    """An input could not be read: fw_cfg (device, sysfs tree, permissions, a malformed file
    directory), a malformed SMBIOS table, an unreadable system credential."""

    exit_code = 4


class NoDeviceError(SourceError):
    """There is no fw_cfg device at all: not an error for the boot, only a fact."""

    exit_code = 0


class LockError(AgentError):
    """Another run holds the lock."""

    exit_code = 5


class StateError(AgentError):
    """The journal or a backup is missing or damaged."""

    exit_code = 6


class RootError(AgentError):
    """The root cannot be used: a path the agent must read or write is of the wrong type,
    read-only, or on a full file system."""

    exit_code = 7

    def __init__(self, path: str, error: "OSError | str") -> None:
        self.path = path
        reason = error if isinstance(error, str) else _reason(error)
        super().__init__(f"{path}: {reason}")


def _reason(e: "OSError") -> str:
    import errno

    hints = {
        errno.EISDIR: "is a directory where the agent needs a file",
        errno.ENOTDIR: "a component of the path is a file where the agent needs a directory",
        errno.ENOSPC: "no space left on the file system",
        errno.EROFS: "the file system is read-only",
        errno.EPERM: "not permitted (immutable file or directory?)",
        errno.EACCES: "permission denied",
        errno.ELOOP: "too many levels of symbolic links",
        errno.EEXIST: "exists and is not what the agent expected",
    }
    return hints.get(e.errno or 0, e.strerror or str(e))
