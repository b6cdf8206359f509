"""``wangge token``: bearer tokens for the HTTP APIs (docs/integration.md, "Identity").

- ``wangge token secret``: a fresh signing secret for ``WANGGE_AUTH_JWT_SECRET``.
- ``wangge token issue --role ROLE --unit UNIT [--handler ID] [--ttl 3600]``: a JWT the
  services accept, signed with ``WANGGE_AUTH_JWT_SECRET`` (or ``--private-key FILE``, a PEM
  private key whose public half the services have in ``WANGGE_AUTH_JWT_PUBLIC_KEY``), for
  development, tests and service accounts. In production an identity provider issues them.
- ``wangge token login-url --role ROLE --unit UNIT [--handler ID] [--url URL]``: a single-use
  sign-in link to the pages (the command-centre board: ``CONSOLE_URL``, which ``make up`` writes
  into ``.run/env``), good for five minutes (``shared.runtime.signin``).

The token is printed on stdout and nothing else prints or logs it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import typer

from cli.common import settings
from shared.runtime.identity import ROLES, InvalidToken, issue_token
from shared.runtime.settings import ConfigurationError
from shared.runtime.signin import SIGNIN_TTL_S, issue_signin_token, signin_url

app = typer.Typer(help="Bearer tokens for the HTTP APIs.", no_args_is_help=True)


@app.command("secret")
def secret() -> None:
    """Print a fresh signing secret for WANGGE_AUTH_JWT_SECRET."""
    typer.echo(secrets.token_urlsafe(48))


@app.command("issue")
def issue(
    role: str = typer.Option(..., "--role", help=f"one of {', '.join(ROLES)}"),
    unit: str | None = typer.Option(None, "--unit", help="the unit the role is held in"),
    handler: str | None = typer.Option(None, "--handler", help="the registry's handler id"),
    subject: str | None = typer.Option(None, "--subject", help="sub claim (default: derived)"),
    ttl: int = typer.Option(3600, "--ttl", min=60, max=366 * 86400, help="seconds"),
    private_key: Path | None = typer.Option(
        None, "--private-key", exists=True, dir_okay=False, help="sign with this PEM key"
    ),
) -> None:
    """Print a bearer token for ROLE in UNIT."""
    try:
        token = issue_token(
            settings(),
            role=role,
            unit=unit,
            handler_id=handler,
            subject=subject,
            ttl_s=ttl,
            private_key=private_key.read_text() if private_key else None,
        )
    except (InvalidToken, ConfigurationError) as exc:
        typer.echo(f"wangge token issue: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(token)


def _console_url() -> str:
    if os.environ.get("CONSOLE_URL"):
        return os.environ["CONSOLE_URL"]
    return os.environ.get("DISPATCH_URL", "http://127.0.0.1:8000").rstrip("/") + "/console/"


@app.command("login-url")
def login_url(
    role: str = typer.Option(..., "--role", help=f"one of {', '.join(ROLES)}"),
    unit: str | None = typer.Option(None, "--unit", help="the unit the role is held in"),
    handler: str | None = typer.Option(None, "--handler", help="the registry's handler id"),
    url: str | None = typer.Option(
        None, "--url", help="the page (default: $CONSOLE_URL, else $DISPATCH_URL/console/)"
    ),
    ttl: int = typer.Option(SIGNIN_TTL_S, "--ttl", min=30, max=3600, help="seconds"),
) -> None:
    """Print a single-use sign-in link to the pages for ROLE in UNIT."""
    try:
        token = issue_signin_token(settings(), role=role, unit=unit, handler_id=handler, ttl_s=ttl)
    except (InvalidToken, ConfigurationError) as exc:
        typer.echo(f"wangge token login-url: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(signin_url(url or _console_url(), token))
