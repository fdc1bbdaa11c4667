"""Keys the tests make at run time: an age identity for sops and a sealing key pair for kubeseal."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import pyrage
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class AgeKey:
    identity: str  # the age secret key (private): passed to sops in SOPS_AGE_KEY only
    recipient: str  # age1...


def age_key() -> AgeKey:
    identity = pyrage.x25519.Identity.generate()
    return AgeKey(str(identity), str(identity.to_public()))


def sealing_pair(directory: Path, *, days: float = 3650, name: str = "sealing", bits: int = 2048) -> tuple[Path, Path]:
    """(certificate, private key) PEM files, like the sealed-secrets controller's self-signed pair."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sealed-secret")])
    now = datetime.datetime.now(datetime.timezone.utc)
    start = min(now, now + datetime.timedelta(days=days)) - datetime.timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}-cert.pem", directory / f"{name}-private.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def sops_rules(recipients: list[str]) -> str:
    return ("creation_rules:\n  - path_regex: sites/[^/]+/secrets\\.sops\\.yaml$\n"
            f"    age: {','.join(recipients)}\n")
