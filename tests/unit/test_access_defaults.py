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
