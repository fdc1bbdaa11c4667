"""Keycloak: the confidential client, its scopes, realm roles, admin role mapping and the role claim.

Replaces the original playbook, which deleted and recreated the client (a new secret) on every
run. Here the client is converged in place: drift is set back, the secret is kept unless
``rotate_secret`` is asked for. The role claim (flaw 7): client roles ``proxy_admin`` and
``internal_user`` on the client, made composites of the realm roles AI_ADMIN and AI_USER, and a
client-role mapper that writes them into the claim LiteLLM reads (GENERIC_USER_ROLE_ATTRIBUTE).
The admin client scope (a token whose ``scope`` has it is a proxy admin to LiteLLM) carries the admin
realm role as a role scope mapping, so Keycloak grants it only to holders of that role.
"""

from __future__ import annotations

import json
import secrets
import ssl
import string
from typing import Any
from urllib.parse import quote

from keycloak import KeycloakAdmin
from keycloak.exceptions import (KeycloakAuthenticationError, KeycloakDeleteError, KeycloakError, KeycloakGetError,
                                 KeycloakPostError, raise_error_from_response)
from requests.adapters import HTTPAdapter
from requests.exceptions import RequestException, Timeout
from urllib3.exceptions import NewConnectionError, TimeoutError as Urllib3Timeout

from bootstrap import DEFAULT_TIMEOUT
from bootstrap.credentials import AdminLogin
from bootstrap.keycloak_gate import AccessGate
from bootstrap.proxy_admin import fresh_plan as proxy_admin_plan, store_proxy_admin_id
from bootstrap.report import CREATED, UNCHANGED, UPDATED, Report
from bootstrap.vault import Vault
from generator.errors import GeneratorError
from generator.model import Site

SERVICE = "keycloak"
DEFAULT_SCOPES = ("web-origins", "acr", "roles", "profile", "email")
OPTIONAL_SCOPES = ("address", "phone", "offline_access", "microprofile-jwt")
ROLE_FOR = {"admin_role": "proxy_admin", "user_role": "internal_user"}  # realm role -> LiteLLM role


class KeycloakFailed(GeneratorError):
    pass


def new_client_secret() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(40))


def desired_client(site: Site) -> dict[str, Any]:
    base = f"https://{site.host}"
    return {
        "clientId": site.keycloak.client_id,
        "name": site.keycloak.client_name,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": True,
        "directAccessGrantsEnabled": site.keycloak.direct_access_grants,
        "implicitFlowEnabled": False,
        "serviceAccountsEnabled": False,
        "rootUrl": base,
        "baseUrl": "/",
        "redirectUris": sorted([f"{base}/sso/callback", f"{base}/*"]),
        "webOrigins": [base],
        "attributes": {"post.logout.redirect.uris": f"{base}/*"},
    }


def desired_audience_mapper(site: Site) -> dict[str, Any]:
    """The site's JWT audience in this client's access tokens only: LiteLLM's JWT auth checks JWT_AUDIENCE, so
    tokens Keycloak mints for the realm's other clients are refused (a custom audience: the client id would be in
    their ``aud`` too, for users holding this client's roles)."""
    audience = site.jwt_audience
    key = "included.client.audience" if audience == site.keycloak.client_id else "included.custom.audience"
    return {
        "name": "litellm-audience",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {key: audience, "id.token.claim": "false", "access.token.claim": "true"},
    }


def fresh_plan(site: Site) -> list[tuple[str, str]]:
    """What the step creates in a realm that has none of it (``bootstrap --dry-run --offline``): (object, detail)
    in the order a first run reports them."""
    kc = site.keycloak
    plan = [(f"client {kc.client_id}", ""), (f"client scope {kc.admin_scope}", "")]
    for attr, litellm_role in ROLE_FOR.items():
        realm_role = getattr(kc, attr)
        plan += [(f"realm role {realm_role}", ""), (f"client role {litellm_role}", ""),
                 (f"realm role {realm_role} -> {litellm_role}", "composite")]
    gate = f"only {kc.user_role} or {kc.admin_role}"
    plan += [(f"flow {kc.client_id} browser", gate), (f"flow {kc.client_id} direct grant", gate),
             (f"client {kc.client_id} flow bindings", "browser, direct grant"),
             (f"client scope {kc.admin_scope} -> {kc.admin_role}", "role scope mapping"),
             (f"optional scope {kc.admin_scope}", "")]
    plan += [(f"mapper {m['name']}", _mapper_detail(m)) for m in (desired_mapper(site), desired_audience_mapper(site))]
    return plan + [(f"user {user} role {kc.admin_role}", "") for user in kc.admin_users] + proxy_admin_plan(site)


def _mapper_detail(mapper: dict[str, Any]) -> str:
    config = mapper["config"]
    if "claim.name" in config:
        return f"claim {config['claim.name']}"
    return f"aud {config.get('included.client.audience') or config.get('included.custom.audience')}"


def desired_mapper(site: Site) -> dict[str, Any]:
    return {
        "name": "litellm-role",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-usermodel-client-role-mapper",
        "config": {
            "usermodel.clientRoleMapping.clientId": site.keycloak.client_id,
            "claim.name": site.keycloak.claims.role,
            "multivalued": "true",
            "jsonType.label": "String",
            "id.token.claim": "true",
            "access.token.claim": "true",
            "userinfo.token.claim": "true",
            "introspection.token.claim": "true",
        },
    }


def _drift(current: dict[str, Any], desired: dict[str, Any]) -> list[str]:
    fields = []
    for key, want in desired.items():
        have = current.get(key)
        if isinstance(want, dict):
            if any((have or {}).get(k) != v for k, v in want.items()):
                fields.append(key)
        elif isinstance(want, list):
            if sorted(have or []) != sorted(want):
                fields.append(key)
        elif have != want:
            fields.append(key)
    return fields


class KeycloakStep:
    def __init__(self, site: Site, login: AdminLogin, vault: Vault, report: Report, *, rotate_secret: bool = False,
                 url: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.site, self.vault, self.report, self.rotate, self.timeout = site, vault, report, rotate_secret, timeout
        settings = site.bootstrap.keycloak
        self.url = (url or settings.url or site.keycloak_url).rstrip("/")
        verify: bool | str = settings.ca_bundle or settings.verify_tls
        self.realm = site.keycloak.realm
        try:
            self.admin = KeycloakAdmin(server_url=self.url, username=login.user, password=login.password,
                                       realm_name=self.realm, user_realm_name=settings.admin_realm,
                                       client_id=settings.admin_client_id, verify=verify,
                                       timeout=timeout, max_retries=0)  # each request: connect and read within it
            _no_retries(self.admin)
            self.admin.get_realm(self.realm)
        except KeycloakAuthenticationError as exc:
            raise KeycloakFailed(f"keycloak at {self.url}: cannot log in as admin '{login.user}' in realm "
                                 f"'{settings.admin_realm}': invalid credentials") from exc
        except KeycloakGetError as exc:
            if exc.response_code == 404:
                raise KeycloakFailed(f"keycloak at {self.url}: realm '{self.realm}' does not exist") from exc
            raise KeycloakFailed(f"keycloak at {self.url}: {_why(exc)}") from exc
        except (KeycloakError, RequestException) as exc:
            if _timed_out(exc):
                raise self._timed_out(exc) from exc
            if tls := _in_chain(exc, ssl.SSLError):
                raise KeycloakFailed(f"keycloak at {self.url}: TLS verification failed "
                                     f"({getattr(tls, 'verify_message', None) or getattr(tls, 'reason', None) or tls}); "
                                     "set bootstrap.keycloak.caBundle to the CA file that signed its certificate"
                                     ) from exc
            raise KeycloakFailed(f"keycloak at {self.url}: unreachable or failing: {_why(exc)}") from exc

    def _timed_out(self, exc: BaseException) -> "KeycloakFailed":
        cause = _timed_out(exc)
        return KeycloakFailed(f"keycloak at {self.url}: no answer within {self.timeout:g} s ({type(cause).__name__})")

    def run(self) -> None:
        try:
            client_uuid = self._client()
            realm_scopes = {scope["name"]: scope["id"] for scope in self.admin.get_client_scopes()}
            self._admin_scope(realm_scopes)
            self._roles(client_uuid)
            AccessGate(self.admin, self.realm, self.site.keycloak.client_id,
                       (self.site.keycloak.user_role, self.site.keycloak.admin_role), self.report,
                       dry_run=self.vault.dry_run).converge(client_uuid)
            self._admin_scope_role(realm_scopes)  # before the client offers the scope: no window where anyone gets it
            self._client_scopes(client_uuid, realm_scopes)
            self._mappers(client_uuid)
            self._admin_users()
            store_proxy_admin_id(self.admin, self.site, self.vault, self.report, f"keycloak at {self.url}")
        except (KeycloakError, RequestException) as exc:
            if _timed_out(exc):
                raise self._timed_out(exc) from exc
            raise KeycloakFailed(f"keycloak at {self.url}: {_why(exc)}") from exc

    # -- objects -------------------------------------------------------------------------
    def _client(self) -> str | None:
        desired = desired_client(self.site)
        client_id = desired["clientId"]
        uuid = self.admin.get_client_id(client_id)
        stored = self.vault.get("CLIENT_SECRET")
        if uuid is None:
            secret = stored or new_client_secret()
            self.vault.remember("CLIENT_SECRET", secret)  # in sops before the client exists
            if not self.vault.dry_run:
                uuid = self.admin.create_client({**desired, "secret": secret})
            self.report.add(SERVICE, f"client {client_id}", CREATED)
            return uuid
        current = self.admin.get_client(uuid)
        drift = _drift(current, desired)
        if drift:
            if not self.vault.dry_run:
                merged = {**current, **desired, "attributes": {**current.get("attributes", {}), **desired["attributes"]}}
                self.admin.update_client(uuid, merged)
            self.report.add(SERVICE, f"client {client_id}", UPDATED, "drift: " + ", ".join(drift))
        else:
            self.report.add(SERVICE, f"client {client_id}", UNCHANGED)
        self._secret(uuid, client_id, stored)
        return uuid

    def _secret(self, uuid: str, client_id: str, stored: str | None) -> None:
        live = self.admin.get_client_secrets(uuid).get("value")
        if self.rotate:
            secret = new_client_secret()
            self.vault.remember("CLIENT_SECRET", secret)  # sops first: a crash here keeps the new secret
            if not self.vault.dry_run:
                self.admin.update_client(uuid, {**self.admin.get_client(uuid), "secret": secret})
            self.report.add(SERVICE, f"client {client_id} secret", UPDATED, "rotated")
        elif stored == live:
            self.report.add(SERVICE, f"client {client_id} secret", UNCHANGED, "in sops as CLIENT_SECRET")
        elif stored and not live:
            if not self.vault.dry_run:
                self.admin.update_client(uuid, {**self.admin.get_client(uuid), "secret": stored})
            self.report.add(SERVICE, f"client {client_id} secret", UPDATED, "set from sops")
        else:
            # The client has a secret that sops lacks (or a different one): keep the service's, never rotate unasked.
            self.vault.remember("CLIENT_SECRET", live)
            self.report.add(SERVICE, "sops CLIENT_SECRET", UPDATED if stored else CREATED, "from the existing client")

    def _admin_scope(self, realm_scopes: dict[str, str]) -> None:
        """Create the admin scope if absent; ``realm_scopes`` (name -> id) gains it."""
        name = self.site.keycloak.admin_scope
        if name in realm_scopes:
            self.report.add(SERVICE, f"client scope {name}", UNCHANGED)
            return
        if not self.vault.dry_run:
            realm_scopes[name] = self.admin.create_client_scope({"name": name, "protocol": "openid-connect", "attributes": {
                "include.in.token.scope": "true", "display.on.consent.screen": "false"}})
        self.report.add(SERVICE, f"client scope {name}", CREATED)

    def _admin_scope_role(self, realm_scopes: dict[str, str]) -> None:
        """Map exactly the admin realm role into the admin scope. An optional scope goes to anyone who asks for
        it; one with role scope mappings only to users holding one of those roles (composites count). Any other
        realm role mapped there (default-roles-<realm>, say) would make its holders proxy admins: removed."""
        name, role = self.site.keycloak.admin_scope, self.site.keycloak.admin_role
        scope_id = realm_scopes.get(name)
        mappings = self.admin.get_all_roles_of_client_scope(scope_id) if scope_id else {}
        mapped = {r["name"]: r for r in mappings.get("realmMappings", [])}
        extra = sorted(set(mapped) - {role})
        what = f"client scope {name} -> {role}"
        if extra:
            if not self.vault.dry_run:
                self._scope_mapping(scope_id, [mapped[n] for n in extra], delete=True)
            self.report.add(SERVICE, what, UPDATED, f"drift: removed {', '.join(extra)}")
        if role in mapped:
            if not extra:
                self.report.add(SERVICE, what, UNCHANGED, "role scope mapping")
            return
        if not self.vault.dry_run:
            self._scope_mapping(scope_id, [self.admin.get_realm_role(role)])
        self.report.add(SERVICE, what, CREATED, "role scope mapping")

    def _scope_mapping(self, scope_id: str, roles: list[dict[str, Any]], *, delete: bool = False) -> None:
        """python-keycloak's *_realm_roles_*_client_scope calls map into a *client's* scope (/clients/{id}/...),
        not into a client scope: these are the client-scopes/{id}/scope-mappings/realm calls it lacks."""
        path = f"admin/realms/{self.realm}/client-scopes/{scope_id}/scope-mappings/realm"
        connection = self.admin.connection
        response = connection.raw_delete(path, data=json.dumps(roles)) if delete else connection.raw_post(
            path, data=json.dumps(roles))
        raise_error_from_response(response, KeycloakDeleteError if delete else KeycloakPostError, expected_codes=[204])

    def _client_scopes(self, uuid: str | None, realm_scopes: dict[str, str]) -> None:
        wanted = {"default": DEFAULT_SCOPES, "optional": (*OPTIONAL_SCOPES, self.site.keycloak.admin_scope)}
        for kind, names in wanted.items():
            current = set()
            if uuid:
                getter = self.admin.get_client_default_client_scopes if kind == "default" else self.admin.get_client_optional_client_scopes
                current = {s["name"] for s in getter(uuid)}
            missing = [n for n in names if n not in current and n in realm_scopes]
            for name in missing:
                if not self.vault.dry_run and uuid:
                    adder = self.admin.add_client_default_client_scope if kind == "default" else self.admin.add_client_optional_client_scope
                    adder(uuid, realm_scopes[name], {"realm": self.realm, "client": uuid, "clientScopeId": realm_scopes[name]})
                self.report.add(SERVICE, f"{kind} scope {name}", CREATED)
            present = [n for n in names if n in current]
            if present:
                self.report.add(SERVICE, f"{kind} scopes", UNCHANGED, ", ".join(present))

    def _roles(self, uuid: str | None) -> None:
        for attr, litellm_role in ROLE_FOR.items():
            realm_role = getattr(self.site.keycloak, attr)
            if not self._realm_role_exists(realm_role):
                if not self.vault.dry_run:
                    self.admin.create_realm_role({"name": realm_role, "description": f"LiteLLM {litellm_role}"})
                self.report.add(SERVICE, f"realm role {realm_role}", CREATED)
            else:
                self.report.add(SERVICE, f"realm role {realm_role}", UNCHANGED)
            client_roles = {r["name"] for r in self.admin.get_client_roles(uuid)} if uuid else set()
            if litellm_role not in client_roles:
                if not self.vault.dry_run:
                    self.admin.create_client_role(uuid, {"name": litellm_role, "description": f"LiteLLM role for {realm_role}"})
                self.report.add(SERVICE, f"client role {litellm_role}", CREATED)
            else:
                self.report.add(SERVICE, f"client role {litellm_role}", UNCHANGED)
            composites = set()
            if uuid and self._realm_role_exists(realm_role):
                composites = {r["name"] for r in self._client_composites(realm_role, uuid)}
            if litellm_role not in composites:
                if not self.vault.dry_run:
                    role = self.admin.get_client_role(uuid, litellm_role)
                    self.admin.add_composite_realm_roles_to_role(realm_role, [role])
                self.report.add(SERVICE, f"realm role {realm_role} -> {litellm_role}", CREATED, "composite")
            else:
                self.report.add(SERVICE, f"realm role {realm_role} -> {litellm_role}", UNCHANGED, "composite")

    def _client_composites(self, realm_role: str, client_uuid: str) -> list[dict[str, Any]]:
        """The client roles a realm role includes (python-keycloak has no call for this one)."""
        path = f"admin/realms/{self.realm}/roles/{quote(realm_role, safe='')}/composites/clients/{client_uuid}"
        return raise_error_from_response(self.admin.connection.raw_get(path), KeycloakGetError)

    def _realm_role_exists(self, name: str) -> bool:
        try:
            self.admin.get_realm_role(name)
            return True
        except KeycloakGetError as exc:
            if exc.response_code == 404:
                return False
            raise

    def _mappers(self, uuid: str | None) -> None:
        existing = self.admin.get_mappers_from_client(uuid) if uuid else []
        for desired in (desired_mapper(self.site), desired_audience_mapper(self.site)):
            self._mapper(uuid, desired, existing)

    def _mapper(self, uuid: str | None, desired: dict[str, Any], existing: list[dict[str, Any]]) -> None:
        current = next((m for m in existing if m["name"] == desired["name"]), None)
        if current is None:
            if not self.vault.dry_run:
                self.admin.add_mapper_to_client(uuid, desired)
            self.report.add(SERVICE, f"mapper {desired['name']}", CREATED, _mapper_detail(desired))
        elif current.get("protocolMapper") != desired["protocolMapper"] or any(
                current.get("config", {}).get(k) != v for k, v in desired["config"].items()):
            if not self.vault.dry_run:
                self.admin.update_client_mapper(uuid, current["id"], {**current, **desired, "id": current["id"]})
            self.report.add(SERVICE, f"mapper {desired['name']}", UPDATED, "drift")
        else:
            self.report.add(SERVICE, f"mapper {desired['name']}", UNCHANGED)

    def _admin_users(self) -> None:
        role_name = self.site.keycloak.admin_role
        for username in self.site.keycloak.admin_users:
            user_id = self.admin.get_user_id(username)
            if user_id is None:
                raise KeycloakFailed(f"keycloak at {self.url}: admin user '{username}' does not exist in realm "
                                     f"'{self.realm}'; create it or fix keycloak.adminUsers")
            roles = {r["name"] for r in self.admin.get_realm_roles_of_user(user_id)}
            if role_name in roles:
                self.report.add(SERVICE, f"user {username} role {role_name}", UNCHANGED)
                continue
            if not self.vault.dry_run:
                self.admin.assign_realm_roles(user_id, [self.admin.get_realm_role(role_name)])
            self.report.add(SERVICE, f"user {username} role {role_name}", CREATED)


def _no_retries(admin: KeycloakAdmin) -> None:
    """No request of the admin client is retried, its token requests included: python-keycloak's OpenID client
    has its own session, whose adapter retries a POST once, so a Keycloak that never answers took twice the
    timeout. Each request now connects and answers within the timeout once, and the step fails then."""
    # python-keycloak keeps its requests sessions private; both are mounted before the first request.
    for session in (admin.connection._s, admin.connection.keycloak_openid.connection._s):  # noqa: SLF001
        for scheme in ("http://", "https://"):
            session.mount(scheme, HTTPAdapter(max_retries=0))


def _timed_out(exc: BaseException | None) -> BaseException | None:
    """The timeout behind an error: python-keycloak wraps it as "Can't connect to server", and requests
    reports a read timeout with retries off as a ConnectionError around urllib3's ReadTimeoutError."""
    return _in_chain(exc, (Timeout, Urllib3Timeout, TimeoutError), unless=NewConnectionError)


def _in_chain(exc: BaseException | None, kinds: type | tuple[type, ...],
              unless: type | tuple[type, ...] = ()) -> BaseException | None:
    """The first error of ``kinds`` (and not of ``unless``) among ``exc``, its causes, contexts, reasons and
    arguments. urllib3's NewConnectionError (refused, no route) is a ConnectTimeoutError by inheritance only."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        if isinstance(current, kinds) and not isinstance(current, unless):
            return current
        reason = getattr(current, "reason", None)  # urllib3's wrapped error; ssl's reason is a string
        pending += [current.__cause__, current.__context__, reason if isinstance(reason, BaseException) else None]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return None


def _why(exc: Exception) -> str:
    code = getattr(exc, "response_code", None)
    text = str(getattr(exc, "error_message", "") or exc)
    text = text.decode() if isinstance(text, bytes) else text
    text = text.replace("\n", " ")[:200]
    return f"HTTP {code}: {text}" if code else text
