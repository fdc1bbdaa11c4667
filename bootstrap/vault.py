"""The site's sops file as bootstrap sees it: read once, and every new credential written
*before* the service is changed, so a crash never leaves a credential only in a service."""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.secrets.store import SecretsFile


@dataclass
class Vault:
    store: SecretsFile
    dry_run: bool = False
    values: dict[str, str] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)

    @classmethod
    def open(cls, store: SecretsFile, dry_run: bool) -> "Vault":
        return cls(store, dry_run, store.read() if store.exists() else {})

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def remember(self, key: str, value: str) -> bool:
        """Store ``value`` now (durably). True when the file changed."""
        if self.values.get(key) == value:
            return False
        if not self.dry_run:
            self.store.set_many({key: value})
            self.written.append(key)
        self.values[key] = value
        return True

    def remember_many(self, values: dict[str, str]) -> None:
        """Store several values in one durable write (a credential pair the service just made)."""
        changed = {k: v for k, v in values.items() if self.values.get(k) != v}
        if changed and not self.dry_run:
            self.store.set_many(changed)
            self.written.extend(sorted(changed))
        self.values.update(changed)
