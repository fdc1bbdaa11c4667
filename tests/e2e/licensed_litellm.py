"""The LiteLLM proxy CLI with its licence check answering yes. TEST HARNESS ONLY: it exists so the JWT tests
can reach past LiteLLM 1.108.7's licence gate to its JWT authentication and authorisation; nothing the
generator renders or ships uses it, and a real deployment needs a real LITELLM_LICENSE (README)."""

import sys

from litellm.proxy.auth.litellm_license import LicenseCheck

LicenseCheck.is_premium = lambda self: True  # type: ignore[method-assign]

from litellm.proxy.proxy_cli import run_server  # noqa: E402 - after the patch: proxy_server reads it at import

if __name__ == "__main__":
    sys.exit(run_server())
