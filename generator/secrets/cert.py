"""The site's public sealing certificate: loaded, checked for expiry, fingerprinted.

What a certificate's parse gave (its fingerprint and expiry) is kept under ``.generator/cache/certs/``, by the
sha256 of its bytes: a render of one site then does not load the X.509 library (a tenth of its time). The
expiry is still checked against today on every load."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

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


def load_cert(path: Path, shown: str, root: Path | None = None, *, remember: bool = False) -> SealingCert:
    """The certificate at ``path``; a parse remembered in the repository ``root`` is reused, and with
    ``remember`` (a command that writes) a new one is kept for next time."""
    if not path.exists() and not path.is_symlink():
        raise UsageError(f"{shown}: no sealing certificate; run 'generator cert import --site SITE FILE' "
                         "or 'generator cert fetch --site SITE'")
    data = read_input(path, shown, root=root, limit=MAX_CERT_BYTES)
    if root is None:
        return parse_cert(data, path, shown)
    memo = root / ".generator" / "cache" / "certs" / f"{hashlib.sha256(data).hexdigest()}.json"
    known = _remembered(memo)
    if known is not None and b"PRIVATE KEY" not in data:
        return SealingCert(path, shown, *known)
    cert = parse_cert(data, path, shown)
    if remember:
        _remember(memo, cert)
    return cert


_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def _remembered(memo: Path) -> tuple[str, datetime.datetime] | None:
    try:
        known = json.loads(memo.read_text())
        fingerprint, not_after = known["fingerprint"], known["notAfter"]
        if isinstance(fingerprint, str) and _FINGERPRINT.match(fingerprint) and type(not_after) is int:
            return fingerprint, datetime.datetime.fromtimestamp(not_after, datetime.timezone.utc)
    except (OSError, ValueError, TypeError, KeyError, OverflowError):
        pass  # none, or corrupt: parsed again and rewritten
    return None


def _remember(memo: Path, cert: SealingCert) -> None:
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}")
        tmp.write_text(json.dumps({"fingerprint": cert.fingerprint, "notAfter": int(cert.not_after.timestamp())}))
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only checkout: parsed again next time


def parse_cert(data: bytes, path: Path, shown: str) -> SealingCert:
    if b"PRIVATE KEY" in data:
        raise UsageError(f"{shown}: holds a private key; only the public certificate belongs in the repository")
    from cryptography import x509  # here: a remembered certificate needs no X.509 library (load_cert)
    from cryptography.hazmat.primitives import hashes

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
