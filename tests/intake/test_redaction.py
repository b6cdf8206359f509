"""What intake masks in a report's free text (names, house numbers, personal numbers) and what
it flags for moderation (pure; a fuzz of formats and a table of real-looking reports)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake.moderation import (
    ModerationList,
    ModerationListError,
    default_list,
    moderation_flags,
)
from services.intake.redaction import redact, redact_house_numbers, redact_names

FILLER = st.text(
    alphabet=st.sampled_from("小区门口垃圾桶满了好几天没人清理味道很大希望尽快处理，。！？、 "),
    max_size=10,
)
PAUSE = st.sampled_from(["，", "。", "！", " ", "；"])
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭林罗郑梁谢宋唐韩冯邓曹彭曾萧叶苏吕卢")
COMPOUND = ["欧阳", "司马", "诸葛", "上官"]
GIVEN = list("芳伟娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰建国红梅志文晓东海")
INTROS = ["我叫", "名叫", "姓名：", "姓名", "联系人：", "联系人", "我是", "本人", "他叫", "她叫"]
AFTER_NAME = ["，", "。", "住在", "，电话", "反映", "要投诉", " "]


@st.composite
def names(draw: st.DrawFn) -> tuple[str, str, str]:
    """(intro, surname, given name)."""
    surname = draw(st.sampled_from(SURNAMES + COMPOUND))
    given_name = "".join(draw(st.lists(st.sampled_from(GIVEN), min_size=1, max_size=2)))
    return draw(st.sampled_from(INTROS)), surname, given_name


@settings(max_examples=400, deadline=None)
@given(before=FILLER, pause=PAUSE, name=names(), after=st.sampled_from(AFTER_NAME), end=FILLER)
def test_every_introduced_name_is_masked_to_its_surname(
    before: str, pause: str, name: tuple[str, str, str], after: str, end: str
) -> None:
    intro, surname, given_name = name
    text = f"{before}{pause}{intro}{surname}{given_name}{after}{end}"
    out = redact(text)
    assert f"{intro}{surname}{'*' * len(given_name)}{after}" in out, out
    assert out == text.replace(
        surname + given_name + after, surname + "*" * len(given_name) + after, 1
    )


@st.composite
def house_numbers(draw: st.DrawFn) -> tuple[str, str]:
    """(the building, what follows it below the building)."""
    digit = st.sampled_from("0123456789")
    building = draw(st.integers(1, 30)).__str__() + draw(st.sampled_from(["号楼", "栋", "幢"]))
    unit = str(draw(st.integers(1, 9)))
    room = draw(st.sampled_from("123456789")) + "".join(
        draw(st.lists(digit, min_size=2, max_size=3))
    )
    below = draw(
        st.sampled_from(
            [
                f"{unit}单元{room}室",
                f"{unit}单元{room}",
                f"{unit}单元{room}号房",
                f"{room}室",
                f"{room}房",
                f"{room}",
                f"{unit}单元{unit}楼",
                f"{unit}层",
            ]
        )
    )
    return building, below


@settings(max_examples=400, deadline=None)
@given(before=FILLER, house=house_numbers(), end=FILLER)
def test_house_numbers_below_the_building_are_masked_and_the_building_kept(
    before: str, house: tuple[str, str], end: str
) -> None:
    building, below = house
    out = redact(f"{before}{building}{below}，{end}")
    assert f"{building}{re.sub(r'[0-9]', '*', below)}，" in out, out


@settings(max_examples=200, deadline=None)
@given(before=FILLER, first=st.integers(1, 30), unit=st.integers(1, 9), room=st.integers(101, 3299))
def test_dashed_house_numbers_keep_the_building(
    before: str, first: int, unit: int, room: int
) -> None:
    out = redact(f"{before}{first}-{unit}-{room}的住户")
    assert out.endswith(f"{first}-{'*' * len(str(unit))}-{'*' * len(str(room))}的住户"), out


ORDINARY = st.sampled_from(
    [
        "2024年3月5日",
        "2024-03-05",
        "15:30",
        "下午3点",
        "200元",
        "1,200.50元",
        "5号楼",
        "12栋",
        "5号楼前面200米",
        "5栋300户",
        "2室1厅",
        "两房一厅",
        "十八户",
        "我住3楼",
        "3天",
        "我是司机",
        "我是业主",
        "本人申请",
        "联系人王女士",
        "叫物业来看看",
        "我姓李",
        "孙奶奶",
        "一楼",
        "单元门口",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(FILLER, ORDINARY), max_size=6), FILLER)
def test_ordinary_text_is_not_damaged(pieces: list[tuple[str, str]], end: str) -> None:
    # a pause between pieces: 5号楼 then 一楼 would be a flat's floor, masked as it should be
    text = "".join(f"{a}，{b}" for a, b in pieces) + end
    assert redact(text) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "我叫王芳，住在幸福小区5号楼3单元502室，电话13812345678",
            "我叫王*，住在幸福小区5号楼*单元***室，电话138****5678",
        ),
        (
            "我姓李名建国，身份证号110101199003074514",
            "我姓李名**，身份证号**************4514",
        ),
        (
            "本人欧阳娜娜，银行卡6222 0212 3456 7890 123",
            "本人欧阳**，银行卡**** **** **** ***0 123",
        ),
        ("他叫李小明住在302", "他叫李**住在302"),
        ("姓名：陈大文，2-1-301的住户", "姓名：陈**，2-*-***的住户"),
        ("我住5栋502，楼下5栋3楼漏水", "我住5栋***，楼下5栋*楼漏水"),
        ("2单元四楼住户将电动车推上楼", "*单元*楼住户将电动车推上楼"),
        ("我叫王家明，我叫王芳家住3楼", "我叫王**，我叫王*家住3楼"),
        ("聯繫人：陳大文，手機１３８１２３４５６７８", "聯繫人：陳**，手機１３８****５６７８"),
        ("我是张阿姨，联系人王女士，叫王师傅来修", "我是张阿姨，联系人王女士，叫王师傅来修"),
        (
            "我是單親爸爸，我是九栋的住户，我是12栋的业主",
            "我是單親爸爸，我是九栋的住户，我是12栋的业主",
        ),
        ("时间是2024-03-05 15:30，花了1,200.50元", "时间是2024-03-05 15:30，花了1,200.50元"),
    ],
)
def test_real_looking_reports(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_the_parts_can_be_used_alone() -> None:
    assert redact_names("我叫王芳，5号楼3单元") == "我叫王*，5号楼3单元"
    assert redact_house_numbers("我叫王芳，5号楼3单元") == "我叫王芳，5号楼*单元"


# --- moderation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("你们这些狗官！再不处理我就去跳楼", ["insult", "self_harm"]),
        ("傻 逼物业", ["insult"]),
        ("傻*逼物业", ["insult"]),
        ("他媽的，我要殺了你", ["insult", "threat"]),
        ("ＳＢ物业 傻Ｂ", ["insult"]),  # full-width letters fold
        ("同歸於盡", ["threat"]),
        ("跳楼价甩卖的广告贴满了楼道", []),
        ("水管炸了，垃圾满了，我妈的腿不好上不了楼", []),
        ("小区门口垃圾桶满了好几天没人清理", []),
    ],
)
def test_moderation_flags_categories_never_words(text: str, flags: list[str]) -> None:
    assert moderation_flags(text) == flags


def test_the_shipped_list_has_every_category() -> None:
    assert set(default_list().phrases.values()) == {"insult", "threat", "self_harm"}


def test_a_bad_list_line_is_a_clear_error() -> None:
    with pytest.raises(ModerationListError, match="line 2"):
        ModerationList.parse("insult\t混蛋\nrude 混蛋\n")
    assert ModerationList.parse("# none\n").flags("混蛋") == []
