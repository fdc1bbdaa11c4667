"""Which keys a site's secrets file holds, how each is made, and whether it may be rotated."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

from generator.errors import SiteError
from generator.layout import Repo
from generator.loader import read_mapping
from generator.model import BOOTSTRAP_SECRET_KEYS, S3_SECRET_KEYS, Site
from generator.serving import LICENSE_KEY
from generator.yamlio import line_of

ALPHANUMERIC = string.ascii_letters + string.digits
FINGERPRINT_KEY = "_fingerprint_key"  # HMAC key for change detection; never sealed into the Secret


def _random(length: int, prefix: str = "") -> Callable[[], str]:
    return lambda: prefix + "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


GENERATED: dict[str, Callable[[], str]] = {
    "LITELLM_MASTER_KEY": _random(48, "sk-"),
    "LITELLM_SALT_KEY": _random(48),
    "ADMIN_PASSWORD": _random(32),
    FINGERPRINT_KEY: lambda: secrets.token_hex(32),
}
FILLED_BY_BOOTSTRAP = (*BOOTSTRAP_SECRET_KEYS, *S3_SECRET_KEYS)
SALT_WARNING = (
    "rotating LITELLM_SALT_KEY makes every model credential LiteLLM stored in its database unreadable; "
    "re-enter them in the UI afterwards. Pass --force to rotate anyway"
)


def is_internal(key: str) -> bool:
    return key.startswith("_")


def rotation_refusal(key: str, force: bool) -> str | None:
    """Why a key may not be rotated here, or None when rotation is safe."""
    if key == "LITELLM_SALT_KEY":
        return None if force else SALT_WARNING
    if key in FILLED_BY_BOOTSTRAP:
        return f"{key} belongs to a service: rotate it with 'generator bootstrap' (which updates the service too)"
    if key not in GENERATED or is_internal(key):
        return f"{key} is not generated here (a provider key or a custom value): set it with 'generator secrets set'"
    return None


def required_keys(site: Site) -> list[str]:
    return site.secret_keys()


def check_licensed(repo: Repo, name: str, site: Site) -> None:
    """JWT API auth is licensed in LiteLLM 1.108.7: without LITELLM_LICENSE every token gets the licence
    refusal. Refuse to render such a site (exit 2) rather than ship an API that accepts no token."""
    if not site.jwt_auth.enabled:
        return
    from generator.secrets.store import SecretsFile

    store = SecretsFile(repo, name)
    if LICENSE_KEY in store.key_names():
        return
    site_file = repo.site_file(name)
    shown = repo.rel(site_file)
    tree = read_mapping(site_file, shown, empty="file is empty", what="settings", root=repo.root)
    raise SiteError(shown, f"JWT auth is an enterprise feature of LiteLLM 1.108.7 and {store.rel} has no "
                    f"{LICENSE_KEY}: every token would be refused (\"JWT Auth is an enterprise only feature\"); "
                    f"add it with 'generator secrets set --site {name} {LICENSE_KEY}' or turn jwtAuth off",
                    field="jwtAuth.enabled", line=line_of(tree, ("jwtAuth", "enabled")))
