"""/etc/fwcfg-agent/agent.conf: KEY=VALUE lines, parsed by the payload parser."""

from __future__ import annotations

import fnmatch
import os
from typing import Optional

from . import validate
from .errors import ConfigError, PayloadError
from .formats import Format
from .payload import parse
from .tuples import NamedTuple

DEFAULT_INCLUDE = ("opt/*",)
# Namespaces owned by other tools (systemd credentials, Ignition, Flatcar, cloud-init) or reserved
# by QEMU itself.
DEFAULT_EXCLUDE = (
    "opt/io.systemd.credentials/*",
    "opt/com.coreos/*",
    "opt/org.flatcar-linux/*",
    "opt/io.cloud-init/*",
    "opt/ovmf/*",
    "opt/org.qemu/*",
)
SOURCES = ("auto", "sysfs", "raw")


class AgentConfig(NamedTuple):
    formats: Optional[tuple[Format, ...]] = None  # None: detect from the root
    include: tuple[str, ...] = DEFAULT_INCLUDE
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    max_entry_size: int = 1 << 20
    device_wait: float = 5.0
    default_interface: str = "eth0"
    source: str = "auto"
    set_hostname: bool = True
    keep_runs: int = 50

    def wants(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.include) and not any(
            fnmatch.fnmatchcase(name, p) for p in self.exclude
        )


def parse_formats(words: list[str], where: str) -> tuple[Format, ...]:
    out: list[Format] = []
    for w in words:
        try:
            out.append(Format(w))
        except ValueError:
            names = ", ".join(f.value for f in Format)
            raise ConfigError(f"{where}: unknown format {w!r} (one of {names})") from None
    return tuple(dict.fromkeys(out))


def load(path: str | os.PathLike[str], *, required: bool = False) -> AgentConfig:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if required:
            raise ConfigError(f"{path}: no such file") from None
        return AgentConfig()
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    return parse_config(path, data)


def parse_config(path: str | os.PathLike[str], data: bytes | None) -> AgentConfig:
    """agent.conf's settings from its bytes (None: no file, the defaults). `path` names it in
    messages."""
    if data is None:
        return AgentConfig()
    try:
        values = {a.key: a for a in parse(str(path), data).assignments}
    except PayloadError as e:
        raise ConfigError(str(e)) from None

    def err(key: str, reason: str) -> ConfigError:
        return ConfigError(f"{path}, line {values[key].line}, key {key}: {reason}")

    def number(key: str, default: float, lo: float, hi: float) -> float:
        if key not in values:
            return default
        try:
            n = float(values[key].value)
        except ValueError:
            raise err(key, f"{values[key].value!r} is not a number") from None
        if not lo <= n <= hi:
            raise err(key, f"{n:g} is not between {lo:g} and {hi:g}")
        return n

    def words(key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(values[key].value.split()) if key in values else default

    formats: Optional[tuple[Format, ...]] = None
    if "FORMATS" in values and values["FORMATS"].value.strip() not in ("", "auto"):
        formats = parse_formats(values["FORMATS"].value.split(),
                                f"{path}, line {values['FORMATS'].line}")
    source = values["SOURCE"].value if "SOURCE" in values else "auto"
    if source not in SOURCES:
        raise err("SOURCE", f"{source!r} is not one of {', '.join(SOURCES)}")
    set_hostname = values["SET_HOSTNAME"].value.lower() if "SET_HOSTNAME" in values else "yes"
    if set_hostname not in ("yes", "no", "true", "false", "1", "0"):
        raise err("SET_HOSTNAME", f"{set_hostname!r} is not yes or no")
    default_interface = values["DEFAULT_INTERFACE"].value if "DEFAULT_INTERFACE" in values \
        else "eth0"
    try:
        validate.interface_name(default_interface)
    except ValueError as e:
        raise err("DEFAULT_INTERFACE", str(e)) from None
    known = {"FORMATS", "INCLUDE", "EXCLUDE", "MAX_ENTRY_SIZE", "DEVICE_WAIT",
             "DEFAULT_INTERFACE", "SOURCE", "SET_HOSTNAME", "KEEP_RUNS"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown settings: {', '.join(unknown)}")
    return AgentConfig(
        formats=formats,
        include=words("INCLUDE", DEFAULT_INCLUDE),
        exclude=words("EXCLUDE", DEFAULT_EXCLUDE),
        max_entry_size=int(number("MAX_ENTRY_SIZE", 1 << 20, 1, 1 << 30)),
        device_wait=number("DEVICE_WAIT", 5.0, 0, 60),
        default_interface=default_interface,
        source=source,
        set_hostname=set_hostname in ("yes", "true", "1"),
        keep_runs=int(number("KEEP_RUNS", 50, 1, 10000)),
    )
