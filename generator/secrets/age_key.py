"""The operator's age identity (the sops key): make one as age-keygen does, and read its public recipient.

The identity is an X25519 private key, written as Bech32 with the prefix AGE-SECRET-KEY- (upper case); its
recipient is the public key, Bech32 with the prefix age. The file is age-keygen's format, mode 0600, and is never
overwritten: the identity is the only way to read the secrets encrypted for it.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from generator.errors import UsageError

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
SECRET_PREFIX, PUBLIC_PREFIX = "age-secret-key-", "age"


def default_key_file() -> Path:
    """Where sops looks for age identities: $SOPS_AGE_KEY_FILE, else its default under the config directory."""
    named = os.environ.get("SOPS_AGE_KEY_FILE")
    if named:
        return Path(named)
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sops/age/keys.txt"


def _polymod(values: list[int]) -> int:
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for index in range(5):
            checksum ^= generator[index] if (top >> index) & 1 else 0
    return checksum


def _expand(prefix: str) -> list[int]:
    return [ord(c) >> 5 for c in prefix] + [0] + [ord(c) & 31 for c in prefix]


def _regroup(data: bytes | list[int], source: int, target: int, *, pad: bool) -> list[int]:
    accumulator, bits, out, top = 0, 0, [], (1 << target) - 1
    for value in data:
        accumulator = (accumulator << source) | value
        bits += source
        while bits >= target:
            bits -= target
            out.append((accumulator >> bits) & top)
    if pad and bits:
        out.append((accumulator << (target - bits)) & top)
    elif not pad and (bits >= source or (accumulator << (target - bits)) & top):
        raise ValueError("bad padding")
    return out


def bech32_encode(prefix: str, data: bytes) -> str:
    words = _regroup(data, 8, 5, pad=True)
    checksum = _polymod(_expand(prefix) + words + [0] * 6) ^ 1
    words += [(checksum >> 5 * (5 - i)) & 31 for i in range(6)]
    return prefix + "1" + "".join(CHARSET[w] for w in words)


def bech32_decode(text: str) -> tuple[str, bytes]:
    lowered = text.lower()
    prefix, _, rest = lowered.rpartition("1")
    if not prefix or len(rest) < 6 or any(c not in CHARSET for c in rest):
        raise ValueError("not Bech32")
    words = [CHARSET.index(c) for c in rest]
    if _polymod(_expand(prefix) + words) != 1:
        raise ValueError("bad checksum")
    return prefix, bytes(_regroup(words[:-6], 5, 8, pad=False))


def recipient_of_identity(identity: str) -> str:
    prefix, raw = bech32_decode(identity.strip())
    if prefix != SECRET_PREFIX or len(raw) != 32:
        raise ValueError("not an age identity")
    public = X25519PrivateKey.from_private_bytes(raw).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return bech32_encode(PUBLIC_PREFIX, public)


def recipients_in(path: Path) -> list[str]:
    """The recipients of the identities in an age key file (derived from each identity, never its comments).
    Nothing of the file's content appears in an error."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        reason = "is missing" if isinstance(exc, FileNotFoundError) else "cannot be read"
        raise UsageError(f"the age key file {path} {reason}: make one with 'generator secrets keygen', "
                         "or give --age-recipient") from None
    found = []
    for number, line in enumerate(lines, 1):
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                found.append(recipient_of_identity(line))
            except ValueError:
                raise UsageError(f"{path}:{number}: not a valid age identity") from None
    if not found:
        raise UsageError(f"{path}: holds no age identity (AGE-SECRET-KEY-...): make one with 'generator secrets "
                         "keygen --output FILE', or give --age-recipient")
    return found


def make_key_file(path: Path) -> tuple[str, bool]:
    """(the recipient, created?). An existing file is kept: its first identity's recipient is returned."""
    if path.exists() or path.is_symlink():
        return recipients_in(path)[0], False
    private = X25519PrivateKey.generate()
    raw = private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    identity = bech32_encode(SECRET_PREFIX, raw).upper()
    recipient = recipient_of_identity(identity)
    created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(f"# created: {created}\n# public key: {recipient}\n{identity}\n")
    return recipient, True
