"""Open311's pure parts without Kafka or a database: the catalog, a POST's fields as a report,
the filters of GET requests, a case's status from its progress, the XML."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree as ET

import pytest

from services.intake.open311 import catalog, formats, schemas, status, submission
from services.intake.open311.query import BadQuery, parse_w3, request_query
from services.intake.open311.status import SH, Progress, RequestRow
from services.intake.open311.submission import AddressUnit, Invalid
from shared.contract.events import FieldError
from shared.contract.taxonomy import default_taxonomy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T = timedelta(hours=1)


# --- the catalog --------------------------------------------------------------------------------


def test_one_service_per_category_with_a_definition() -> None:
    taxonomy = default_taxonomy()
    services = catalog.services(taxonomy)
    assert len(services) == len(taxonomy.categories) == 22  # 21 and "other"
    for s in services:
        schemas.Service.model_validate(s)
        assert s["metadata"] is True and s["type"] == "realtime"
    ebike = next(s for s in services if s["service_code"] == "ebike_charging")
    assert ebike["service_name"] == "电动车充电" and "飞线" in ebike["keywords"]
    assert ebike["group"] == "诉求代理" and "网格" in ebike["description"]
    definition = catalog.definition(taxonomy.by_code["demolition"])
    schemas.ServiceDefinition.model_validate(definition)
    codes = [a["code"] for a in definition["attributes"]]
    assert codes == ["title", "households_affected", "urgent", "anonymous", "crs", "handling"]
    assert [a["order"] for a in definition["attributes"]] == [1, 2, 3, 4, 5, 6]
    info = definition["attributes"][-1]
    assert info["variable"] is False and "区层级" in info["description"]
    urgent = definition["attributes"][2]
    assert urgent["values"] == [{"key": "true", "name": "是"}, {"key": "false", "name": "否"}]


# --- a POST as a report -------------------------------------------------------------------------


def report(fields: dict[str, str], unit: AddressUnit | None = None) -> object:
    return submission.to_report(
        submission.from_form(fields.items()),
        service_code="sanitation",
        system="hotline-12345",
        channel="hotline_12345",
        report_id="hotline-12345:k1",
        now=NOW,
        address_unit=unit,
    )


def errors_of(fields: dict[str, str], unit: AddressUnit | None = None) -> dict[str, str]:
    with pytest.raises(Invalid) as exc:
        report(fields, unit)
    assert exc.value.status == 400
    return dict(exc.value.errors)


def test_the_specifications_fields_become_the_report() -> None:
    r = report(
        {
            "lat": "30.581",
            "long": "114.331",
            "address_string": "3栋",
            "email": "wang@example.cn",
            "device_id": "tt222111",
            "account_id": "u-42",
            "first_name": "芳",
            "last_name": "王",
            "phone": "138 1234 5678",
            "description": "楼道垃圾没人清运",
            "media_url": "https://img.example.cn/1.jpg",
            "attribute[title]": "垃圾",
            "attribute[households_affected]": "12",
            "attribute[urgent]": "true",
        }
    )
    d = r.model_dump()  # type: ignore[attr-defined]
    assert d["source"] == "hotline_12345" and d["report_id"] == "hotline-12345:k1"
    assert d["category"] == "sanitation" and d["submitted_at"] == NOW
    assert d["location"] == {
        "building_code": None,
        "grid_code": None,
        "address": "3栋",
        "lon": 114.331,
        "lat": 30.581,
        "crs": "wgs84",
    }
    assert d["reporter"] == {
        "name": "王芳",
        "phone": "13812345678",
        "resident_id": "hotline-12345:u-42",
        "anonymous": False,
    }
    assert (d["title"], d["households_affected"], d["urgent"]) == ("垃圾", 12, True)
    assert d["photos"] == ["https://img.example.cn/1.jpg"]
    assert "wang@example.cn" not in str(d) and "tt222111" not in str(d)


def test_an_address_id_is_a_registry_code() -> None:
    base = {"description": "垃圾"}
    building = report(base, AddressUnit("WC-YY-OJY-G01-B03", "building", "欧景苑3栋"))
    assert building.location.building_code == "WC-YY-OJY-G01-B03"  # type: ignore[attr-defined]
    grid = report(base, AddressUnit("WC-YY-OJY-G01", "grid", "欧景苑第一网格"))
    assert grid.location.grid_code == "WC-YY-OJY-G01"  # type: ignore[attr-defined]
    community = report(
        {**base, "address_string": "5栋"}, AddressUnit("WC-YY-OJY", "community", "欧景苑社区")
    )
    assert community.location.address == "欧景苑社区5栋"  # type: ignore[attr-defined]


def test_errors_name_the_open311_fields() -> None:
    assert errors_of({}) == {
        "location": submission.LOCATION_REQUIRED,
        "description": "required",
    }
    wrong = errors_of(
        {
            "lat": "north",
            "long": "114.3",
            "description": "x",
            "phone": "027-8888",
            "attribute[urgent]": "very",
            "attribute[households_affected]": "many",
            "attribute[colour]": "red",
            "attribute[title]": "t" * 101,
            "media_url": "ftp://x",
        }
    )
    assert set(wrong) == {
        "lat",
        "phone",
        "attribute[urgent]",
        "attribute[households_affected]",
        "attribute[colour]",
        "attribute[title]",
        "media_url",
        "location",
    }
    assert "mainland China mobile" in wrong["phone"]
    assert errors_of({"lat": "30.5", "description": "x"})["lat"] == "lat and long go together"
    assert "lat" in errors_of({"lat": "95", "long": "114", "description": "x"})


def test_form_and_json_give_the_same_fields() -> None:
    form = submission.from_form(
        [
            ("service_code", "sanitation"),
            ("attribute[title]", "垃圾"),
            ("attribute[tags][]", "a"),
            ("attribute[tags][]", "b"),
            ("email", ""),  # empty: as if not given
        ]
    )
    body = submission.from_json(
        {"service_code": "sanitation", "attribute": {"title": "垃圾", "tags": ["a", "b"]}}
    )
    assert form == body
    assert form.fields == {"service_code": "sanitation"}
    assert form.attributes == {"title": ["垃圾"], "tags": ["a", "b"]}
    assert submission.from_json({"lat": 30.5, "urgent": True, "x": None}).fields == {
        "lat": "30.5",
        "urgent": "true",
    }
    with pytest.raises(Invalid):
        submission.from_json(["not", "an", "object"])
    with pytest.raises(Invalid):
        submission.from_form([("phone", "13812345678"), ("phone", "13900001111")])


def test_the_report_id_is_the_idempotency_key_scoped_by_system() -> None:
    assert submission.report_id("hotline-12345", "abc-1") == "hotline-12345:abc-1"
    fresh = {submission.report_id("hotline-12345", None) for _ in range(3)}
    assert len(fresh) == 3 and all(r.startswith("hotline-12345:") for r in fresh)
    for bad in ("", "x" * 81, "有中文", "a b"):
        with pytest.raises(Invalid):
            submission.report_id("s", bad)


def test_names_and_rejections() -> None:
    assert submission.full_name("芳", "王") == "王芳"
    assert submission.full_name("John", "Smith") == "John Smith"
    assert submission.full_name(None, None) is None
    assert submission.rejection_errors(
        [
            FieldError(field="location.building_code", message="unknown building"),
            {"field": "location", "message": "no unit matches this location"},
        ]
    ) == [
        ("address_id", "unknown building"),
        ("location", "no unit of the registry matches this location"),
    ]


# --- GET requests' filters ----------------------------------------------------------------------


def q(**given: object) -> object:
    params: dict[str, object] = {
        "service_request_id": None,
        "service_code": None,
        "status": None,
        "start_date": None,
        "end_date": None,
        "page_size": None,
        "page": None,
        "extensions": None,
    }
    params.update(given)
    return request_query(now=NOW, **params)  # type: ignore[arg-type]


def test_w3c_dates_and_their_periods() -> None:
    at = parse_w3("2010-01-01T00:00:00Z")
    assert at.start == datetime(2010, 1, 1, tzinfo=UTC)
    assert parse_w3("2010-01-01T08:00+08:00").start == at.start
    assert parse_w3("2010-01-01T00:00:00.25Z").start.microsecond == 250000
    day = parse_w3("2010-05-24")
    assert (day.start, day.end) == (
        datetime(2010, 5, 24, tzinfo=SH),
        datetime(2010, 5, 25, tzinfo=SH),
    )
    assert parse_w3("2010-12").end == datetime(2011, 1, 1, tzinfo=SH)
    assert parse_w3("2010").end == datetime(2011, 1, 1, tzinfo=SH)
    for bad in ("yesterday", "2010-13-01", "2010-01-01T00:00:00", "2010-02-30", "1/1/2010"):
        with pytest.raises(ValueError):
            parse_w3(bad)


def test_the_window_defaults_to_90_days_and_may_not_be_longer() -> None:
    default = q()
    assert default.end - default.start >= timedelta(days=90)  # type: ignore[attr-defined]
    assert default.start == NOW - timedelta(days=90)  # type: ignore[attr-defined]
    since = q(start_date="2026-01-01T00:00:00Z")
    assert since.end - since.start == timedelta(days=90)  # type: ignore[attr-defined]
    until = q(end_date="2026-02-01")
    assert until.end == datetime(2026, 2, 2, tzinfo=SH)  # type: ignore[attr-defined]
    assert q(start_date="2026-01-01T00:00Z", end_date="2026-03-31T00:00Z")
    for start, end in (("2026-01-01", "2026-04-02"), ("2026-02-01", "2026-01-01")):
        with pytest.raises(BadQuery) as exc:
            q(start_date=start, end_date=end)
        assert exc.value.errors[0][0] == "end_date"
    with pytest.raises(BadQuery) as bad:
        q(start_date="soon", end_date="later")
    assert [p for p, _ in bad.value.errors] == ["start_date", "end_date"]


def test_lists_statuses_pages_and_extensions() -> None:
    query = q(
        service_request_id=["C1,C2", "C3", " "],
        service_code=["sanitation,parking"],
        status=["open", "closed"],
        page_size="50",
        page="3",
        extensions="TRUE",
    )
    assert query.ids == ("C1", "C2", "C3")  # type: ignore[attr-defined]
    assert query.service_codes == ("sanitation", "parking")  # type: ignore[attr-defined]
    assert query.statuses == ("open", "closed")  # type: ignore[attr-defined]
    assert (query.limit, query.offset, query.extensions) == (50, 100, True)  # type: ignore[attr-defined]
    assert q().limit == 1000 and q().extensions is False  # type: ignore[attr-defined]
    for bad in (
        {"status": ["pending"]},
        {"page_size": "0"},
        {"page_size": "1001"},
        {"page": "x"},
        {"extensions": "maybe"},
    ):
        with pytest.raises(BadQuery):
            q(**bad)


# --- status from progress -----------------------------------------------------------------------


OPENED = NOW - 10 * T


def test_the_state_is_the_latest_fact() -> None:
    p = Progress(opened_at=OPENED)
    assert status.state(p) == "opened" and status.status(p) == "open"
    p = Progress(opened_at=OPENED, attempt=1, dispatched_at=OPENED + T, unit="G1")
    assert status.state(p) == "dispatched"
    up = Progress(
        opened_at=OPENED, attempt=2, dispatched_at=OPENED + 2 * T, escalated_at=OPENED + 2 * T
    )
    assert status.state(up) == "escalated"
    # an acceptance read before its dispatch (another topic) still counts by its time
    p = Progress(opened_at=OPENED, accepted_at=OPENED + 3 * T, dispatched_at=OPENED + T)
    assert status.state(p) == "accepted"
    resolved = Progress(opened_at=OPENED, dispatched_at=OPENED + T, resolved_at=OPENED + 4 * T)
    assert status.state(resolved) == "resolved"
    assert status.rating_state(resolved, "resolved") == "awaiting"
    redo = Progress(
        opened_at=OPENED,
        resolved_at=OPENED + 4 * T,
        reopened_at=OPENED + 5 * T,
        reopen_count=1,
        dispatched_at=OPENED + 5 * T + timedelta(seconds=1),
        attempt=2,
    )
    assert status.state(redo) == "dispatched"
    assert status.rating_state(redo, "dispatched") == "unsatisfied"
    closed = Progress(opened_at=OPENED, closed_at=OPENED + 6 * T, close_outcome="satisfied")
    assert status.state(closed) == "closed" and status.status(closed) == "closed"
    assert status.rating_state(closed, "closed") == "satisfied"
    assert status.updated_at(closed) == OPENED + 6 * T


def test_a_resolution_awaiting_its_verification_is_not_yet_rated() -> None:
    base = Progress(opened_at=OPENED, dispatched_at=OPENED + T, unit="G1")
    waiting = replace(base, resolved_at=OPENED + 4 * T, verifier_unit="C1", resolution_note="好")
    assert status.state(waiting) == "resolved"
    assert status.rating_state(waiting, "resolved") == "none"  # no follow-up before 核查
    notes = status.status_notes(waiting, "resolved", {"G1": "第一网格"})
    assert notes == "第一网格已办结，待核查：好"
    verified = replace(
        base, resolved_at=OPENED + 4 * T, verifier_unit="C1", verified_at=OPENED + 5 * T
    )
    assert status.rating_state(verified, "resolved") == "awaiting"
    assert status.status_notes(verified, "resolved", {}) == "G1已办结，待评价"
    back = replace(
        base,
        accepted_at=OPENED + 2 * T,
        resolved_at=OPENED + 4 * T,
        verifier_unit="C1",
        sent_back_at=OPENED + 5 * T,
    )
    assert status.state(back) == "accepted"
    assert status.status_notes(back, "accepted", {}) == "核查未通过，G1重新办理中"
    # resolved again after the send-back: it waits for its verification again
    again = replace(back, resolved_at=OPENED + 6 * T)
    assert status.state(again) == "resolved" and again.awaiting_verification


def test_a_request_as_open311_shows_it() -> None:
    p = Progress(
        opened_at=OPENED,
        attempt=1,
        tier="grid",
        unit="WC-YY-OJY-G01",
        dispatched_at=OPENED + T,
        respond_by=OPENED + 3 * T,
        resolve_by=OPENED + 5 * T,
        updated_at=OPENED + T,
    )
    row = RequestRow(
        case_id="C1",
        source="open311",
        merged=True,
        requested_at=OPENED,
        service_code="sanitation",
        description="垃圾",
        address=None,
        address_id=None,
        lat=None,
        long=None,
        media_url=None,
        place="WC-YY-OJY-G01-B03",
        lineage={
            "district": "WC",
            "street": "WC-YY",
            "community": "WC-YY-OJY",
            "grid": "WC-YY-OJY-G01",
            "building": "WC-YY-OJY-G01-B03",
        },
        supporter_count=2,
        progress=p,
    )
    places = {
        "WC": status.Place("武昌区"),
        "WC-YY": status.Place("杨园街道"),
        "WC-YY-OJY": status.Place("欧景苑社区"),
        "WC-YY-OJY-G01": status.Place("欧景苑第一网格"),
        "WC-YY-OJY-G01-B03": status.Place("欧景苑3栋", 114.331, 30.581),
    }
    out = status.service_request(row, "环境卫生", places, NOW, extensions=True)
    schemas.ServiceRequest.model_validate(out)
    assert out["status"] == "open" and out["status_notes"] == "已派至欧景苑第一网格办理"
    assert out["agency_responsible"] == "欧景苑第一网格"
    assert out["expected_datetime"] == "2026-03-01T15:00:00+08:00"
    assert out["requested_datetime"] == "2026-03-01T10:00:00+08:00"
    assert out["address"] == "武昌区杨园街道欧景苑社区欧景苑3栋"
    assert (out["lat"], out["long"], out["address_id"]) == (30.581, 114.331, "WC-YY-OJY-G01-B03")
    ext = out["extended_attributes"]
    assert ext["grid"] == {"code": "WC-YY-OJY-G01", "name": "欧景苑第一网格"}
    assert ext["handling_unit"]["name"] == "欧景苑第一网格" and ext["tier"] == "grid"
    assert ext["overdue"] is True  # resolve_by passed at NOW
    assert ext["duplicate"] is True and ext["supporter_count"] == 2
    assert "extended_attributes" not in status.service_request(
        row, "环境卫生", places, NOW, extensions=False
    )


# --- the XML ------------------------------------------------------------------------------------


def test_xml_is_the_specifications() -> None:
    body = formats.to_xml(
        "service_requests",
        [{"service_request_id": "C1", "account_id": None, "ok": True, "n": 2, "x": "a\x01b<"}],
    )
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>\n<service_requests>')
    root = ET.fromstring(body)
    request = root.find("request")
    assert request is not None
    assert request.findtext("service_request_id") == "C1"
    assert request.findtext("account_id") == "" and request.findtext("ok") == "true"
    assert request.findtext("x") == "ab<"  # a character XML cannot hold is dropped
    definition = ET.fromstring(
        formats.to_xml("service_definition", catalog.definition(default_taxonomy().categories[0]))
    )
    values = definition.findall("attributes/attribute/values/value")
    assert [v.findtext("key") for v in values] == [
        *("true", "false", "true", "false"),
        *("wgs84", "gcj02", "bd09"),
    ]
    errors = ET.fromstring(formats.errors("xml", 403, [(403, "invalid api_key")]).body)
    assert errors.tag == "errors" and errors.findtext("error/code") == "403"


def test_hostile_input_is_refused_not_stored() -> None:
    for pairs in ([("description", "垃圾\x00")], [("a\x01", "b")]):
        with pytest.raises(Invalid):
            submission.from_form(pairs)
    assert submission.from_form([("description", "第一行\n第二行\t")]).fields
    with pytest.raises(Invalid):
        submission.from_json({"x": [False]})  # a list is not a field's value
    for bad in (
        {"page": "²"},
        {"page_size": "１０"},
        {"end_date": "0001-01-01"},
        {"start_date": "9999-12-31"},
        {"service_request_id": ["C1\x00"]},
        {"service_code": ["a\x00"]},
    ):
        with pytest.raises(BadQuery):
            q(**bad)


def test_an_open311_post_names_the_system_of_its_point():
    from datetime import UTC, datetime

    from services.intake.open311 import submission

    def post(**attrs: str):
        fields = [
            ("service_code", "noise"),
            ("description", "楼上装修太吵"),
            ("lat", "30.58"),
            ("long", "114.33"),
        ]
        fields += [(f"attribute[{k}]", v) for k, v in attrs.items()]
        return submission.to_report(
            submission.from_form(fields),
            service_code="noise",
            system="s",
            channel="open311",
            report_id="s:1",
            now=datetime.now(UTC),
            address_unit=None,
        )

    assert post().location.crs == "wgs84"  # Open311's own, when not said
    assert post(crs="gcj02").location.crs == "gcj02"
    assert post(crs="bd09").location.crs == "bd09"
    try:
        post(crs="mercator")
    except submission.Invalid as exc:
        assert exc.errors == [("attribute[crs]", "must be one of wgs84, gcj02, bd09")]
    else:
        raise AssertionError("an unknown system is refused")
