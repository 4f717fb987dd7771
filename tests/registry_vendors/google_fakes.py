"""Google's OAuth2 token endpoint for service accounts, as documented (developers.google.com/identity/
protocols/oauth2/service-account, "Preparing to make an authorized API call" / HTTP/REST):
``POST https://oauth2.googleapis.com/token`` form ``grant_type=urn:ietf:params:oauth:grant-type:
jwt-bearer&assertion=<JWT signed RS256 with the key; claims iss, scope, aud, iat, exp>`` ->
``{"access_token", "expires_in": 3599, "token_type": "Bearer"}``; a bad signature is a 400
``{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jwt
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.registry_vendors.support import Reply, form, json_reply

TOKEN_URI = "https://oauth2.googleapis.com/token"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
EMAIL = "scanner@acme-prod.iam.gserviceaccount.com"


@cache
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_json(project: str = "acme-prod") -> dict[str, Any]:
    pem = (
        private_key()
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "5f1e0c9d0a7b4e2f8c3d1a6b9e0f7c2d4a8b6e1f",
        "private_key": pem,
        "client_email": EMAIL,
        "client_id": "104528173690455182736",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": TOKEN_URI,
    }


def key_text(**kwargs: Any) -> str:
    """The key file as a user downloads it: pretty-printed JSON, ``\\n`` escapes in the PEM."""
    return json.dumps(key_json(**kwargs), indent=2)


class TokenEndpoint:
    def __init__(self, rsps: responses.RequestsMock, expires_in: int = 3599) -> None:
        self.issued: list[str] = []
        self.assertions: list[dict[str, Any]] = []
        self.expires_in = expires_in
        rsps.add_callback(responses.POST, TOKEN_URI, callback=self._token)

    def _token(self, request: requests.PreparedRequest) -> Reply:
        fields = form(request)
        assert fields["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
        try:
            claims = jwt.decode(
                fields["assertion"][0], private_key().public_key(), algorithms=["RS256"], audience=TOKEN_URI
            )
        except jwt.InvalidTokenError:
            return json_reply({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, 400)
        self.assertions.append(claims)
        token = f"ya29.access-{len(self.issued) + 1}"
        self.issued.append(token)
        return json_reply({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})
