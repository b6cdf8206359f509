"""Helpers of the Open311 tests: intake with an api key, an HTTP client, the specification's
example POST, reading the answers in both formats."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import httpx

from devstack.testbed import Testbed
from services.intake.open311 import store
from services.intake.open311.apikeys import new_key
from shared.runtime.service import Service
from tests.intake.conftest import Running, start_intake

V2 = "/open311/v2"
PHONE = "13812345678"


async def issue_key(svc: Service, system: str, channel: str = "open311") -> str:
    """A key for ``system`` written as ``wangge apikey create`` writes it."""
    key = new_key()
    async with svc.pool.acquire() as conn:
        await store.insert_key(conn, key.key_id, system, channel, key.digest)
    return key.key


async def start(bed: Testbed, **overrides: object) -> Running:
    return await start_intake(bed, **overrides)


def client(svc: Service) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=svc.app), base_url="http://intake")


def spec_form(key: str, **over: str) -> dict[str, str]:
    """The specification's example POST, with a place of the sample city."""
    form = {
        "api_key": key,
        "jurisdiction_id": "wangge",
        "service_code": "sanitation",
        "address_id": "WC-YY-OJY-G01-B03",
        "email": "wang@example.cn",
        "device_id": "tt222111",
        "account_id": "123456",
        "first_name": "芳",
        "last_name": "王",
        "phone": PHONE,
        "description": "3栋楼道垃圾堆了三天没人清运，异味很大",
        "media_url": "https://img.example.cn/2212426634.jpg",
    }
    form.update(over)
    return form


def xml_items(body: bytes, item: str) -> list[dict[str, Any]]:
    """The items of an XML list answer, each as {element: text}."""
    root = ET.fromstring(body)
    return [{child.tag: child.text for child in el} for el in root.findall(item)]


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    """An Open311 error answer in either format, as [{code, description}]."""
    if response.headers["content-type"].startswith("text/xml"):
        return [
            {"code": int(e["code"]), "description": e["description"]}
            for e in xml_items(response.content, "error")
        ]
    body: list[dict[str, Any]] = response.json()
    return body
