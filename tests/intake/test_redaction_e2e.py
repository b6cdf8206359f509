"""Redaction on the real broker and database: a report full of personal data becomes a
cases.opened whose text holds none of it in clear, flagged for moderation, and intake keeps the
original only encrypted."""

from __future__ import annotations

from cli.client import Publisher, TopicReader
from devstack.testbed import Testbed, pii_key_for_tests
from services.intake.privacy import Pii
from tests.intake.conftest import start_intake
from tests.samples import report

NAME, ID_CARD, BANK_CARD = "王芳", "110101199003074514", "6222021234567890123"
TITLE = "我叫王芳，电话13912345678"
DESCRIPTION = (
    f"我叫{NAME}，身份证{ID_CARD}，银行卡{BANK_CARD}被物业扣了钱。我住3栋2单元502室，"
    "座机0571-8866-1234，手机+86 138 1234 5678。你们这些狗官，再不管我就去跳楼"
)
IN_CLEAR = [NAME, ID_CARD, BANK_CARD, "2单元", "502", "8866", "13912345678", "1234 5678"]


async def test_a_report_with_personal_data_is_published_redacted_and_kept_encrypted(
    bed: Testbed,
) -> None:
    run = await start_intake(bed)
    rep = report(title=TITLE, description=DESCRIPTION)
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened") as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        opened = await reader.wait_for(lambda r: r.of("cases.opened"), what="cases.opened")
    raw = (opened[0].value or b"").decode()
    for clear in IN_CLEAR:
        assert clear not in raw, clear
    case = opened[0].json()
    assert case["title"] == "我叫王*，电话139****5678"
    assert case["description"] == (
        "我叫王*，身份证**************4514，银行卡***************0123被物业扣了钱。"
        "我住3栋*单元***室，座机0571-****-1234，手机+86 138 **** 5678。"
        "你们这些狗官，再不管我就去跳楼"
    )
    assert case["moderation"] == ["insult", "self_harm"]

    row = await run.svc.pool.fetchrow(
        "SELECT title_enc, description_enc FROM reports WHERE report_id = $1", rep["report_id"]
    )
    assert row is not None
    pii = Pii(pii_key_for_tests())
    assert pii.decrypt(row["title_enc"]) == TITLE
    assert pii.decrypt(row["description_enc"]) == DESCRIPTION
    for column in ("title_enc", "description_enc"):
        assert ID_CARD.encode() not in row[column] and NAME.encode() not in row[column]
    # Every other column, read as what it is: text as text, bytes as bytes (a hex dump of
    # ciphertext holds any four digits by chance, so "8866" would be found in it one run in a
    # few hundred).
    stored = await run.svc.pool.fetchrow(
        "SELECT * FROM reports WHERE report_id = $1", rep["report_id"]
    )
    assert stored is not None
    for column, value in stored.items():
        if isinstance(value, bytes):
            for clear in IN_CLEAR:
                assert clear.encode() not in value, (column, clear)
        elif value is not None:
            for clear in IN_CLEAR:
                assert clear not in str(value), (column, clear)


async def test_a_report_without_abusive_words_carries_no_flags(bed: Testbed) -> None:
    await start_intake(bed)
    rep = report()
    async with (
        Publisher(bed.settings()) as pub,
        TopicReader(bed.settings(), "cases.opened") as reader,
    ):
        await pub.send("reports.submitted", rep, key=rep["report_id"])
        case = (await reader.wait_for(lambda r: r.of("cases.opened")))[0].json()
    assert case["moderation"] == []
    assert case["description"] == rep["description"]  # nothing personal: nothing changed
