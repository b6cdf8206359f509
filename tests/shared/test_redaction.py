"""ID card, bank card and phone numbers in free text are masked, in any format; other numbers
(dates, amounts, times, counts, order numbers) are not (pure; a fuzz of formats)."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.cn import ric

from shared.runtime.redaction import find_numbers, redact_numbers

FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
# Filler: Chinese characters and punctuation, never a digit or a Latin letter
FILLER = st.text(
    alphabet=st.sampled_from("小区门口垃圾桶满了好几天没人清理味道很大希望尽快处理，。：！？、 "),
    max_size=12,
)
MOBILE_PREFIXES = [str(n) for n in [*range(130, 140), *range(150, 154), *range(155, 160)]]
MOBILE_PREFIXES += ["166", "173", "176", "177", *map(str, range(180, 190)), "198", "199"]
AREA_CODES = ["010", "020", "021", "022", "023", "025", "027", "028", "029", "0571", "0755"]


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


@st.composite
def written(draw: st.DrawFn, groups: list[str]) -> str:
    """The groups joined as people write them: together, with spaces or dashes, maybe in
    full-width digits."""
    sep = draw(st.sampled_from(["", " ", "-", "－", "\u3000"]))
    text = sep.join(groups)
    return text.translate(FULL_WIDTH) if draw(st.booleans()) else text


@st.composite
def mobiles(draw: st.DrawFn) -> str:
    body = draw(st.sampled_from(MOBILE_PREFIXES)) + draw(digits(8))
    prefix = draw(st.sampled_from(["", "+86 ", "+86", "86", "0086 ", "+86-", "86-"]))
    return prefix + draw(written([body[:3], body[3:7], body[7:]]))


@st.composite
def landlines(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from(AREA_CODES))
    # 010-8… and 021-8… are not assigned: libphonenumber, which decides, does not take them
    number = draw(st.sampled_from("234567")) + draw(digits(7))
    if draw(st.booleans()):
        return f"（{area}）{number}" if draw(st.booleans()) else f"({area}){number}"
    return draw(written([area, number[:4], number[4:]]))


@st.composite
def service_numbers(draw: st.DrawFn) -> str:
    body = draw(st.sampled_from(["400", "800"])) + draw(digits(7))
    return draw(written([body[:3], body[3:6], body[6:]]))


@st.composite
def id_cards(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from("123456")) + draw(digits(5))
    birth = draw(
        st.dates(min_value=datetime.date(1930, 1, 1), max_value=datetime.date(2025, 12, 31))
    )
    if draw(st.integers(0, 4)) == 0:  # an old 15-digit number
        number = region + birth.strftime("%y%m%d") + draw(digits(3))
        return draw(written([number[:6], number[6:12], number[12:]]))
    body = region + birth.strftime("%Y%m%d") + draw(digits(3))
    check = ric.calc_check_digit(body + "0")
    if draw(st.booleans()):  # a mistyped check digit still names a person
        check = draw(st.sampled_from("0123456789X"))
    if check == "X" and draw(st.booleans()):
        check = "x"
    number = body + check
    return draw(written([number[:6], number[6:14], number[14:]]))


@st.composite
def bank_cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(16, 19))
    if draw(st.booleans()):
        number = "62" + draw(digits(length - 2))  # UnionPay, Luhn or not
    else:
        body = draw(st.sampled_from("3456")) + draw(digits(length - 2))
        number = body + luhn.calc_check_digit(body)
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return draw(written(groups)) if draw(st.booleans()) else number


def visible_digits(text: str) -> int:
    return len(re.findall(r"[0-9０-９]", text))


# (strategy, how many digits may stay visible: the last 4, and a phone's prefix and head)
PII = [
    (mobiles(), 4 + 4 + 3),  # 0086 + 138 + 5678
    (landlines(), 4 + 4),  # 0571 + 5678
    (service_numbers(), 3 + 4),
    (id_cards(), 4),
    (bank_cards(), 4),
]


@pytest.mark.parametrize(("strategy", "kept"), PII, ids=["mobile", "landline", "400", "id", "card"])
def test_every_generated_number_in_chinese_text_is_masked(
    strategy: st.SearchStrategy[str], kept: int
) -> None:
    @settings(max_examples=300, deadline=None)
    @given(before=FILLER, number=strategy, after=FILLER)
    def check(before: str, number: str, after: str) -> None:
        out = redact_numbers(before + number + after)
        assert out.startswith(before) and out.endswith(after), out
        assert "*" in out
        assert visible_digits(out) <= kept
        # the middle of the number is gone, whatever its format
        plain = re.sub(
            r"\D", "", number.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
        )
        assert plain not in re.sub(r"\D", "", out)

    check()


ORDINARY = st.sampled_from(
    [
        "2024年3月5日",
        "2024-03-05",
        "2024/3/5",
        "2024-03-05 15:30",
        "15:30",
        "下午3点",
        "200元",
        "1,200.50元",
        "3000块",
        "5号楼",
        "12栋",
        "3天",
        "十八户",
        "20261202",
        "订单号213812345678901",
        "快递单号SF1234567890123",
        "1733140000000",
        "95588",
        "12345678",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(FILLER, ORDINARY), max_size=6), FILLER)
def test_ordinary_numbers_are_left_alone(pieces: list[tuple[str, str]], end: str) -> None:
    # a pause between pieces: two of them written together are one longer number
    text = "".join(f"{a}，{b}" for a, b in pieces) + end
    assert redact_numbers(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("联系电话13812345678，下午在家", "联系电话138****5678，下午在家"),
        ("电话：+86 138-1234-5678", "电话：+86 138-****-5678"),
        ("座机021-12345678或0571 8888 8888", "座机021-****5678或0571 **** 8888"),
        ("（021）12345678", "（021）****5678"),
        ("客服400-123-4567，800-820-8820", "客服400-***-4567，800-***-8820"),
        ("１３８１２３４５６７８全角", "１３８****５６７８全角"),
        ("13812345678 13912345678", "138****5678 139****5678"),
        ("138 1234 5678 139 1234 5678", "138 **** 5678 139 **** 5678"),
        ("身份证110101199003074514", "身份证**************4514"),
        ("身份证号11010119900307451X。", "身份证号**************451X。"),
        ("身份证 110101 19900307 4514 电话", "身份证 ****** ******** 4514 电话"),
        ("老身份证110101900307451", "老身份证***********7451"),
        ("银行卡号6222 0212 3456 7890 123", "银行卡号**** **** **** ***0 123"),
        ("4111 1111 1111 1111", "**** **** **** 1111"),
        ("卡号：1234567890123", "卡号：*********0123"),
        ('{"x":"\\n13812345678"}', '{"x":"\\n138****5678"}'),
        ("订单号 213812345678901 不是手机号", "订单号 213812345678901 不是手机号"),
        ("时间是2024-03-05 15:30，花了1,200.50元", "时间是2024-03-05 15:30，花了1,200.50元"),
    ],
)
def test_real_looking_examples(text: str, masked: str) -> None:
    assert redact_numbers(text) == masked


def test_findings_name_their_kind() -> None:
    text = "身份证110101199003074514，卡6222021234567890123，电话13812345678"
    assert [f.kind for f in find_numbers(text)] == ["id_card", "bank_card", "phone"]
