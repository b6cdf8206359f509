"""Signing in to the pages: single-use sign-in links and the session cookies they become.

A browser cannot send a bearer header when it navigates to a page. So a page is entered through
a **sign-in link**: ``<page>/login?token=<JWT>``, the token an ordinary wangge JWT with the claim
``purpose: signin`` and a short life (``SIGNIN_TTL_S``), which no API accepts as a bearer token
(``identity.TokenVerifier.verify``). The service that serves the page checks it, records its
``jti`` so that a second use is refused (the service's own table: every replica sees it), sets a
**session cookie** and redirects to the page without the token, so it stays neither in the
address bar nor in the history.

The session cookie is a JWT (HS256) signed with the session key (``WANGGE_SESSION_KEY``, or one
derived from ``WANGGE_AUTH_JWT_SECRET``) naming the same principal, for ``WANGGE_SESSION_TTL_S``;
it is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's page sends it) and,
with ``WANGGE_SESSION_COOKIE_SECURE``, ``Secure``. ``identity.authenticated`` accepts it where a
service sets ``app.state.sessions``.

``wangge token login-url`` prints sign-in links (development and tests; in production the
identity provider's sign-in would be exchanged the same way).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any, Final

import jwt

from shared.runtime.identity import InvalidToken, Principal, issue_token, principal_of
from shared.runtime.settings import ConfigurationError, Settings

SIGNIN_PURPOSE: Final = "signin"
SIGNIN_TTL_S: Final = 300
SESSION_COOKIE: Final = "wangge_session"
_SESSION_AUDIENCE: Final = "wangge-session"


def issue_signin_token(
    settings: Settings,
    *,
    role: str,
    unit: str | None,
    handler_id: str | None = None,
    ttl_s: int = SIGNIN_TTL_S,
) -> str:
    """A sign-in link's token for ``role`` in ``unit``, signed with the shared secret."""
    return issue_token(
        settings, role=role, unit=unit, handler_id=handler_id, ttl_s=ttl_s, purpose=SIGNIN_PURPOSE
    )


def signin_url(page_url: str, token: str) -> str:
    """The link: the page's ``login`` route with the token (``page_url`` ends with a slash)."""
    return f"{page_url.rstrip('/')}/login?token={token}"


def session_key(settings: Settings) -> bytes | None:
    """The key session cookies are signed with: the configured one, else one derived from the
    bearer tokens' shared secret (so that a development stack needs nothing more), else None."""
    if settings.session_key is not None:
        key = settings.session_key.get_secret_value().encode()
        if len(key) < 32:
            raise ConfigurationError("WANGGE_SESSION_KEY must be at least 32 bytes")
        return key
    if settings.auth_jwt_secret is not None:
        secret = settings.auth_jwt_secret.get_secret_value().encode()
        return hmac.new(secret, b"wangge session cookies", hashlib.sha256).digest()
    return None


class Sessions:
    """Issues and reads session cookies (``identity.authenticated`` calls ``principal``)."""

    cookie_name = SESSION_COOKIE

    def __init__(self, settings: Settings) -> None:
        self._key = session_key(settings)
        self.issuer = settings.auth_issuer
        self.ttl_s = settings.session_ttl_s
        self.secure = settings.session_cookie_secure

    @property
    def configured(self) -> bool:
        return self._key is not None

    def issue(self, principal: Principal) -> str:
        if self._key is None:
            raise ConfigurationError("no session key: set WANGGE_SESSION_KEY")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": _SESSION_AUDIENCE,
            "sub": principal.subject,
            "role": principal.role.value,
            "iat": now,
            "exp": now + self.ttl_s,
            "jti": uuid.uuid4().hex,
        }
        if principal.unit:
            claims["unit"] = principal.unit
        if principal.handler_id:
            claims["handler_id"] = principal.handler_id
        return jwt.encode(claims, self._key, algorithm="HS256")

    def principal(self, cookie: str) -> Principal:
        if self._key is None:
            raise InvalidToken("sessions are not configured on this service")
        try:
            claims = jwt.decode(
                cookie,
                self._key,
                algorithms=["HS256"],
                audience=_SESSION_AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from None
        return principal_of(claims)

    def cookie_settings(self) -> dict[str, Any]:
        """The ``Response.set_cookie`` arguments besides the value."""
        return {
            "key": self.cookie_name,
            "max_age": self.ttl_s,
            "path": "/",
            "httponly": True,
            "samesite": "strict",
            "secure": self.secure,
        }
