"""The site's public sealing certificate: loaded, checked for expiry, fingerprinted."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from generator.errors import UsageError
from generator.inputs import read_input

WARN_DAYS = 30


@dataclass(frozen=True)
class SealingCert:
    path: Path
    shown: str
    fingerprint: str  # sha256 of the DER certificate: public, identifies the key pair
    not_after: datetime.datetime

    def days_left(self, now: datetime.datetime | None = None) -> float:
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return (self.not_after - now).total_seconds() / 86400


MAX_CERT_BYTES = 64_000


def load_cert(path: Path, shown: str, root: Path | None = None) -> SealingCert:
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{shown}: no sealing certificate; run 'generator cert import --site SITE FILE' "
                         "or 'generator cert fetch --site SITE'")
    return parse_cert(read_input(path, shown, root=root, limit=MAX_CERT_BYTES), path, shown)


def parse_cert(data: bytes, path: Path, shown: str) -> SealingCert:
    if b"PRIVATE KEY" in data:
        raise UsageError(f"{shown}: holds a private key; only the public certificate belongs in the repository")
    try:
        cert = x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise UsageError(f"{shown}: not a PEM certificate ({exc})") from exc
    return SealingCert(path, shown, cert.fingerprint(hashes.SHA256()).hex(), cert.not_valid_after_utc)  # of the DER form


def check_validity(cert: SealingCert, now: datetime.datetime | None = None) -> str | None:
    """Raise when expired; return a warning when it expires within WARN_DAYS."""
    left = cert.days_left(now)
    when = cert.not_after.strftime("%Y-%m-%d")
    if left <= 0:
        raise UsageError(f"{cert.shown}: the sealing certificate expired on {when}; fetch the controller's "
                         "current certificate ('generator cert fetch') and render again")
    if left < WARN_DAYS:
        return f"{cert.shown}: the sealing certificate expires on {when} ({left:.0f} days left)"
    return None
