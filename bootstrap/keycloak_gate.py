"""The access gate in Keycloak: only users holding one of the site's roles (AI_USER, AI_ADMIN; through a group
or a composite too) get a code or a token for the LiteLLM client.

The client alone is bound to two flows of its own (``authenticationFlowBindingOverrides``), built from
Keycloak's own authenticators; the realm's flows are never touched:

    <client> browser                          <client> direct grant
      login           (sub-flow, REQUIRED)      direct-grant-validate-username  REQUIRED
        auth-cookie                 ALTERNATIVE direct-grant-validate-password  REQUIRED
        identity-provider-redirector ALTERNATIVE otp (sub-flow, CONDITIONAL)
        forms (sub-flow, ALTERNATIVE)              conditional-user-configured  REQUIRED
          auth-username-password-form REQUIRED     direct-grant-validate-otp    REQUIRED
          otp (sub-flow, CONDITIONAL)            role gate (sub-flow, CONDITIONAL)
            conditional-user-configured REQUIRED   ...as on the left
            auth-otp-form               REQUIRED
      role gate       (sub-flow, CONDITIONAL)
        conditional-user-role  REQUIRED  {condUserRole: AI_USER,  negate: true}
        conditional-user-role  REQUIRED  {condUserRole: AI_ADMIN, negate: true}
        deny-access-authenticator REQUIRED

The conditions of a CONDITIONAL sub-flow must all hold for it to run: a user who has neither role is denied.
The login is a sub-flow of its own: at the top level a successful cookie ALTERNATIVE would end the flow before
the gate, and a user already signed in to another client of the realm would get a code unasked.

A flow whose executions drifted from this shape is rebuilt: the client is unbound from it, it is deleted with
its sub-flows, built again and bound again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bootstrap.report import CREATED, UNCHANGED, UPDATED, Report

SERVICE = "keycloak"
BINDINGS = {"browser": "browser", "direct grant": "direct_grant"}  # flow name -> the client's override key


@dataclass(frozen=True)
class Step:
    """One execution of a flow: an authenticator (``provider``) or a sub-flow (``steps``)."""

    requirement: str
    provider: str = ""
    name: str = ""  # a sub-flow's name, appended to its parent's alias
    config: dict[str, str] = field(default_factory=dict)
    steps: tuple["Step", ...] = ()

    @property
    def is_flow(self) -> bool:
        return bool(self.name)


def _otp(validate: str) -> Step:
    return Step("CONDITIONAL", name="otp", steps=(Step("REQUIRED", "conditional-user-configured"),
                                                   Step("REQUIRED", validate)))


def role_gate(roles: tuple[str, ...]) -> Step:
    conditions = tuple(Step("REQUIRED", "conditional-user-role", config={"condUserRole": role, "negate": "true"})
                       for role in roles)
    return Step("CONDITIONAL", name="role gate", steps=(*conditions, Step("REQUIRED", "deny-access-authenticator")))


def desired_flows(roles: tuple[str, ...]) -> dict[str, tuple[Step, ...]]:
    """The two flows, by name (the alias is ``<client> <name>``)."""
    login = Step("REQUIRED", name="login", steps=(
        Step("ALTERNATIVE", "auth-cookie"),
        Step("ALTERNATIVE", "identity-provider-redirector"),
        Step("ALTERNATIVE", name="forms", steps=(Step("REQUIRED", "auth-username-password-form"),
                                                 _otp("auth-otp-form"))),
    ))
    direct = (Step("REQUIRED", "direct-grant-validate-username"), Step("REQUIRED", "direct-grant-validate-password"),
              _otp("direct-grant-validate-otp"))
    return {"browser": (login, role_gate(roles)), "direct grant": (*direct, role_gate(roles))}


def _shape(steps: tuple[Step, ...], alias: str, level: int = 0) -> list[tuple]:
    """The flattened shape Keycloak lists for a flow (depth first): what the live flow is compared with."""
    rows: list[tuple] = []
    for step in steps:
        if step.is_flow:
            sub = f"{alias} {step.name}"
            rows.append((level, "flow", sub, step.requirement, ()))
            rows += _shape(step.steps, sub, level + 1)
        else:
            rows.append((level, "step", step.provider, step.requirement, tuple(sorted(step.config.items()))))
    return rows


class AccessGate:
    def __init__(self, admin, realm: str, client_id: str, roles: tuple[str, ...], report: Report, *,  # noqa: ANN001
                 dry_run: bool) -> None:
        self.admin, self.realm, self.client_id, self.roles = admin, realm, client_id, roles
        self.report, self.dry_run = report, dry_run

    def converge(self, client_uuid: str | None) -> None:
        flows = {f["alias"]: f for f in self.admin.get_authentication_flows()}
        client = self.admin.get_client(client_uuid) if client_uuid else {}
        bound = dict(client.get("authenticationFlowBindingOverrides") or {})
        ids: dict[str, str | None] = {}
        for name, steps in desired_flows(self.roles).items():
            alias = f"{self.client_id} {name}"
            what = f"flow {alias}"
            current = flows.get(alias)
            if current is None:
                ids[name] = None if self.dry_run else self._build(alias, steps)
                self.report.add(SERVICE, what, CREATED, self._summary())
            elif self._live_shape(alias) != _shape(steps, alias):
                if not self.dry_run:
                    if client_uuid and bound.get(BINDINGS[name]) == current["id"]:
                        self._bind(client_uuid, {**bound, BINDINGS[name]: None})  # a bound flow cannot be deleted
                        bound = self._overrides(client_uuid)
                    self.admin.delete_authentication_flow(current["id"])
                    ids[name] = self._build(alias, steps)
                self.report.add(SERVICE, what, UPDATED, "drift: rebuilt")
            else:
                ids[name] = current["id"]
                self.report.add(SERVICE, what, UNCHANGED, self._summary())
        wanted = {BINDINGS[name]: flow_id for name, flow_id in ids.items()}
        if all(bound.get(key) == flow_id for key, flow_id in wanted.items()) and None not in wanted.values():
            self.report.add(SERVICE, f"client {self.client_id} flow bindings", UNCHANGED)
            return
        if not self.dry_run and client_uuid:
            self._bind(client_uuid, {**bound, **wanted})
        self.report.add(SERVICE, f"client {self.client_id} flow bindings", CREATED if not bound else UPDATED,
                        "browser, direct grant")

    def _summary(self) -> str:
        return "only " + " or ".join(self.roles)

    def _overrides(self, client_uuid: str) -> dict[str, str]:
        return dict(self.admin.get_client(client_uuid).get("authenticationFlowBindingOverrides") or {})

    def _bind(self, client_uuid: str, overrides: dict[str, str | None]) -> None:
        client = self.admin.get_client(client_uuid)
        # Keycloak drops a binding whose value is empty; None is sent as "" so an unbinding takes effect.
        client["authenticationFlowBindingOverrides"] = {k: (v or "") for k, v in overrides.items()}
        self.admin.update_client(client_uuid, client)

    def _live_shape(self, alias: str) -> list[tuple]:
        rows = []
        for execution in self.admin.get_authentication_flow_executions(alias):
            level = execution["level"]
            if execution.get("authenticationFlow"):
                rows.append((level, "flow", execution["displayName"], execution["requirement"], ()))
                continue
            config = {}
            if execution.get("authenticationConfig"):
                config = self.admin.get_authenticator_config(execution["authenticationConfig"]).get("config", {})
            rows.append((level, "step", execution.get("providerId"), execution["requirement"],
                         tuple(sorted(config.items()))))
        return rows

    def _build(self, alias: str, steps: tuple[Step, ...]) -> str:
        self.admin.create_authentication_flow({"alias": alias, "providerId": "basic-flow", "topLevel": True,
                                               "builtIn": False, "description": "LiteLLM: only the site's roles"})
        self._add(alias, steps)
        return next(f["id"] for f in self.admin.get_authentication_flows() if f["alias"] == alias)

    def _add(self, alias: str, steps: tuple[Step, ...]) -> None:
        for step in steps:
            if step.is_flow:
                sub = f"{alias} {step.name}"
                self.admin.create_authentication_flow_subflow(
                    {"alias": sub, "type": "basic-flow", "provider": "registration-page-form", "description": ""}, alias)
            else:
                self.admin.create_authentication_flow_execution({"provider": step.provider}, alias)
            # the execution just added is the last of its flow's own level
            execution = [e for e in self.admin.get_authentication_flow_executions(alias) if e["level"] == 0][-1]
            self.admin.update_authentication_flow_executions({**execution, "requirement": step.requirement}, alias)
            if step.config:
                self.admin.create_execution_config(execution["id"], {"alias": _config_alias(sub if step.is_flow else alias,
                                                                                            step), "config": step.config})
            if step.is_flow:
                self._add(sub, step.steps)


def _config_alias(alias: str, step: Step) -> str:
    """Keycloak wants a unique alias for each execution config."""
    detail = "-".join(v for k, v in sorted(step.config.items()) if k != "negate")
    return f"{alias} {step.provider} {detail}".strip()
