"""Who is calling: JWT bearer tokens, roles, and the units a caller may see.

A token is a JWT (RFC 7519) signed with the operator's shared secret (HS256), or by an identity
provider whose public key (PEM) or JWKS URL is configured (RS256, ES256, EdDSA). Its claims:

- ``sub``: who (a handler's id, a staff account, a system);
- ``role``: one of ``ROLES``;
- ``unit``: the unit the role is held in (a grid, community, street, district or department
  code); every role but ``ops`` and ``resident`` has one;
- ``handler_id``: for the handler roles, the registry's handler id (defaults to ``sub``);
- ``iss`` and ``aud`` as configured (``WANGGE_AUTH_ISSUER``, ``WANGGE_AUTH_AUDIENCE``), ``exp``.

A caller's reach is the subtree of its unit: a grid worker sees the cases of their grid, community
staff those of the community and its grids, the command centre everything in its district
(``in_scope``). Nothing a caller sends in a body or a query changes who they are.

Pages cannot send a bearer header when a browser navigates: a service that serves pages sets
``app.state.sessions`` (``shared.runtime.signin.Sessions``), and a request without a bearer token
is then the caller its session cookie names; an unsafe method (POST, ...) on a cookie session
must also carry ``X-Requested-With: wangge-console``, which no cross-site form can send. A token
with a ``purpose`` claim (a sign-in link's) is never a bearer token.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.runtime.settings import ConfigurationError, Settings


class Role(StrEnum):
    RESIDENT = "resident"
    GRID_WORKER = "grid_worker"
    COMMUNITY_STAFF = "community_staff"
    PARTY_VOLUNTEER = "party_volunteer"
    STREET_STAFF = "street_staff"
    DEPARTMENT_STAFF = "department_staff"
    COMMAND_CENTRE = "command_centre"
    OPS = "ops"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)
# The roles that handle cases (and may act on them through the handler API)
HANDLER_ROLES = frozenset(
    {
        Role.GRID_WORKER,
        Role.COMMUNITY_STAFF,
        Role.PARTY_VOLUNTEER,
        Role.STREET_STAFF,
        Role.DEPARTMENT_STAFF,
    }
)
# The roles that read a unit's figures (metrics, hot issues, ranking) within their reach
STAFF_ROLES = frozenset({*HANDLER_ROLES, Role.COMMAND_CENTRE})
UNSCOPED_ROLES = frozenset({Role.OPS, Role.RESIDENT})
ASYMMETRIC = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role
    unit: str | None
    handler_id: str | None = None

    @property
    def is_handler(self) -> bool:
        return self.role in HANDLER_ROLES


def in_scope(principal: Principal, unit_and_ancestors: Collection[str]) -> bool:
    """Whether ``principal`` reaches a unit, given that unit's code and its ancestors' codes (a
    department's case: the department's code and its parent's). Pure."""
    return principal.unit is not None and principal.unit in unit_and_ancestors


class InvalidToken(Exception):
    """The token cannot be accepted; the message says why (never the token)."""


class TokenVerifier:
    """Verifies bearer tokens with the configured key; ``configured`` is False when no key is."""

    def __init__(self, settings: Settings) -> None:
        self.issuer = settings.auth_issuer
        self.audience = settings.auth_audience
        self.leeway = settings.auth_leeway_s
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        self.algorithms: list[str] = []
        if settings.auth_jwks_url:
            self._jwks = jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True, lifespan=300)
            self.algorithms = ASYMMETRIC
        elif settings.auth_jwt_public_key:
            self._key = _public_key(settings.auth_jwt_public_key)
            self.algorithms = ASYMMETRIC
        elif settings.auth_jwt_secret:
            secret = settings.auth_jwt_secret.get_secret_value()
            if len(secret.encode()) < 32:
                raise ConfigurationError(
                    "WANGGE_AUTH_JWT_SECRET must be at least 32 bytes (wangge token secret "
                    "prints one)"
                )
            self._key = secret
            self.algorithms = ["HS256"]

    @property
    def configured(self) -> bool:
        return bool(self.algorithms)

    async def verify(self, token: str, *, purpose: str | None = None) -> Principal:
        """The caller a bearer token names (``purpose``: a token made for that purpose only,
        such as a sign-in link's; a bearer token has none)."""
        return principal_of(await self.claims(token, purpose=purpose))

    async def claims(self, token: str, *, purpose: str | None = None) -> dict[str, Any]:
        """The verified claims of ``token``, which must have been made for ``purpose``."""
        if not self.configured:
            raise InvalidToken("authentication is not configured on this service")
        try:
            key = self._key
            if self._jwks is not None:
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key = signing.key
            claims = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        if claims.get("purpose") != purpose:
            raise InvalidToken(
                "a sign-in link's token is not a bearer token"
                if purpose is None
                else f"not a {purpose} token"
            )
        principal_of(claims)
        return claims


def principal_of(claims: dict[str, Any]) -> Principal:
    """The caller the verified ``claims`` name. Pure."""
    try:
        role = Role(str(claims.get("role")))
    except ValueError:
        raise InvalidToken(f"role must be one of {', '.join(ROLES)}") from None
    unit = claims.get("unit")
    if unit is not None and not isinstance(unit, str):
        raise InvalidToken("unit must be a string")
    if role not in UNSCOPED_ROLES and not unit:
        raise InvalidToken(f"a {role} token must name its unit")
    subject = str(claims["sub"])
    handler_id = claims.get("handler_id") or (subject if role in HANDLER_ROLES else None)
    return Principal(subject, role, unit, str(handler_id) if handler_id else None)


def _public_key(value: str) -> Any:
    """A PEM public key, given inline or as a file path."""
    from pathlib import Path

    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = value if "-----BEGIN" in value else Path(value).read_text()
    try:
        return load_pem_public_key(text.encode())
    except ValueError:
        raise ConfigurationError("WANGGE_AUTH_JWT_PUBLIC_KEY is not a PEM public key") from None


def issue_token(
    settings: Settings,
    *,
    role: str,
    unit: str | None,
    handler_id: str | None = None,
    subject: str | None = None,
    ttl_s: int = 3600,
    private_key: Any = None,
    purpose: str | None = None,
) -> str:
    """A token for ``role`` in ``unit`` (development, tests, and ``wangge token issue``), signed
    with the shared secret, or with ``private_key`` (a PEM private key) when given; ``purpose``
    makes it good for that only (``shared.runtime.signin``), never as a bearer token."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.auth_issuer,
        "aud": settings.auth_audience,
        "sub": subject or handler_id or f"{role}:{unit or '-'}",
        "role": role,
        "iat": now,
        "exp": now + ttl_s,
        "jti": uuid.uuid4().hex,
    }
    if unit:
        claims["unit"] = unit
    if handler_id:
        claims["handler_id"] = handler_id
    if purpose:
        claims["purpose"] = purpose
    principal_of(claims)  # refuse to sign what no service would accept
    if private_key is not None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        key = load_pem_private_key(private_key.encode(), password=None)
        return jwt.encode(claims, key, algorithm=_algorithm(key))  # type: ignore[arg-type]
    if settings.auth_jwt_secret is None:
        raise ConfigurationError("WANGGE_AUTH_JWT_SECRET is not set: no key to sign with")
    return jwt.encode(claims, settings.auth_jwt_secret.get_secret_value(), algorithm="HS256")


def _algorithm(key: Any) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    raise ConfigurationError("the private key must be RSA, EC (P-256) or Ed25519")


# --- FastAPI dependencies -----------------------------------------------------------------------

_bearer = HTTPBearer(auto_error=False, description="A JWT from `wangge token issue` or the IdP")


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def authenticated(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    """The caller, from the ``Authorization: Bearer`` header (or, where the service has pages,
    its session cookie); 401 without a valid token."""
    if credentials is None:
        sessions = getattr(request.app.state, "sessions", None)
        if sessions is not None and sessions.cookie_name in request.cookies:
            return _session_caller(request, sessions)
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    verifier: TokenVerifier = request.app.state.verifier
    try:
        return await verifier.verify(credentials.credentials)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from None


SESSION_HEADER = ("X-Requested-With", "wangge-console")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _session_caller(request: Request, sessions: Any) -> Principal:
    try:
        principal: Principal = sessions.principal(request.cookies[sessions.cookie_name])
    except InvalidToken as exc:
        raise HTTPException(401, f"session: {exc}") from None
    name, value = SESSION_HEADER
    if request.method not in _SAFE_METHODS and request.headers.get(name) != value:
        raise HTTPException(403, f"a page's {request.method} must carry {name}: {value}")
    return principal


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller, who must hold one of ``roles`` (403 otherwise)."""
    allowed = frozenset(roles)

    async def dependency(principal: Principal = Depends(authenticated)) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(403, f"the {principal.role} role may not do this")
        return principal

    return dependency
