"""fwcfg-agent: hostname and static network settings from QEMU fw_cfg."""

__version__ = "0.1.0"
