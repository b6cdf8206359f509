"""What ``make demo`` prints for the pages once its story is told: the board's sign-in link for
the district's command centre and a grid worker's for the phone page, each a single-use sign-in
token (purpose signin) naming that role, unit and handler; the links are the board's login route."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from devstack.demo import DEMO_WORKER, LINK_TTL_S, sign_in_links
from devstack.testbed import auth_secret_for_tests
from shared.runtime.identity import TokenVerifier
from shared.runtime.settings import Settings
from shared.runtime.signin import SIGNIN_PURPOSE


async def test_the_demo_prints_a_link_for_the_board_and_one_for_a_grid_worker() -> None:
    settings = Settings(WANGGE_AUTH_JWT_SECRET=auth_secret_for_tests())
    links = sign_in_links(settings, "http://127.0.0.1:8082/console/")
    assert len(links) == 2
    verifier = TokenVerifier(settings)
    who = []
    for _, url in links:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
            "http://127.0.0.1:8082/console/login"
        )
        token = parse_qs(parts.query)["token"][0]
        claims = await verifier.claims(token, purpose=SIGNIN_PURPOSE)
        assert claims["exp"] - claims["iat"] == LINK_TTL_S
        p = await verifier.verify(token, purpose=SIGNIN_PURPOSE)
        who.append((p.role.value, p.unit, p.handler_id))
    assert who == [("command_centre", "WC", None), DEMO_WORKER]
