"""What every fw_cfg reader offers: a directory of entries and bounded reads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..tuples import NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable


class EntryInfo(NamedTuple):
    """One fw_cfg file as the directory lists it."""

    name: str
    key: int
    size: int


class Entry(NamedTuple):
    """An entry's directory record with the bytes read from it."""

    info: EntryInfo
    data: bytes

    @property
    def name(self) -> str:
        return self.info.name


class Source(Protocol):
    """A way of reading fw_cfg: the kernel's sysfs tree or the device itself."""

    #: "sysfs" or "raw", recorded in the journal and in `show --json`.
    kind: str

    def entries(self, wanted: Callable[[str], bool] | None = None) -> list[EntryInfo]:
        """Every file in the fw_cfg directory, in the device's order; with `wanted`, only the
        files whose names it accepts (the others' sizes are not looked up)."""
        ...

    def read(self, entry: EntryInfo) -> bytes:
        """The entry's bytes: exactly `entry.size` of them, never more read from the device."""
        ...

    def close(self) -> None:
        """Release the device (rebind the kernel driver, drop I/O permissions)."""
        ...
