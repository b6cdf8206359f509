"""Logs are JSON lines, and never carry a full mainland mobile number or a secret (pure)."""

from __future__ import annotations

import json

import pytest

from shared.runtime.logging import configure_logging, get_logger, mask_phone


def test_mask_phone_in_free_text() -> None:
    assert (
        mask_phone("联系电话13812345678，备用 15900001111")
        == "联系电话138****5678，备用 159****1111"
    )
    assert mask_phone("订单号 213812345678901 不是手机号") == "订单号 213812345678901 不是手机号"


def test_log_lines_are_json_without_phones_or_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO")
    get_logger().info(
        "reporter called",
        phone="13812345678",
        nested={"text": "call me at 13912345678"},
        db_password="hunter2",
        rating_token="tok-123",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    data = json.loads(line)
    assert data["event"] == "reporter called" and data["service"] == "test"
    assert "13812345678" not in line and "13912345678" not in line
    assert data["phone"] == "138****5678"
    assert data["db_password"] == "***" and data["rating_token"] == "***"


def test_a_phone_inside_a_logged_exception_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", "INFO")
    try:
        raise ValueError("no such reporter 13812345678")
    except ValueError:
        get_logger().exception("lookup failed")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "13812345678" not in line and "138****5678" in line
    assert "ValueError" in json.loads(line)["exception"]


def test_id_card_bank_card_and_formatted_phone_numbers_are_masked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("test", "INFO")
    get_logger().info(
        "resident details",
        resident_id="110101199003074514",
        note="卡号 6222 0212 3456 7890 123，座机 0571-8888-8888，手机 +86 139 1234 5678",
        at="2026-12-02T10:11:12Z",
        amount="1,200.50元",
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    data = json.loads(line)
    assert data["resident_id"] == "**************4514"
    assert data["note"] == (
        "卡号 **** **** **** ***0 123，座机 0571-****-8888，手机 +86 139 **** 5678"
    )
    assert data["at"] == "2026-12-02T10:11:12Z" and data["amount"] == "1,200.50元"
