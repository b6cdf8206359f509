"""Photos on dispatch (docs/dispatch.md, "Photos"), on the real broker and database, and the
object store as a real S3-compatible process: a handler uploads a photo for a case (checked,
its GPS position stripped, stored in PostgreSQL or the object store), names it in an action of
any kind, and it is on the case's timeline; only those who may see the case fetch it; a report's
photo (intake's) is a signed redirect to intake."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiobotocore.session import get_session
from PIL import Image
from PIL.ExifTags import IFD

from devstack.objectstore import LocalObjectStore
from devstack.testbed import Testbed, media_link_key_for_tests
from shared.contract.events import CasePhoto
from shared.contract.keys import parse_key
from shared.media.links import link_valid
from tests.dispatch.api_client import G02, Api, api
from tests.dispatch.support import case_opened, driving, load_registry, start_dispatch
from tests.media.photos import CAMERA, jpeg_with_gps, png_with_text

QUIET = 3600.0
INTAKE = "https://wangge.example.gov.cn/intake"


async def upload(
    http: Api, case_id: str, token: str | None, data: bytes, name: str = "p.jpg"
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = await http.client.post(
        f"/cases/{case_id}/photos", files={"photo": (name, data, "image/jpeg")}, headers=headers
    )
    return resp.status_code, resp.json()


async def fetch(http: Api, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.client.get(url, headers=headers)


async def s3_keys(store: LocalObjectStore, bucket: str) -> list[str]:
    async with get_session().create_client(
        "s3",
        endpoint_url=store.endpoint,
        region_name=store.region,
        aws_access_key_id=store.access_key,
        aws_secret_access_key=store.secret_key,
    ) as client:
        listed = await client.list_objects_v2(Bucket=bucket)
        return [o["Key"] for o in listed.get("Contents", [])]


@pytest.mark.parametrize("where", ["postgres", "s3"])
async def test_a_photo_goes_with_an_action_and_is_on_the_timeline(
    bed: Testbed, object_store: LocalObjectStore, where: str
) -> None:
    bucket = f"photos-{uuid.uuid4().hex[:12]}"
    s3: dict[str, Any] = object_store.settings(bucket, prefix="test/") if where == "s3" else {}
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET, **s3)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        me = http.worker("h-0001")

        sent = jpeg_with_gps()
        status, photo = await upload(http, cid, me, sent)
        assert status == 201, photo
        pid = photo["photo_id"]
        assert (photo["origin"], photo["content_type"], photo["uploaded_by"]) == (
            "upload",
            "image/jpeg",
            "h-0001",
        )
        assert (photo["width"], photo["height"]) == (64, 48)
        assert photo["url"] == f"/cases/{cid}/photos/{pid}"

        served = await fetch(http, photo["url"], me)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert len(served.content) == photo["size"]
        with Image.open(io.BytesIO(served.content)) as im:
            assert not im.getexif().get_ifd(IFD.GPSInfo) and not im.getexif()
        assert CAMERA.encode() not in served.content

        # where the bytes are: the object store, or dispatch's own schema
        in_db = await svc.pool.fetchval("SELECT count(*) FROM photo_blobs")
        if where == "s3":
            assert in_db == 0
            assert await s3_keys(object_store, bucket) == [f"test/dispatch/{pid}"]
        else:
            assert in_db == 1

        status, second = await upload(http, cid, me, png_with_text(), "p.png")
        assert status == 201 and second["content_type"] == "image/png"
        status, body = await http.act(cid, me, {"action": "accept", "photos": [pid]})
        assert status == 200, body
        status, body = await http.act(
            cid, me, {"action": "resolve", "note": "已清运", "photos": [second["photo_id"], pid]}
        )
        assert status == 200, body

        status, case = await http.get(f"/cases/{cid}", me)
        assert status == 200, case
        steps = {s["event"]: s["detail"] for s in case["timeline"]}
        assert steps["accept"]["photos"] == [pid]
        assert steps["resolve"]["photos"] == [second["photo_id"], pid]
        assert "photos" not in steps["dispatched"]
        assert [(p["photo_id"], p["origin"]) for p in case["photos"]] == [
            (pid, "upload"),
            (second["photo_id"], "upload"),
        ]


async def test_photos_on_actions_over_kafka_and_unknown_ones_refused(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        other = (await d.open(case_opened()))["case_id"]
        me = http.worker("h-0001")
        status, photo = await upload(http, cid, me, jpeg_with_gps())
        assert status == 201, photo
        pid = photo["photo_id"]

        # a photo of another case, or none at all, is refused: nothing changes
        status, body = await http.act(other, me, {"action": "accept", "photos": [pid]})
        assert status == 422, body
        assert body["errors"][0]["field"] == "body.photos"
        assert "was not uploaded for this case" in body["errors"][0]["message"]
        status, body = await http.act(cid, me, {"action": "accept", "photos": ["ab" * 32]})
        assert status == 422 and body["errors"][0]["field"] == "body.photos"
        status, body = await http.act(cid, me, {"action": "accept", "photos": ["not-an-id"]})
        assert status == 422, body
        assert (await http.get(f"/cases/{cid}", me))[1]["state"] == "dispatched"

        aid = await d.act(cid, "h-0001", "accept", photos=["cd" * 32])
        assert "was not uploaded" in await d.rejected(aid, cid)
        await d.act(cid, "h-0001", "accept", photos=[pid])
        await d.one("cases.accepted", cid)
        case = (await http.get(f"/cases/{cid}", me))[1]
        assert [s["detail"].get("photos") for s in case["timeline"] if s["event"] == "accept"] == [
            [pid]
        ]


async def test_type_and_size_are_checked(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET, WANGGE_MEDIA_MAX_BYTES=4096)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        me = http.worker("h-0001")
        gif = io.BytesIO()
        Image.new("RGB", (8, 8)).save(gif, format="GIF")
        for data in (gif.getvalue(), b"%PDF-1.7 not a photo", b""):
            status, body = await upload(http, cid, me, data, "photo.jpg")  # the name lies
            assert status == 422, body
            assert body["errors"][0]["field"] == "body.photo", body
        status, body = await upload(http, cid, me, jpeg_with_gps()[:200])
        assert status == 422 and "cannot be read" in body["errors"][0]["message"]
        for side, why in ((40, "read, then refused"), (400, "refused by its Content-Length")):
            big = io.BytesIO()
            Image.effect_noise((side, side), 80).convert("RGB").save(big, format="PNG")
            assert len(big.getvalue()) > 4096, why
            status, body = await upload(http, cid, me, big.getvalue(), "big.png")
            assert status == 413, (why, body)
            assert "larger than 4096 bytes" in body["detail"]
        resp = await http.client.post(
            f"/cases/{cid}/photos",
            content=jpeg_with_gps(),
            headers={"Authorization": f"Bearer {me}", "Content-Type": "image/jpeg"},
        )
        assert resp.status_code == 422 and resp.json()["errors"][0]["field"] == "body.photo"
        assert await svc.pool.fetchval("SELECT count(*) FROM case_photos") == 0


async def test_only_those_who_may_see_the_case_get_its_photos(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET)
    await load_registry(bed)
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(case_opened()))["case_id"]
        mine = (await d.open(case_opened(location={"grid": G02, "community": "WC-YY-OJY"})))[
            "case_id"
        ]
        me = http.worker("h-0001")
        status, photo = await upload(http, cid, me, jpeg_with_gps())
        assert status == 201, photo
        url = photo["url"]

        # a worker of another grid: neither the case nor its photos exist for them
        other = http.worker("h-0003", G02)
        assert (await fetch(http, url, other)).status_code == 404
        assert (await upload(http, cid, other, jpeg_with_gps()))[0] == 404
        assert (await http.get(f"/cases/{cid}", other))[0] == 404
        # nor under a case they do reach
        resp = await fetch(http, f"/cases/{mine}/photos/{photo['photo_id']}", other)
        assert resp.status_code == 404
        # no token, a bad one; roles without the API
        assert (await fetch(http, url, None)).status_code == 401
        assert (await fetch(http, url, "not-a-jwt")).status_code == 401
        for role in ("resident", "ops"):
            assert (await fetch(http, url, http.auth(role))).status_code == 403
        assert (await upload(http, cid, None, jpeg_with_gps()))[0] == 401

        # those who reach the case: its community's staff, the command centre, its grid
        for token in (
            http.auth("community_staff", "WC-YY-OJY", "h-0100"),
            http.centre(),
            http.worker("h-0002"),
        ):
            resp = await fetch(http, url, token)
            assert resp.status_code == 200 and resp.content[:3] == b"\xff\xd8\xff"
        # community staff reach the grid's case but may not act on it: no upload
        staff = http.auth("community_staff", "WC-YY-OJY", "h-0100")
        status, body = await upload(http, cid, staff, jpeg_with_gps())
        assert (status, body["detail"]) == (403, "you may not act on this case now")
        assert (await fetch(http, f"/cases/{cid}/photos/{'ef' * 32}", me)).status_code == 404
        assert (await fetch(http, f"/cases/{cid}/photos/nope", me)).status_code == 422


async def test_a_reports_photo_is_a_signed_redirect_to_intake(bed: Testbed) -> None:
    svc = await start_dispatch(bed, WANGGE_SWEEP_INTERVAL_S=QUIET, WANGGE_PUBLIC_INTAKE_URL=INTAKE)
    await load_registry(bed)
    pid = "12" * 32
    opened = case_opened().model_copy(
        update={"photos": [CasePhoto(photo_id=pid, content_type="image/jpeg", size=1234)]}
    )
    async with driving(bed, "test/apps") as d, api(bed, svc) as http:
        cid = (await d.open(opened))["case_id"]
        me = http.worker("h-0001")
        status, case = await http.get(f"/cases/{cid}", me)
        assert status == 200, case
        assert [(p["photo_id"], p["origin"], p["report_id"]) for p in case["photos"]] == [
            (pid, "report", opened.report_ids[0])
        ]
        resp = await fetch(http, f"/cases/{cid}/photos/{pid}", me)
        assert resp.status_code == 307, resp.text
        link = urlsplit(resp.headers["location"])
        assert f"{link.scheme}://{link.netloc}{link.path}" == f"{INTAKE}/media/{pid}"
        q = {k: v[0] for k, v in parse_qs(link.query).items()}
        key = parse_key(media_link_key_for_tests(), "WANGGE_MEDIA_LINK_KEY")
        assert link_valid(key, pid, q["exp"], q["sig"], now=time.time())
        assert int(q["exp"]) <= time.time() + 300 + 1
        # the redirect is only for those who reach the case
        assert (
            await fetch(http, f"/cases/{cid}/photos/{pid}", http.worker("h-0003", G02))
        ).status_code == 404
