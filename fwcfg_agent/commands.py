"""`apply`, `diff` and `show`: one full path. Each returns an exit code; errors propagate to
the CLI as AgentError.

The full path reads everything under the root through one rootfs.Reader, so that the run's
record of what it read (with what it wrote in place of the files it manages) is the snapshot
the next boot's fast path replays.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

from . import fast
from .changes import Change, clean_temps, compute, execute, record_outputs
from .config import AgentConfig, load, parse_config
from .errors import NoDeviceError, PayloadError, StateError
from .facts import Facts, gather, missing_ifupdown_tools
from .fast import NO_DEVICE_MESSAGE, NO_ENTRIES_MESSAGE, agent_facts
from .formats import Format
from .fsutil import selinux_enabled
from .journal import STATE, Journal, State
from .log import MSG_APPLIED, MSG_INVALID, MSG_NOTHING, MSG_UNCHANGED, Log
from .nics import Waiter
from .pipeline import Collected, Planned, choose_formats, collect, make_plan, needs_final_names
from .rootfs import Reader
from .runinfo import RawJSON, RunLock, append, dumps, new_run, record
from .tuples import NamedTuple

CONFIG = "etc/fwcfg-agent/agent.conf"
TEMPLATES = "etc/fwcfg-agent/templates"


class Options(NamedTuple):
    root: str  # absolute
    config_file: Optional[str]
    source: Optional[str]
    formats: Optional[list[Format]]
    dry_run: bool
    log: Log
    why: str = ""  # why the fast path handed over (logged by apply)
    waiter: Optional[Waiter] = None  # the fast path's NIC wait, not to be repeated

    @property
    def as_unit(self) -> bool:
        """A run as the unit makes it: no option changes what is read or written."""
        return not (self.formats or self.config_file or self.source)

    def config(self, reader: Reader) -> AgentConfig:
        if self.config_file is not None:
            return load(self.config_file, required=True)
        data = reader.read(CONFIG)
        path = reader.path(CONFIG)
        if data is None and os.path.lexists(path):
            load(path)  # says why it cannot be read (ConfigError), or reads it after all
        return parse_config(path, data)


def _gather_facts(opts: Options, reader: Reader, config: AgentConfig,
                  waiter: Waiter) -> tuple[Facts, tuple[Format, ...]]:
    """What the root looks like, and the formats to write. The NICs are waited for (bounded)
    first; where the formats name NICs by their kernel names, udev's names too."""
    missing = waiter.wait_for_nics(config.device_wait)
    if missing:
        opts.log.warning(f"{missing} Ethernet NIC(s) of the hardware did not show up within "
                         f"{config.device_wait:g} s (no driver?); configuring what is there")
    facts = gather(reader)
    formats = choose_formats(config, opts.formats, facts)
    if needs_final_names(formats):
        waiter.wait_for_udev_names(config.device_wait)
        facts = gather(reader, with_names=True)
    return facts, formats


def _plan(opts: Options, reader: Reader, config: AgentConfig, collected: Collected,
          waiter: Waiter) -> Planned:
    facts, formats = _gather_facts(opts, reader, config, waiter)
    for name in reader.listdir(TEMPLATES) or ():  # overrides are inputs too
        reader.read(f"{TEMPLATES}/{name}")
    for key, value in agent_facts().items():
        reader.fact("v", key, value)
    planned = make_plan(collected, config, formats, facts, reader.path(TEMPLATES))
    if Format.IFUPDOWN in formats:
        planned.result.warnings.extend(missing_ifupdown_tools(reader, planned.result.config))
    for notice in planned.result.notices:
        opts.log.info(notice)
    for warning in planned.result.warnings:
        opts.log.warning(warning)
    return planned


def _invalid(opts: Options, e: PayloadError, collected: Optional[Collected]) -> int:
    opts.log.error(f"invalid payload, nothing written: {e}", MSG_INVALID, entry=e.entry,
                   line=e.line, key=e.key)
    if not opts.dry_run:
        append(opts.root, record(opts.root, "apply", "invalid", error=str(e),
                                 source=collected.source if collected else None,
                                 entries=collected.describe() if collected else []))
    return e.exit_code


def _load_state(opts: Options, journal: Journal, reader: Reader) -> State:
    try:
        return journal.load_state(reader)
    except StateError as e:
        if opts.dry_run:
            opts.log.warning(f"{e}; going on as if the agent managed no files")
            return State()
        aside = journal.set_aside_state()
        reader.forget("f", STATE)
        opts.log.warning(f"{e}; moved it to {aside} and going on as if the agent managed no "
                         "files")
        return State()


def _save_snapshot(opts: Options, reader: Reader, outcome: str, source: str,
                   entries: list[dict[str, object]]) -> None:
    """Let the next boot replay this run. Only a run the unit would make through sysfs."""
    if not opts.as_unit or source == "raw":  # port reads are not recorded: no replay
        fast.forget(opts.root)
        return
    notes = [("o", "", outcome.encode()), ("s", "", source.encode()),
             ("j", "", dumps(entries).encode())]
    try:
        fast.save(opts.root, [*reader.record(), *notes])
    except (OSError, ValueError) as e:
        fast.forget(opts.root)
        opts.log.debug(f"no snapshot for the fast path: {e}")


def cmd_apply(opts: Options) -> int:
    root = opts.root
    reader = Reader(root)
    config = opts.config(reader)
    journal = Journal(root)
    waiter = opts.waiter or Waiter(root)
    with RunLock(root):
        if not opts.dry_run:
            journal.clean_temps()
            clean_temps(root)
        try:
            collected = collect(reader, config, opts.source or config.source, opts.log)
        except NoDeviceError:
            opts.log.info(NO_DEVICE_MESSAGE, MSG_NOTHING)
            return 0
        except PayloadError as e:
            return _invalid(opts, e, None)
        if opts.why and not opts.dry_run:
            opts.log.info(f"full run: {opts.why}")
        if not collected.entries:
            opts.log.info(NO_ENTRIES_MESSAGE.format(source=collected.source), MSG_NOTHING,
                          source=collected.source)
            if not opts.dry_run:
                append(root, record(root, "apply", "no-entries", source=collected.source,
                                    entries=[]))
                for key, value in agent_facts().items():
                    reader.fact("v", key, value)
                _save_snapshot(opts, reader, "no-entries", collected.source, [])
            return 0
        state = _load_state(opts, journal, reader)
        try:
            planned = _plan(opts, reader, config, collected, waiter)
        except PayloadError as e:
            return _invalid(opts, e, collected)
        changes = compute(planned.plan, root, state, journal)
        if opts.dry_run:
            _print_dry_run(planned, changes)
            return 0
        return _write(opts, reader, config, journal, state, collected, planned, changes,
                      waiter)


def _write(opts: Options, reader: Reader, config: AgentConfig, journal: Journal, state: State,
           collected: Collected, planned: Planned, changes: Sequence[Change],
           waiter: Waiter) -> int:
    root = opts.root
    run, _ = new_run()
    entries = collected.describe()
    base = record(root, "apply", "changed", run=run, source=collected.source, entries=entries,
                  formats=[f.value for f in planned.formats])
    if changes:  # what a rollback of this run brings back (see history.py)
        base["state_before"] = state.to_json()["files"]
    outcome = execute(changes, planned.plan, root, journal, state, run, base,
                      selinux=selinux_enabled(root == "/"), log=opts.log)
    files, dirs = outcome.files, outcome.dirs_created
    reader.set("f", STATE, journal.save_state(state))
    hostname = planned.plan.hostname if config.set_hostname else None
    _set_hostname(opts, hostname)
    if root == "/" and hostname:
        reader.set("h", "", hostname.encode())
    if root == "/" and files:
        from .activate import after_write

        after_write(root, (f["format"] for f in files), opts.log)
    record_outputs(reader, root, planned.plan, changes)
    final = {**base, "outcome": "changed" if files else "unchanged", "files": files}
    if dirs:
        final["dirs_created"] = dirs
    append(root, final, sync=bool(files))
    journal.prune(config.keep_runs, state)
    _save_snapshot(opts, reader, "unchanged", collected.source, entries)
    report = waiter.report
    if files:
        opts.log.info(f"applied {len(files)} change(s) from "
                      f"{', '.join(e.name for e in collected.entries)} "
                      f"({', '.join(f.value for f in planned.formats)})"
                      + (f"; {report}" if report else ""), MSG_APPLIED,
                      run=run, source=collected.source, changes=len(files))
    else:
        opts.log.info("nothing changed" + (f" ({report})" if report else ""), MSG_UNCHANGED,
                      source=collected.source)
    return 0


def _set_hostname(opts: Options, hostname: Optional[str]) -> None:
    if not hostname or opts.root != "/":
        return
    import _socket  # the socket module would load selectors and enum for these two calls

    try:  # the kernel gets what /etc/hostname holds, as systemd does at boot
        if _socket.gethostname() != hostname:
            _socket.sethostname(hostname)
            opts.log.info(f"hostname set to {hostname}")
    except OSError as e:
        opts.log.warning(f"sethostname({hostname}): {e.strerror}")


def _print_dry_run(planned: Planned, changes: Sequence[Change]) -> None:
    out = sys.stdout
    by_path = {c.path: c for c in changes}
    for f in planned.plan.files:
        c = by_path.pop(f.path, None)
        state = c.action if c else "unchanged"
        out.write(f"### Write {f.path} (mode {f.mode:04o}, {f.format.value}, {state})\n")
        out.write(f.content.decode("utf-8", "replace"))
        if not f.content.endswith(b"\n"):
            out.write("\n")
    for c in by_path.values():
        verb = "Remove" if c.after is None else "Restore"
        out.write(f"### {verb} {c.path}\n")


def _describe(node: Any) -> str:
    if node is None:
        return "missing"
    return f"symlink to {node.link}" if node.kind == "lnk" else f"{node.mode:04o}"


def cmd_diff(opts: Options) -> int:
    """What apply would change: the same plan and the same comparison, printed, not made."""
    root = opts.root
    reader = Reader(root)
    config = opts.config(reader)
    journal = Journal(root)
    try:
        collected = collect(reader, config, opts.source or config.source, opts.log)
    except NoDeviceError as e:
        opts.log.info(f"{e}: nothing to do")
        return 0
    if not collected.entries:
        return 0
    state = _load_state(opts._replace(dry_run=True), journal, reader)
    planned = _plan(opts, reader, config, collected, opts.waiter or Waiter(root))
    changes = compute(planned.plan, root, state, journal)
    import difflib

    for c in changes:
        a = (c.before.data if c.before else b"").decode("utf-8", "replace")
        b = (c.after.data if c.after else b"").decode("utf-8", "replace")
        old = f"a{c.path}" if c.before is not None else "/dev/null"
        new = f"b{c.path}" if c.after is not None else "/dev/null"
        sys.stdout.writelines(difflib.unified_diff(a.splitlines(keepends=True),
                                                   b.splitlines(keepends=True), old, new))
        if c.before is not None and c.after is not None and \
                (c.before.kind, c.before.mode) != (c.after.kind, c.after.mode):
            sys.stdout.write(f"mode {c.path}: {_describe(c.before)} -> {_describe(c.after)}\n")
    return 1 if changes else 0


def cmd_show(opts: Options, as_json: bool) -> int:
    root = opts.root
    reader = Reader(root)
    config = opts.config(reader)
    try:
        collected = collect(reader, config, opts.source or config.source, opts.log)
    except NoDeviceError as e:
        collected = Collected("none", ())
        opts.log.info(str(e))
    settings: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    warnings: list[str] = []
    formats: list[str] = []
    if collected.entries:
        try:
            planned = _plan(opts._replace(log=Log(quiet=True, use_journal=False)), reader,
                            config, collected, opts.waiter or Waiter(root))
            settings = _settings_json(planned)
            warnings = planned.result.warnings + planned.result.notices
            formats = [f.value for f in planned.formats]
        except PayloadError as e:
            error = str(e)
    entries = collected.describe()
    doc = {"source": collected.source, "entries": entries, "settings": settings,
           "formats": formats, "warnings": warnings, "error": error}
    if as_json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(f"source: {collected.source}")
        for entry in entries:
            print(f"entry {entry['name']} ({entry.get('channel', 'fw_cfg')}): {entry['size']} "
                  f"bytes, sha256 {entry['sha256']}")
        if error:
            print(f"error: {error}")
        if settings:
            print(json.dumps(settings, indent=2))
        for w in warnings:
            print(f"note: {w}")
    return 3 if error else 0


def _settings_json(planned: Planned) -> dict[str, Any]:
    c = planned.result.config
    return {
        "hostname": c.hostname,
        "domain": c.domain,
        "dns": [str(a) for a in c.dns],
        "search": list(c.search),
        "extra": dict(c.extra),
        "interfaces": [
            {
                "name": i.name, "mac": i.mac, "bootproto": i.bootproto.value,
                "addresses": [str(a) for a in i.addresses],
                "gateway": str(i.gateway) if i.gateway else None,
                "gateway6": str(i.gateway6) if i.gateway6 else None,
                "routes": [{"to": str(r.destination),
                            "via": str(r.gateway) if r.gateway else None,
                            "metric": r.metric} for r in i.routes],
                "mtu": i.mtu, "extra": dict(i.extra), "source": list(i.source),
                # issue 14: IPv6, routing, VLANs, bonds, bridges
                "ipv6": {"disabled": i.ipv6_disabled, "init": i.ipv6_init,
                         "autoconf": i.ipv6_autoconf, "dhcp6": i.dhcp6},
                "defroute": i.defroute, "defroute6": i.defroute6, "metric4": i.metric4,
                "metric6": i.metric6,
                "peerdns": i.peerdns, "kind": i.kind, "parent": i.parent, "vlan_id": i.vlan_id,
                "bond_options": dict(i.bond_options), "stp": i.stp,
                "forward_delay": i.forward_delay, "master": i.master,
            }
            for i in c.interfaces
        ],
        "files": planned.plan.paths(),
    }


def root_path(given: str) -> str:
    return os.path.realpath(given)


__all__ = ["Options", "RawJSON", "cmd_apply", "cmd_diff", "cmd_show", "root_path"]
