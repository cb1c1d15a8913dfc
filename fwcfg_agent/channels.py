"""The ways entries reach the agent besides fw_cfg: SMBIOS OEM strings and systemd's system
credentials. Their names and paths, and the cheap check the boot's fast path makes.

    fw_cfg      opt/NAME items of QEMU's fw_cfg device (sources/sysfs.py, sources/raw.py)
    smbios      SMBIOS type 11 OEM strings `fwcfg-agent:NAME=TEXT` and
                `fwcfg-agent.base64:NAME=BASE64`, read from the kernel's copy of the DMI table
                (sources/dmi.py)
    credential  system credentials `fwcfg-agent.X` that PID 1 (systemd 251 and later: fw_cfg
                and the kernel command line; 252 and later: SMBIOS too) imported into
                /run/credentials/@system; entry name `opt/fwcfg-agent/X` (sources/credentials.py)

Only builtin modules are imported here: the fast path uses this module.
"""

from .rootfs import chase, listing, read_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

FW_CFG = "fw_cfg"
SMBIOS = "smbios"
CREDENTIAL = "credential"
CHANNELS = (FW_CFG, SMBIOS, CREDENTIAL)

# The kernel's copy of the SMBIOS structure table (Linux 4.2 and later, built in with
# CONFIG_DMI: no module, unlike /sys/firmware/dmi/entries which needs dmi_sysfs).
DMI_TABLE = "sys/firmware/dmi/tables/DMI"
OEM_TEXT = b"fwcfg-agent:"
OEM_BASE64 = b"fwcfg-agent.base64:"
# Every OEM string for the agent holds this; so does a systemd credential string
# (io.systemd.credential:fwcfg-agent.X=...) that PID 1 imports into the credentials directory.
MARK = b"fwcfg-agent"

# Where PID 1 puts the system credentials it imported at boot.
CREDENTIALS_DIR = "run/credentials/@system"
CREDENTIAL_PREFIX = "fwcfg-agent."
# A credential's name cannot hold "/": `fwcfg-agent.X` becomes the entry opt/fwcfg-agent/X, in
# the opt/ namespace INCLUDE and EXCLUDE speak of.
CREDENTIAL_NAMESPACE = "opt/fwcfg-agent/"

MAX_NAME = 255


def name_problem(name: str) -> "Optional[str]":
    """Why NAME cannot be an entry's name (None when it can): 1 to 255 printable ASCII
    characters, no space. Names reach logs, the journal and INCLUDE/EXCLUDE patterns."""
    if not name:
        return "the name is empty"
    if len(name) > MAX_NAME:
        return f"the name is {len(name)} characters long, more than {MAX_NAME}"
    for c in name:
        if not "!" <= c <= "~":
            return f"the name holds {c!r}: only printable ASCII without spaces is allowed"
    return None


def credential_entry_name(credential: str) -> str:
    """The entry name of the credential `fwcfg-agent.X`: opt/fwcfg-agent/X."""
    return CREDENTIAL_NAMESPACE + credential[len(CREDENTIAL_PREFIX):]


def is_agent_credential(credential: str) -> bool:
    return credential.startswith(CREDENTIAL_PREFIX)


def dmi_mentions_agent(table: "Optional[bytes]") -> bool:
    """Whether the DMI table may hold an OEM string for the agent. No false negatives: every
    such string contains MARK verbatim (the table keeps strings as they are)."""
    return table is not None and MARK in table


def credentials_for_agent(names: "Optional[bytes]") -> bool:
    """Whether a listing (rootfs.listing: names, one a line) names a credential for the agent."""
    return names is not None and any(
        is_agent_credential(n.decode("utf-8", "surrogateescape")) for n in names.split(b"\n"))


def any_agent_input(root: str) -> bool:
    """Whether anything besides fw_cfg may carry entries for the agent: an OEM string that
    mentions it, or a credential for it. One read of the DMI table (a few KiB) and one
    directory listing; a True may be a false alarm (the full path then decides), a False is
    sure."""
    if dmi_mentions_agent(read_bytes(chase(root, DMI_TABLE))):
        return True
    return credentials_for_agent(listing(chase(root, CREDENTIALS_DIR)))
