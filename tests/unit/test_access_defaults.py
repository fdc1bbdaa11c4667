"""Issue 26: the access defaults the rendered config and env carry, whether or not Keycloak's gate is in place
(what LiteLLM 1.108.7 does with each rests on reading its source: README, "Who gets in")."""

from __future__ import annotations

from generator.model import Site
from generator.render.config import litellm_config
from generator.render.discovery import environment_variables
from generator.render.site import site_env


def _site(**overrides: object) -> Site:
    return Site.model_validate({"domain": "example.com", **overrides})


def _env(site: Site) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in site_env(site)}


def test_a_new_user_gets_no_model_and_a_budget_by_default() -> None:
    settings = litellm_config(_site())["litellm_settings"]
    assert settings["default_internal_user_params"] == {
        "user_role": "internal_user_viewer", "models": ["no-default-models"], "max_budget": 10.0,
        "budget_duration": "30d"}
    assert (settings["max_internal_user_budget"], settings["internal_user_budget_duration"]) == (10.0, "30d")


def test_the_site_names_a_new_users_models_and_budget() -> None:
    site = _site(users={"models": ["gpt-4o", "llama3"], "maxBudget": 25, "budgetDuration": "7d"})
    params = litellm_config(site)["litellm_settings"]["default_internal_user_params"]
    assert (params["models"], params["max_budget"], params["budget_duration"]) == (["gpt-4o", "llama3"], 25.0, "7d")


def test_password_login_is_off_unless_the_site_opts_in() -> None:
    assert litellm_config(_site())["general_settings"]["disable_password_login_when_sso_enabled"] is True
    opted = _site(ui={"passwordLogin": True})
    assert litellm_config(opted)["general_settings"]["disable_password_login_when_sso_enabled"] is False


def test_the_email_claim_is_left_out_unless_named() -> None:
    assert _env(_site())["GENERIC_USER_EMAIL_ATTRIBUTE"] == ""  # LiteLLM links accounts by email, verified or not
    assert _env(_site(keycloak={"claims": {"email": "email"}}))["GENERIC_USER_EMAIL_ATTRIBUTE"] == "email"


def test_notebooks_get_no_master_key_unless_exported() -> None:
    assert [e["name"] for e in environment_variables(_site())] == ["LITELLM_ENDPOINT"]
    assert environment_variables(_site())[0]["value"] == "https://litellm.example.com"  # bare, as Thinkube's
    exported = environment_variables(_site(discovery={"exportMasterKey": True}))
    assert exported[1] == {"name": "LITELLM_MASTER_KEY", "valueFrom": {"secretKeyRef": {
        "namespace": "litellm", "name": "litellm-secrets", "key": "LITELLM_MASTER_KEY"}}}


def test_the_jwt_audience_is_the_clients_own() -> None:
    site = _site(jwtAuth={"enabled": True})
    assert _env(site)["JWT_AUDIENCE"] == "litellm-api"
    assert _env(_site(jwtAuth={"enabled": True, "audience": "my-api"}))["JWT_AUDIENCE"] == "my-api"


def test_the_proxy_admin_is_an_id_bootstrap_stores_not_a_username() -> None:
    site = _site()
    ref = next(e for e in site_env(site) if e["name"] == "PROXY_ADMIN_ID")
    assert ref == {"name": "PROXY_ADMIN_ID", "valueFrom": {"secretKeyRef": {"name": "litellm-secrets",
                                                                            "key": "PROXY_ADMIN_ID"}}}
    assert "PROXY_ADMIN_ID" in site.secret_keys()
    assert _env(site)["GENERIC_USER_ID_ATTRIBUTE"] == "sub"  # the claim LiteLLM compares PROXY_ADMIN_ID with
    assert litellm_config(_site(jwtAuth={"enabled": True}))["general_settings"]["litellm_jwtauth"][
        "user_id_jwt_field"] == "sub"  # the same LiteLLM user by SSO and by token
    none = _site(keycloak={"proxyAdmin": None})
    assert "PROXY_ADMIN_ID" not in _env(none) and "PROXY_ADMIN_ID" not in none.secret_keys()


def test_a_username_claim_cannot_carry_the_proxy_admin() -> None:
    import pydantic
    import pytest

    with pytest.raises(pydantic.ValidationError, match="must be 'sub'"):
        _site(keycloak={"claims": {"userId": "preferred_username"}})
    assert _env(_site(keycloak={"proxyAdmin": None, "claims": {"userId": "preferred_username"}}))[
        "GENERIC_USER_ID_ATTRIBUTE"] == "preferred_username"


def test_every_sign_in_yields_a_role_so_a_lost_role_demotes() -> None:
    env = _env(_site())
    assert env["GENERIC_ROLE_MAPPINGS_ROLES"] == '{"proxy_admin":["proxy_admin"],"internal_user":["internal_user"]}'
    assert env["GENERIC_ROLE_MAPPINGS_GROUP_CLAIM"] == env["GENERIC_USER_ROLE_ATTRIBUTE"] == "litellm_role"
    assert env["GENERIC_ROLE_MAPPINGS_DEFAULT_ROLE"] == "internal_user_viewer"
