"""Just enough OIDC for the tests: a password grant and RS256 verification against the realm's JWKS."""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def password_grant(token_url: str, client_id: str, client_secret: str, username: str, password: str) -> dict[str, Any]:
    body = urllib.parse.urlencode({"grant_type": "password", "client_id": client_id, "client_secret": client_secret,
                                   "username": username, "password": password, "scope": "openid profile email roles"})
    with urllib.request.urlopen(urllib.request.Request(token_url, data=body.encode()), timeout=30) as response:
        return json.loads(response.read())


def verify(token: str, jwks_url: str, issuer: str) -> dict[str, Any]:
    """The token's claims, after checking its RS256 signature with the realm's published key."""
    header_b64, payload_b64, signature_b64 = token.split(".")
    header = json.loads(_b64(header_b64))
    assert header["alg"] == "RS256", header
    with urllib.request.urlopen(jwks_url, timeout=30) as response:
        keys = json.loads(response.read())["keys"]
    jwk = next(k for k in keys if k["kid"] == header["kid"])
    public = rsa.RSAPublicNumbers(int.from_bytes(_b64(jwk["e"]), "big"), int.from_bytes(_b64(jwk["n"]), "big")).public_key()
    public.verify(_b64(signature_b64), f"{header_b64}.{payload_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    claims = json.loads(_b64(payload_b64))
    assert claims["iss"] == issuer, claims["iss"]
    return claims


def nested(claims: dict[str, Any], dotted: str) -> Any:
    """What LiteLLM's get_nested_value reads for GENERIC_USER_ROLE_ATTRIBUTE (dotted path)."""
    node: Any = claims
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node
