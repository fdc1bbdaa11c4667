"""Admin credentials for the services: from the environment, else from the site's sops file.

Never from argv. In the sops file they are internal keys (a leading underscore), so they are
never sealed into the cluster's Secret.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from generator.errors import UsageError

NAMES = {
    "keycloak": ("KEYCLOAK_ADMIN_USERNAME", "KEYCLOAK_ADMIN_PASSWORD"),
    "postgres": ("POSTGRES_ADMIN_USERNAME", "POSTGRES_ADMIN_PASSWORD"),
    "bucket": ("S3_ADMIN_ACCESS_KEY_ID", "S3_ADMIN_SECRET_ACCESS_KEY"),
}


@dataclass(frozen=True)
class AdminLogin:
    user: str
    password: str


def admin_login(service: str, sops_values: dict[str, str]) -> AdminLogin:
    user_var, password_var = NAMES[service]
    user = os.environ.get(user_var) or sops_values.get(f"_{user_var}")
    password = os.environ.get(password_var) or sops_values.get(f"_{password_var}")
    if not user or not password:
        raise UsageError(f"{service}: admin credentials missing: set {user_var} and {password_var} in the environment "
                         f"(or _{user_var} / _{password_var} in the site's sops file)")
    return AdminLogin(user, password)
