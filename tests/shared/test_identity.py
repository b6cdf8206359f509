"""Bearer tokens: who a token says the caller is, and what no token may do."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.runtime.identity import (
    InvalidToken,
    Principal,
    Role,
    TokenVerifier,
    in_scope,
    issue_token,
    principal_of,
)
from shared.runtime.settings import ConfigurationError, Settings

SECRET = "a-test-secret-that-is-long-enough-0123456789"


def settings(**values: Any) -> Settings:
    return Settings(**values)


def hs_settings() -> Settings:
    return settings(WANGGE_AUTH_JWT_SECRET=SECRET)


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "iss": "wangge",
        "aud": "wangge",
        "sub": "h-0001",
        "role": "grid_worker",
        "unit": "WC-YY-OJY-G01",
        "iat": now,
        "exp": now + 600,
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


async def test_an_issued_token_names_role_unit_and_handler() -> None:
    s = hs_settings()
    token = issue_token(s, role="grid_worker", unit="WC-YY-OJY-G01", handler_id="h-0001")
    p = await TokenVerifier(s).verify(token)
    assert p == Principal("h-0001", Role.GRID_WORKER, "WC-YY-OJY-G01", "h-0001")
    assert p.is_handler


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"exp": int(time.time()) - 120}, "expired"),
        ({"aud": "another-system"}, "(?i)audience"),
        ({"iss": "someone-else"}, "(?i)issuer"),
        ({"role": "mayor"}, "role must be one of"),
        ({"unit": None}, "must name its unit"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "sub"),
    ],
)
async def test_a_token_that_breaks_a_rule_is_refused(over: dict[str, Any], why: str) -> None:
    token = jwt.encode(claims(**over), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match=why):
        await TokenVerifier(hs_settings()).verify(token)


async def test_a_token_signed_with_another_key_or_none_is_refused() -> None:
    verifier = TokenVerifier(hs_settings())
    forged = jwt.encode(claims(), "another-secret-also-long-enough-0123456789", algorithm="HS256")
    with pytest.raises(InvalidToken, match="Signature"):
        await verifier.verify(forged)
    unsigned = jwt.encode(claims(), None, algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        await verifier.verify(unsigned)


async def test_a_service_without_a_key_accepts_no_token() -> None:
    verifier = TokenVerifier(settings())
    assert not verifier.configured
    with pytest.raises(InvalidToken, match="not configured"):
        await verifier.verify(jwt.encode(claims(), SECRET, algorithm="HS256"))


def test_a_short_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        TokenVerifier(settings(WANGGE_AUTH_JWT_SECRET="short"))


def _pem_public(key: Any) -> str:
    pem: bytes = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def _pem_private(key: Any) -> str:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem.decode()


async def test_an_identity_providers_public_key_verifies_its_tokens(tmp_path: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "idp.pem"
    path.write_text(_pem_public(key))
    s = settings(WANGGE_AUTH_JWT_PUBLIC_KEY=str(path))
    token = issue_token(s, role="community_staff", unit="WC-YY-OJY", private_key=_pem_private(key))
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    p = await TokenVerifier(s).verify(token)
    assert p.role is Role.COMMUNITY_STAFF and p.unit == "WC-YY-OJY" and p.handler_id
    # an HS256 token made with the public key as its secret (the classic confusion) is refused
    confused = jwt.encode(claims(), "x" * 40, algorithm="HS256")
    with pytest.raises(InvalidToken):
        await TokenVerifier(s).verify(confused)


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, Any]]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    body = json.dumps({"keys": [jwk]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/jwks.json", key
    finally:
        server.shutdown()


async def test_tokens_verify_against_a_jwks_url(jwks_server: tuple[str, Any]) -> None:
    url, key = jwks_server
    verifier = TokenVerifier(settings(WANGGE_AUTH_JWKS_URL=url))
    token = jwt.encode(claims(role="command_centre", unit="WC"), key, "RS256", {"kid": "k1"})
    p = await verifier.verify(token)
    assert p.role is Role.COMMAND_CENTRE and p.unit == "WC" and p.handler_id is None
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(InvalidToken):
        await verifier.verify(jwt.encode(claims(), other, "RS256", {"kid": "k1"}))


def test_reach_is_the_subtree_of_the_tokens_unit() -> None:
    grid = ["WC-YY-OJY-G01", "WC-YY-OJY", "WC-YY", "WC"]  # a grid and its ancestors
    worker = principal_of(claims())
    assert in_scope(worker, grid)
    assert not in_scope(worker, ["WC-YY-HPY-G01", "WC-YY-HPY", "WC-YY", "WC"])
    street = principal_of(claims(role="street_staff", unit="WC-YY", sub="s-1"))
    assert in_scope(street, grid) and not in_scope(street, ["WC-ZHL", "WC"])
    ops = principal_of(claims(role="ops", unit=None, sub="ops-1"))
    assert not in_scope(ops, grid)
