"""Which keys a site's secrets file holds, how each is made, and whether it may be rotated."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

from generator.model import BOOTSTRAP_SECRET_KEYS, PROXY_ADMIN_KEY, S3_SECRET_KEYS, Site

ALPHANUMERIC = string.ascii_letters + string.digits
FINGERPRINT_KEY = "_fingerprint_key"  # HMAC key for change detection; never sealed into the Secret
# Set by `generator adopt`: the site's values are a running install's. Its name is plaintext in the sops file, so
# the guard needs no key; internal, so it is never sealed.
ADOPTED_KEY = "_adopted_from"
SALT_KEY = "LITELLM_SALT_KEY"
ADOPTED_SALT = (
    "this site was adopted from a running install: LITELLM_SALT_KEY must stay the original's, or every model "
    "credential LiteLLM stored in its database becomes unreadable; the generator never makes one here"
)


def _random(length: int, prefix: str = "") -> Callable[[], str]:
    return lambda: prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


GENERATED: dict[str, Callable[[], str]] = {
    "LITELLM_MASTER_KEY": _random(48, "sk-"),
    "LITELLM_SALT_KEY": _random(48),
    "ADMIN_PASSWORD": _random(32),
    FINGERPRINT_KEY: lambda: secrets.token_hex(32),
}
FILLED_BY_BOOTSTRAP = (*BOOTSTRAP_SECRET_KEYS, PROXY_ADMIN_KEY, *S3_SECRET_KEYS)
SALT_WARNING = (
    "rotating LITELLM_SALT_KEY makes every model credential LiteLLM stored in its database unreadable; "
    "re-enter them in the UI afterwards. Pass --force to rotate anyway"
)


def is_internal(key: str) -> bool:
    return key.startswith("_")


def rotation_refusal(key: str, force: bool, *, adopted: bool = False) -> str | None:
    """Why a key may not be rotated here, or None when rotation is safe."""
    if key == SALT_KEY and adopted:
        return f"{ADOPTED_SALT} (set the original's value with 'generator secrets set' if it was lost)"
    if key == SALT_KEY:
        return None if force else SALT_WARNING
    if key in FILLED_BY_BOOTSTRAP:
        return f"{key} belongs to a service: rotate it with 'generator bootstrap' (which updates the service too)"
    if key not in GENERATED or is_internal(key):
        return f"{key} is not generated here (a provider key or a custom value): set it with 'generator secrets set'"
    return None


def required_keys(site: Site) -> list[str]:
    return site.secret_keys()
