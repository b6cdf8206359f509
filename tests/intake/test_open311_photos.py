"""A photo uploaded with an Open311 POST (the file ``media``), end to end on the real broker,
database and, for the object store, moto's S3 server as a process: intake checks it, strips its
metadata and stores it, the case's events name it, dispatch lists it for those who may see the
case and sends them to intake with a signed link, which intake checks before serving it."""

from __future__ import annotations

import io
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from cli.client import Publisher, TopicReader
from devstack.objectstore import LocalObjectStore
from devstack.testbed import Testbed, media_link_key_for_tests
from devstack.wait import eventually
from shared.contract.keys import parse_key
from shared.media.links import media_link
from tests.dispatch.api_client import G02, api
from tests.dispatch.support import start_dispatch
from tests.intake.open311_support import V2, client, errors_of, issue_key, spec_form, start
from tests.media.photos import CAMERA, GPS_LAT, jpeg_with_gps

INTAKE = "http://intake"


def multipart(key: str, photo: bytes, name: str = "photo.jpg", **over: str) -> dict[str, Any]:
    form = spec_form(key, **over)
    form.pop("media_url")
    return {"data": form, "files": {"media": (name, photo, "image/jpeg")}}


@pytest.mark.parametrize("where", ["postgres", "s3"])
async def test_an_uploaded_photo_reaches_those_who_may_see_the_case(
    bed: Testbed, object_store: LocalObjectStore, where: str
) -> None:
    bucket = f"photos-{uuid.uuid4().hex[:12]}"
    s3: dict[str, Any] = object_store.settings(bucket) if where == "s3" else {}
    run = await start(bed, **s3)
    dispatch = await start_dispatch(
        bed, WANGGE_SWEEP_INTERVAL_S=3600.0, WANGGE_PUBLIC_INTAKE_URL=INTAKE, **s3
    )
    key = await issue_key(run.svc, "hotline-12345", "hotline_12345")
    async with (
        client(run.svc) as intake,
        api(bed, dispatch) as http,
        TopicReader(bed.settings(), "cases.opened") as reader,
    ):
        posted = await intake.post(f"{V2}/requests.json", **multipart(key, jpeg_with_gps()))
        assert posted.status_code == 200, posted.text
        case_id = posted.json()[0]["service_request_id"]
        opened = await reader.wait_for(
            lambda r: [x for x in r.of("cases.opened") if x.key == case_id], what="cases.opened"
        )
        photos = opened[0].json()["photos"]
        assert [(p["content_type"], p["width"], p["height"]) for p in photos] == [
            ("image/jpeg", 64, 48)
        ]
        pid = photos[0]["photo_id"]
        assert (opened[0].value or b"").count(pid.encode()) == 1  # the id, never the bytes

        me = http.worker("h-0001")

        async def listed() -> list[dict[str, Any]]:
            status, case = await http.get(f"/cases/{case_id}", me)
            return list(case["photos"]) if status == 200 else []

        found = await eventually(listed, what="the case's photos on dispatch")
        assert [(p["photo_id"], p["origin"]) for p in found] == [(pid, "report")]

        redirect = await http.client.get(found[0]["url"], headers={"Authorization": f"Bearer {me}"})
        assert redirect.status_code == 307, redirect.text
        link = redirect.headers["location"]
        assert link.startswith(f"{INTAKE}/media/{pid}?exp=")
        served = await intake.get(link)
        assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
        assert served.headers["x-content-type-options"] == "nosniff"
        with Image.open(io.BytesIO(served.content)) as im:
            assert not im.getexif()
        assert CAMERA.encode() not in served.content
        assert str(GPS_LAT[2]).encode() not in served.content

        # stored where the settings say
        in_db = await run.svc.pool.fetchval("SELECT count(*) FROM photo_blobs")
        assert in_db == (0 if where == "s3" else 1)

        # a worker of another grid gets no link; a link altered, expired or absent is refused
        other = http.worker("h-0003", G02)
        denied = await http.client.get(
            found[0]["url"], headers={"Authorization": f"Bearer {other}"}
        )
        assert denied.status_code == 404
        q = {k: v[0] for k, v in parse_qs(urlsplit(link).query).items()}
        tampered = q["sig"][:-1] + ("A" if q["sig"][-1] != "A" else "B")
        mk = parse_key(media_link_key_for_tests(), "WANGGE_MEDIA_LINK_KEY")
        for bad in (
            f"/media/{pid}",
            f"/media/{pid}?exp={q['exp']}&sig={tampered}",
            f"/media/{pid}?exp={int(q['exp']) + 60}&sig={q['sig']}",
            media_link(None, mk, pid, int(time.time()) - 1),  # expired
            media_link(None, bytes(32), pid, int(time.time()) + 60),  # another key
        ):
            assert (await intake.get(bad)).status_code == 403, bad
        assert (
            await intake.get(media_link(None, mk, "ab" * 32, int(time.time()) + 60))
        ).status_code == 404


async def test_a_photo_that_is_not_one_is_a_400_naming_media(bed: Testbed) -> None:
    run = await start(bed, WANGGE_MEDIA_MAX_BYTES=8192)
    key = await issue_key(run.svc, "hotline-12345", "hotline_12345")
    async with client(run.svc) as intake:
        gif = io.BytesIO()
        Image.new("RGB", (8, 8)).save(gif, format="GIF")
        big = io.BytesIO()
        Image.effect_noise((120, 120), 80).convert("RGB").save(big, format="PNG")
        for photo, says in (
            (gif.getvalue(), "must be a JPEG, PNG or WebP image"),
            (b"<html><script>alert(1)</script></html>", "must be a JPEG, PNG or WebP image"),
            (big.getvalue(), "larger than 8192 bytes"),
        ):
            answer = await intake.post(f"{V2}/requests.json", **multipart(key, photo))
            assert answer.status_code == 400, answer.text
            assert any(
                e["description"].startswith("media:") and says in e["description"]
                for e in errors_of(answer)
            ), errors_of(answer)
        extra = multipart(key, jpeg_with_gps())
        extra["files"] = {"other": ("x.jpg", jpeg_with_gps(), "image/jpeg")}
        answer = await intake.post(f"{V2}/requests.json", **extra)
        assert answer.status_code == 400 and "media" in answer.text
        assert await run.svc.pool.fetchval("SELECT count(*) FROM photos") == 0
        assert await run.svc.pool.fetchval("SELECT count(*) FROM reports") == 0
        # and media_url alone still works as before, uploading nothing
        answer = await intake.post(f"{V2}/requests.json", data=spec_form(key))
        assert answer.status_code == 200, answer.text
        assert await run.svc.pool.fetchval("SELECT count(*) FROM photos") == 0


async def test_a_seconding_report_brings_its_photo_and_unknown_ids_are_dropped(
    bed: Testbed,
) -> None:
    run = await start(bed)
    key = await issue_key(run.svc, "hotline-12345", "hotline_12345")
    async with (
        client(run.svc) as intake,
        TopicReader(bed.settings(), "cases.opened", "cases.merged") as reader,
        Publisher(bed.settings(), source="test/wechat") as pub,
    ):
        first = await intake.post(f"{V2}/requests.json", **multipart(key, jpeg_with_gps()))
        case_id = first.json()[0]["service_request_id"]
        # a second report of the same place with another photo seconds the case (附议)
        second = await intake.post(
            f"{V2}/requests.json",
            **multipart(key, jpeg_with_gps(32, 32), phone="13900001111", account_id="9"),
        )
        assert second.json()[0]["service_request_id"] == case_id
        merged = await reader.wait_for(
            lambda r: [x for x in r.of("cases.merged") if x.key == case_id], what="cases.merged"
        )
        assert [(p["width"], p["height"]) for p in merged[0].json()["photos"]] == [(32, 32)]

        # a channel naming a photo intake does not hold (over Kafka): the report stands, the id
        # is dropped
        report = {
            "report_id": "wx-photo-1",
            "source": "weixin_grid_group",
            "submitted_at": "2026-12-02T09:00:00+08:00",
            "location": {"building_code": "WC-YY-OJY-G02-B11"},
            "description": "小区路灯坏了好几天",
            "photo_ids": ["ab" * 32],
        }
        await pub.send("reports.submitted", report, key="wx-photo-1")
        opened = await reader.wait_for(
            lambda r: [x for x in r.of("cases.opened") if "wx-photo-1" in x.json()["report_ids"]],
            what="the Kafka report's case",
        )
        assert opened[0].json()["photos"] == []
    assert await run.svc.pool.fetchval("SELECT count(*) FROM photos") == 2
