"""The site's sops file ``sites/<site>/secrets.sops.yaml`` (and the engines' ``platform/git.sops.yaml``): init,
set, rotate, list.

Every change is made on an encrypted copy next to the file and renamed over it, so a failure
(wrong key, killed process) leaves the previous file valid. Values never touch argv or disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from generator.redact import shown_text
from generator.errors import UsageError
from generator.inputs import read_input
from generator.layout import Repo
from generator.model import SECRET_KEY_RE
from generator.platform import GIT_SOPS_FILE
from generator.secrets.keys import ADOPTED_KEY, ADOPTED_SALT, FINGERPRINT_KEY, GENERATED, SALT_KEY, rotation_refusal
from generator.secrets.sops_file import check_sops_config, check_structure
from generator.tools import sops
from generator.writer import replace_file

SECRETS_FILE = "secrets.sops.yaml"


@dataclass(frozen=True)
class SecretsFile:
    repo: Repo
    site: str

    @property
    def path(self) -> Path:
        return self.repo.site_dir(self.site) / SECRETS_FILE

    @property
    def rel(self) -> str:
        return f"sites/{self.site}/{SECRETS_FILE}"

    def exists(self) -> bool:
        return self.path.is_file()

    def encrypted(self) -> bytes:
        """The file's bytes, through the input gate (read once within a render: ``inputs.reading_once``)."""
        return read_input(self.path, self.rel, root=self.repo.root)

    def digest(self) -> str:
        """sha256 of the encrypted bytes: public, changes whenever sops rewrites the file."""
        return hashlib.sha256(self.encrypted()).hexdigest()

    def key_names(self) -> list[str]:
        """The keys the file holds, without decrypting (sops leaves key names in plaintext)."""
        return check_structure(self.path, self.rel, self.repo.root) if self.exists() else []

    def read(self) -> dict[str, str]:
        if not self.exists() and not self.path.is_symlink():
            raise UsageError(f"{self.rel}: no such file; run 'generator secrets init'")
        check_structure(self.path, self.rel, self.repo.root)
        return sops.decrypt(self.encrypted(), self.rel, self.repo.root)

    def init(self) -> dict[str, str]:
        """Create the file with generated keys, or add the generated keys it lacks. Never overwrites."""
        check_sops_config(self.repo.root)
        if not self.exists():
            values = {key: make() for key, make in GENERATED.items()}
            data = sops.encrypt_new(values, self.rel, self.repo.root)
            replace_file(self.path, data)
            return {key: "created" for key in sorted(values)}
        current = self.read()
        report = {key: "unchanged" for key in sorted(current)}
        if ADOPTED_KEY in current and SALT_KEY not in current:
            raise UsageError(f"{self.rel}: {ADOPTED_SALT}; set the original's value: "
                             f"generator secrets set --site {self.site} {SALT_KEY}")
        missing = {key: make() for key, make in GENERATED.items() if key not in current}
        if missing:
            self._edit(missing)
            report.update({key: "created" for key in missing})
        return report

    def adopt(self, values: dict[str, str], origin: str) -> list[str]:
        """Create the file with a running install's values: none is generated but the fingerprint key, and the
        marker says so (``secrets init`` and ``rotate`` then never make a salt key for it)."""
        check_sops_config(self.repo.root)
        if self.exists():
            raise UsageError(f"{self.rel} exists; an adopted site starts from the original's values only")
        if SALT_KEY not in values:
            raise UsageError(f"{self.rel}: {ADOPTED_SALT}: the original has none")
        data = sops.encrypt_new({**values, FINGERPRINT_KEY: GENERATED[FINGERPRINT_KEY](), ADOPTED_KEY: origin},
                                self.rel, self.repo.root)
        replace_file(self.path, data)
        return sorted(values)

    def set(self, key: str, value: str) -> str:
        check_key_name(key)
        if not value:
            raise UsageError(f"{key}: empty value on stdin; nothing written")
        current = self.read()
        if current.get(key) == value:
            return "unchanged"
        self._edit({key: value})
        return "updated" if key in current else "created"

    def set_many(self, values: dict[str, str]) -> dict[str, str]:
        """Store several values at once (one re-encryption). Used by bootstrap."""
        current = self.read() if self.exists() else {}
        changes = {k: v for k, v in values.items() if current.get(k) != v}
        if changes:
            self._edit(changes)
        return {k: ("unchanged" if k not in changes else "updated" if k in current else "created") for k in values}

    def adopted(self) -> bool:
        """Whether `generator adopt` made this file (its marker's name is readable without the key)."""
        return ADOPTED_KEY in self.key_names()

    def rotate(self, key: str, *, force: bool) -> str:
        refusal = rotation_refusal(key, force, adopted=self.adopted())
        if refusal:
            raise UsageError(f"{self.rel}: {refusal}")
        current = self.read()
        self._edit({key: GENERATED[key]()})
        return "rotated" if key in current else "created"

    def _edit(self, values: dict[str, str]) -> None:
        check_sops_config(self.repo.root)
        if not self.exists():
            data = sops.encrypt_new(dict(values), self.rel, self.repo.root)
            replace_file(self.path, data)
            return
        for stale in self.path.parent.glob(f".edit-*.{SECRETS_FILE}"):
            stale.unlink()  # an encrypted copy left by a killed edit
        fd, tmp = tempfile.mkstemp(prefix=".edit-", suffix=f".{SECRETS_FILE}", dir=self.path.parent)  # sops reads the format from the suffix
        os.close(fd)
        try:
            shutil.copyfile(self.path, tmp)  # ciphertext only
            for key, value in sorted(values.items()):
                sops.set_value(Path(tmp), key, value, self.rel, self.repo.root)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class GitCredentialFile(SecretsFile):
    """``platform/git.sops.yaml``, the engines' git credential: a sops file like a site's, at the repository level."""

    @property
    def path(self) -> Path:
        return self.repo.root / GIT_SOPS_FILE

    @property
    def rel(self) -> str:
        return GIT_SOPS_FILE


def credential_store(repo: Repo) -> GitCredentialFile:
    return GitCredentialFile(repo, "")


def check_key_name(key: str) -> None:
    if key == FINGERPRINT_KEY:
        raise UsageError(f"{key} is managed by the generator")
    if not SECRET_KEY_RE.match(key):
        raise UsageError(f"{shown_text(key)} is not a valid secret key name (UPPER_SNAKE_CASE)")
