"""The host half: `fwcfg-agent host check|args|preview`.

Run on the machine that starts the VM, before it starts: the guest's own parser and validators
check the payloads (same messages, same exit codes), the fw_cfg name rules and slot budget are
checked against what QEMU allows, and the arguments or XML each host needs are printed.

Nothing here imports pyudev or systemd-python: only the payload parser, the validators and the
model are shared with the guest, and `preview` runs the guest's own `apply --dry-run`.
"""
