"""The subcommands. Each returns an exit code; errors propagate to the CLI as AgentError."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Optional

from . import __version__, fast
from .apply import compute_changes, execute, undo
from .config import AgentConfig, load
from .errors import AgentError, NoDeviceError, PayloadError, StateError
from .facts import Facts, gather
from .fsutil import read_or_none, selinux_enabled
from .journal import Journal, State, new_run_id, now_iso
from .lock import RunLock
from .log import MSG_APPLIED, MSG_INVALID, MSG_NOTHING, MSG_UNCHANGED, Log
from .model import Format
from .paths import Root
from .pipeline import Collected, Planned, choose_formats, collect, make_plan, needs_final_names


class Options(NamedTuple):
    root: Root
    config_file: Optional[Path]
    source: Optional[str]
    formats: Optional[list[Format]]
    dry_run: bool
    log: Log

    def config(self) -> AgentConfig:
        path = self.config_file or self.root.config_file
        return load(path, required=self.config_file is not None)


def boot_id(root: Root) -> str:
    path = Path("/proc/sys/kernel/random/boot_id") if root.is_host else \
        root / "proc/sys/kernel/random/boot_id"
    data = read_or_none(path)
    return data.decode().strip() if data else "unknown"


def _record(opts: Options, command: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {"run": extra.pop("run", None) or new_run_id(), "time": now_iso(),
            "boot_id": boot_id(opts.root), "version": __version__, "command": command,
            "outcome": outcome, **extra}


def _gather_facts(opts: Options, config: AgentConfig) -> tuple[Facts, tuple[Format, ...]]:
    """What the root looks like, and the formats to write. Where those formats name NICs by
    their kernel names, wait (bounded) for udev to finish naming them, then look again."""
    missing = fast.nics_missing  # the fast path waited already
    if missing is None:
        missing = fast.wait_for_nics(str(opts.root.path), config.device_wait)
    if missing:
        opts.log.warning(f"{missing} Ethernet NIC(s) of the hardware did not show up within "
                         f"{config.device_wait:g} s (no driver?); configuring what is there")
    facts = gather(opts.root)
    formats = choose_formats(config, opts.formats, facts)
    if opts.root.is_host and needs_final_names(formats):
        from .udev import wait_for_netdevs

        wait_for_netdevs(config.device_wait, opts.log)
        facts = gather(opts.root)
    return facts, formats


def _plan(opts: Options, config: AgentConfig, collected: Collected, facts: Facts,
          formats: tuple[Format, ...], *, write_cache: bool) -> Planned:
    cache = opts.root.template_cache if write_cache else None
    planned = make_plan(collected, config, formats, facts,
                        opts.root.template_dir, cache)
    for notice in planned.result.notices:
        opts.log.info(notice)
    for warning in planned.result.warnings:
        opts.log.warning(warning)
    return planned


def _invalid(opts: Options, journal: Optional[Journal], e: PayloadError,
             collected: Optional[Collected]) -> int:
    opts.log.error(f"invalid payload, nothing written: {e}", MSG_INVALID, entry=e.entry,
                   line=e.line, key=e.key)
    if journal is not None:
        journal.append(_record(opts, "apply", "invalid", error=str(e),
                               source=collected.source if collected else None,
                               entries=collected.describe() if collected else []))
    return e.exit_code


def cmd_apply(opts: Options) -> int:
    config = opts.config()
    root = opts.root
    journal = Journal(root.state_dir)
    with RunLock(root.lock_file):
        try:
            collected = collect(root, config, opts.source or config.source, opts.log)
        except NoDeviceError as e:
            opts.log.info(f"{e}: nothing to do", MSG_NOTHING)
            return 0
        except PayloadError as e:
            return _invalid(opts, None if opts.dry_run else journal, e, None)
        if not collected.entries:
            opts.log.info(fast.NO_ENTRIES_MESSAGE.format(source=collected.source), MSG_NOTHING,
                          source=collected.source)
            if not opts.dry_run:
                journal.append(_record(opts, "apply", "no-entries", source=collected.source,
                                       entries=[]))
                _record_snapshot(opts, collected, fast.no_entries_items)
            return 0
        try:
            state = journal.load_state()
        except StateError as e:
            opts.log.warning(f"{e}; starting with an empty state")
            state = State()
        if fast.miss and not opts.dry_run:
            opts.log.info(f"full run: {fast.miss}")
        facts, formats = _gather_facts(opts, config)
        if fast.nic_report and not opts.dry_run:
            opts.log.info(fast.nic_report)
        try:
            planned = _plan(opts, config, collected, facts, formats,
                            write_cache=not opts.dry_run)
        except PayloadError as e:
            return _invalid(opts, None if opts.dry_run else journal, e, collected)
        changes = compute_changes(planned.plan, root, state, journal)
        if opts.dry_run:
            _print_dry_run(planned, changes)
            return 0
        run = new_run_id()
        records = execute(changes, planned.plan, root, journal, state, run,
                          selinux=selinux_enabled(root.is_host), log=opts.log)
        journal.save_state(state)
        _set_hostname(opts, config, planned.plan.hostname)
        if root.is_host and records:
            from .activate import after_write

            after_write(root.path, (r["format"] for r in records), opts.log)
        _record_snapshot(opts, collected, lambda root: _applied_items(
            root, config, collected, planned))
        outcome = "changed" if records else "unchanged"
        journal.append(_record(opts, "apply", outcome, run=run, source=collected.source,
                               entries=collected.describe(),
                               formats=[f.value for f in planned.formats], files=records))
        journal.prune(config.keep_runs, state)
        if records:
            opts.log.info(f"applied {len(records)} change(s) from "
                          f"{', '.join(e.name for e in collected.entries)} "
                          f"({', '.join(f.value for f in planned.formats)})", MSG_APPLIED,
                          run=run, source=collected.source, changes=len(records))
        else:
            opts.log.info("nothing changed", MSG_UNCHANGED, source=collected.source)
        return 0


def _record_snapshot(opts: Options, collected: Collected,
                     items: Callable[[str], list[Any]]) -> None:
    """Let the next boot prove cheaply that nothing changed (see fast.py). Only a run the unit
    would make (no command-line overrides) through sysfs is recorded."""
    root = str(opts.root.path.resolve())
    if opts.formats or opts.config_file or opts.source or collected.source != "sysfs":
        fast.forget(root)
        return
    try:
        fast.record(root, items(root))
    except (OSError, ValueError) as e:
        fast.forget(root)
        opts.log.debug(f"no snapshot for the fast path: {e}")


def _applied_items(root: str, config: AgentConfig, collected: Collected,
                   planned: Planned) -> list[Any]:
    """What an applied run depended on: its entries, its files as written, and the rest."""
    entries = [(e.info.key, e.data) for e in collected.entries]
    files = [(f.path, f.content) for f in planned.plan.files]
    hostname = planned.plan.hostname if config.set_hostname else None
    entries_json = json.dumps(collected.describe(), sort_keys=True, separators=(",", ":"))
    return fast.input_items(root, entries, files, hostname, entries_json.encode(),
                            netdev_names=needs_final_names(planned.formats))


def _set_hostname(opts: Options, config: AgentConfig, hostname: Optional[str]) -> None:
    if not hostname or not opts.root.is_host or not config.set_hostname:
        return
    import _socket  # the socket module would load selectors and enum for these two calls

    short = hostname  # the kernel gets what /etc/hostname holds, as systemd does at boot
    try:
        if _socket.gethostname() != short:
            _socket.sethostname(short)
            opts.log.info(f"hostname set to {short}")
    except OSError as e:
        opts.log.warning(f"sethostname({short}): {e.strerror}")


def _print_dry_run(planned: Planned, changes: Sequence[Any]) -> None:
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


def cmd_diff(opts: Options) -> int:
    config = opts.config()
    root = opts.root
    journal = Journal(root.state_dir)
    try:
        collected = collect(root, config, opts.source or config.source, opts.log)
    except NoDeviceError as e:
        opts.log.info(f"{e}: nothing to do")
        return 0
    if not collected.entries:
        return 0
    try:
        state = journal.load_state()
    except StateError:
        state = State()
    facts, formats = _gather_facts(opts, config)
    planned = _plan(opts, config, collected, facts, formats, write_cache=False)
    changes = compute_changes(planned.plan, root, state, journal)
    import difflib

    for c in changes:
        a = (c.before or b"").decode("utf-8", "replace").splitlines(keepends=True)
        b = (c.after or b"").decode("utf-8", "replace").splitlines(keepends=True)
        old = f"a{c.path}" if c.before is not None else "/dev/null"
        new = f"b{c.path}" if c.after is not None else "/dev/null"
        sys.stdout.writelines(difflib.unified_diff(a, b, old, new))
        if c.before_mode is not None and c.after is not None and c.before_mode != c.mode:
            sys.stdout.write(f"mode {c.path}: {c.before_mode:04o} -> {c.mode:04o}\n")
    return 1 if changes else 0


def cmd_show(opts: Options, as_json: bool) -> int:
    config = opts.config()
    root = opts.root
    try:
        collected = collect(root, config, opts.source or config.source, opts.log)
    except NoDeviceError as e:
        collected = Collected("none", ())
        opts.log.info(str(e))
    settings: Optional[dict[str, Any]] = None
    error: Optional[str] = None
    warnings: list[str] = []
    formats: list[str] = []
    if collected.entries:
        facts, chosen = _gather_facts(opts, config)
        try:
            planned = make_plan(collected, config, chosen, facts, root.template_dir, None)
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
            print(f"entry {entry['name']}: {entry['size']} bytes, sha256 {entry['sha256']}")
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
            }
            for i in c.interfaces
        ],
        "files": planned.plan.paths(),
    }


def cmd_journal(opts: Options, as_json: bool) -> int:
    runs = Journal(opts.root.state_dir).runs()
    if as_json:
        json.dump(runs, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    for r in runs:
        entries = ", ".join(e["name"] for e in r.get("entries") or [])
        print(f"{r['run']}  {r.get('command')}  {r.get('outcome')}  source={r.get('source')}  "
              f"entries={entries or '-'}")
        for f in r.get("files") or []:
            print(f"    {f['action']:8} {f['path']}  backup={f.get('backup') or '-'}")
        if r.get("error"):
            print(f"    error: {r['error']}")
    return 0


def cmd_rollback(opts: Options, run_id: Optional[str]) -> int:
    root = opts.root
    journal = Journal(root.state_dir)
    with RunLock(root.lock_file):
        runs = journal.runs()
        changed = [r for r in runs if r.get("files") and r.get("command") in ("apply", "rollback")]
        if not changed:
            raise StateError("the journal has no run with changes to roll back")
        if run_id is None:
            run_id = changed[-1]["run"]
        ids = [r["run"] for r in changed]
        matches = [i for i in ids if i == run_id or i.startswith(run_id)]
        if len(matches) != 1:
            raise StateError(f"no single run matches {run_id!r} (see `fwcfg-agent journal`)")
        start = ids.index(matches[0])
        to_undo = list(reversed(changed[start:]))
        run = new_run_id()
        records = undo(to_undo, root, journal, run, selinux=selinux_enabled(root.is_host),
                       log=opts.log)
        try:
            state = journal.load_state()
        except StateError:
            state = State()
        # The files no longer match what fw_cfg asks for: the next apply runs in full.
        fast.forget(str(root.path))
        for rec in records:
            managed = state.files.get(rec["path"])
            if managed is not None and rec["sha256_after"] != managed.sha256:
                state.files.pop(rec["path"])
        journal.save_state(state)
        journal.append(_record(opts, "rollback", "changed" if records else "unchanged",
                               run=run, undone=[r["run"] for r in to_undo], files=records))
        opts.log.info(f"rolled back {', '.join(r['run'] for r in to_undo)}: "
                      f"{len(records)} file(s) restored", MSG_APPLIED, run=run)
        return 0


__all__ = ["AgentError", "Options", "cmd_apply", "cmd_diff", "cmd_journal", "cmd_rollback",
           "cmd_show"]
