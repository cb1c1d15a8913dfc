"""systemd system credentials for the agent: /run/credentials/@system/fwcfg-agent.X.

PID 1 imports credentials at boot, before any unit starts, from qemu's fw_cfg
(opt/io.systemd.credentials/NAME) and the kernel command line (systemd.set_credential=NAME:VALUE)
since systemd 251, and from SMBIOS type 11 OEM strings (io.systemd.credential:NAME=VALUE and
io.systemd.credential.binary:NAME=BASE64) since 252, into /run/credentials/@system/NAME (decoded,
one file each). It skips firmware sources in containers and confidential VMs.

A credential's name cannot hold "/", so the credential `fwcfg-agent.X` is the entry
`opt/fwcfg-agent/X`: under opt/ like every fw_cfg entry, so the default INCLUDE takes it and
EXCLUDE can leave out one credential (opt/fwcfg-agent/X) or all of them (opt/fwcfg-agent/*).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

from ..channels import (
    CREDENTIAL_PREFIX,
    CREDENTIALS_DIR,
    credential_entry_name,
    is_agent_credential,
    name_problem,
)
from ..errors import PayloadError, SourceError
from ..rootfs import Reader
from ..tuples import NamedTuple


class Credential(NamedTuple):
    credential: str  # the file's name: fwcfg-agent.X
    name: str  # the entry's name: opt/fwcfg-agent/X

    @property
    def where(self) -> str:
        return f"system credential {self.credential}"

    def read(self, reader: Reader) -> bytes:
        rel = f"{CREDENTIALS_DIR}/{self.credential}"
        data = reader.read(rel)
        if data is None:
            raise SourceError(f"{self.name}: cannot read {reader.path(rel)}")
        return data


def listed(reader: Reader) -> list[str]:
    """The names in the credentials directory that are for the agent (the listing recorded)."""
    return [n for n in reader.listdir(CREDENTIALS_DIR) or () if is_agent_credential(n)]


def credentials(reader: Reader,
                wants: Optional[Callable[[str], bool]] = None) -> list[Credential]:
    """The agent's credentials whose entry names WANTS (the config's INCLUDE and EXCLUDE)
    takes. One whose name cannot be an entry's is an error (exit 3) naming it, unless the
    config leaves it out: EXCLUDE=opt/fwcfg-agent/* turns the channel off, bad names too."""
    found = []
    for file in listed(reader):
        name = credential_entry_name(file)
        if wants is not None and not wants(name):
            continue
        problem = name_problem(file[len(CREDENTIAL_PREFIX):])
        if problem:
            raise PayloadError(f"system credential {ascii(file)[1:-1]}", problem)
        found.append(Credential(file, name))
    return found
