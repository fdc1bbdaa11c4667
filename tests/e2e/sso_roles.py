"""LiteLLM 1.108.7's own SSO sign-in code, run on Keycloak's real userinfo answers. TEST HARNESS ONLY.

Run by LiteLLM's venv Python. stdin: {"env": the container's env, "userinfo": {name: userinfo JSON}}; stdout: per
name, what LiteLLM makes of the answer before it touches the database: the user id (GENERIC_USER_ID_ATTRIBUTE), the
role the role mappings give (GENERIC_ROLE_MAPPINGS_*, ``generic_response_convertor``), and the role after the
PROXY_ADMIN_ID check (``check_and_update_if_proxy_admin_id``, which only writes when a database is connected)."""

import asyncio
import json
import os
import sys


async def main() -> None:
    given = json.load(sys.stdin)
    os.environ.update(given["env"])
    from litellm.caching.dual_cache import DualCache
    from litellm.proxy._types import LiteLLM_JWTAuth
    from litellm.proxy.auth.handle_jwt import JWTHandler
    from litellm.proxy.management_endpoints.ui_sso import (_setup_role_mappings, check_and_update_if_proxy_admin_id,
                                                           generic_response_convertor)

    handler = JWTHandler()  # as the proxy sets its own up at start-up (no jwtAuth: LiteLLM_JWTAuth's defaults)
    handler.update_environment(prisma_client=None, user_api_key_cache=DualCache(), litellm_jwtauth=LiteLLM_JWTAuth())
    mappings = await _setup_role_mappings()  # no database: the GENERIC_ROLE_MAPPINGS_* env
    out = {}
    for name, userinfo in given["userinfo"].items():
        result = generic_response_convertor(response=userinfo, jwt_handler=handler, role_mappings=mappings)
        role = result.user_role.value if result.user_role else None
        final = await check_and_update_if_proxy_admin_id(role or "internal_user_viewer", result.id, None)
        out[name] = {"id": result.id, "role": role, "after_proxy_admin_id": final}
    json.dump({"mappings": mappings is not None, "users": out}, sys.stdout)


asyncio.run(main())
