"""Personal data in a report's free text, masked before the text leaves intake (pure functions).

``redact(text)`` is what ``cases.opened`` (title and description) and Open311's stored request
carry; the original is kept only encrypted, in intake's ``reports`` row. It masks, in this order:

1. Numbers: ID card, bank card and phone numbers in any format (``shared.runtime.redaction``,
   which the logs use too): the last 4 digits stay (and a phone's prefix and network or area
   code), every other digit becomes ``*``: ``138****5678``, ``**************4514``.
2. House numbers below the building (门牌: unit 单元, floor 层/楼, room 室/房): their digits
   become ``*``; the building stays, dispatch needs it. ``5号楼3单元502室`` → ``5号楼*单元***室``,
   ``2-1-301`` → ``2-*-***``, ``5栋502`` → ``5栋***``, ``5栋3楼`` → ``5栋*楼``. A room is 3 or
   4 digits (``2室1厅``, a flat's layout, stays; so does ``300户``, a count); a floor is masked only
   after a building or a unit (``我住3楼`` stays: it names no flat).
3. Names (姓名) after the words that introduce one: 我叫, 名叫, 叫做, 他叫/她叫, 叫 after a
   pause, 姓名, 联系人, 我是, 本人, 姓…名…. The surname stays and each character of the given
   name becomes ``*`` (``我叫王芳`` → ``我叫王*``, ``我是欧阳娜娜`` → ``我是欧阳**``). A
   surname alone stays (``我姓李``, ``联系人王女士``, ``孙奶奶``): that is how residents are
   addressed, and it names no one. A name is a known surname (``_SURNAMES``, simplified and
   traditional) and one or two characters; what follows 我是/本人 and reads as an ordinary word
   (``我是司机``, ``本人申请``) is not taken for a name.

No library fits the names and house numbers: Chinese name recognisers (jieba's part-of-speech
tags, HanLP, LTP) need dictionaries or models and tag names without the words that introduce
them, which are what makes a masking rule precise, and nothing on PyPI knows 单元/室 addresses.
"""

from __future__ import annotations

import re

from shared.runtime.redaction import redact_numbers

# --- house numbers ------------------------------------------------------------------------------

_D = "0-9\uff10-\uff19"  # digits, ASCII and full-width
_N = _D + "一二三四五六七八九十零〇两"  # and Chinese numerals (三单元)
_BUILDING = ("号楼", "栋", "幢", "座", "號樓", "棟")


def _after(*words: str) -> str:
    """A look-behind for any of ``words`` (Python's need one fixed width each)."""
    return "(?:" + "|".join(f"(?<={w})" for w in words) + ")"


_QUANTITY = "元块米平个人户辆天年月日次斤千万多余度分秒号"  # 5栋200米, 5栋300户 are no rooms

_HOUSE = re.compile(
    "|".join(
        (
            rf"(?P<unit>[{_N}]+)(?=\s*单元)",
            rf"(?<![{_D}*\-])(?P<room>[A-Za-z]?[{_D}]{{3,4}})(?=\s*(?:号房|房间|室|房))",
            rf"(?<![{_D}\-])[{_D}]{{1,3}}(?P<dash>-[{_D}]{{1,2}}-[{_D}]{{3,4}})(?![{_D}\-])",
            rf"{_after(*_BUILDING)}(?P<bare>\s*[{_D}]{{3,4}})(?![{_D}*\-/.:：]|\s*[{_QUANTITY}])",
            rf"(?<=单元)(?P<after_unit>\s*[{_D}]{{3,4}})(?![{_D}*\-/.:：]|\s*[{_QUANTITY[:-1]}])",
            rf"{_after(*_BUILDING, '单元')}(?P<floor>\s*[{_N}]{{1,2}})(?=\s*[层楼])",
        )
    )
)


def _stars(s: str) -> str:
    return re.sub(rf"[{_N}A-Za-z]", "*", s)


def redact_house_numbers(text: str) -> str:
    """Unit, floor and room numbers masked, the building kept (module doc, 2)."""
    return _HOUSE.sub(lambda m: _stars(m.group()) if m.lastgroup != "dash" else _dash(m), text)


def _dash(m: re.Match[str]) -> str:
    whole, tail = m.group(), m.group("dash")
    return whole[: len(whole) - len(tail)] + _stars(tail)


# --- names --------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


# Common surnames (the 300 or so of the 百家姓 that cover nearly everyone), simplified and
# traditional; without those that are mostly ordinary words (和, 来, 都, 向, 时, 于, 万, 全,
# 高, 常 …), which a name rule would otherwise find everywhere.
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖萧田董袁潘蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎"
    "贺顾毛郝龚邵钱严覃武戴莫孔汤温康施牛樊葛邢乔伍庞颜倪庄聂章鲁岳翟殷詹耿兰焦俞左柳"
    "甘祝包尚符舒阮柯纪梅童凌毕季裴霍涂苗谷盛曲翁冉骆蓝辛靳柴蒙鲍喻祁蒲滕屈饶牟艾尤穆"
    "卓缪简芦麦褚娄窦戚岑景宫费卜冷晏席米柏宗瞿桂佟臧闵苟邬卞姬仇栾隋刁巫寇桑郎甄丛仲"
    "虞敖巩佘池麻苑迟邝匡鞠惠荆郁胥班储栗燕楚鄢谌奚皮粟冼蔺楼盘闻厉伊仝郜阚权帅屠豆朴"
    "廉禹祖漆巴卿狄晋扈晁芮阙浦戈伏鹿薄邸雍辜裘亓邰赫杭况逯茹诸嵇湛戎茅揭尉檀昝"
    # traditional forms
    "張劉陳楊黃趙吳孫馬鄭謝許韓馮鄧曾蕭葉蘇呂盧鍾譚陸賈韋鄒閆龍賀顧龔錢嚴莊聶魯關蘭"
    "紀畢塗駱藍鮑饒竇戚鄺欒鄔譚"
)
_COMPOUND = _words(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 西门 "
    "南宫 独孤 澹台 申屠 歐陽 司馬 諸葛 東方 長孫 軒轅 南宮 獨孤"
)
# After the surname, these make it a form of address (王先生, 孙奶奶): no given name follows
_ADDRESS = _words(
    "先生 女士 小姐 阿姨 大爷 大妈 大娘 大姐 大哥 师傅 老师 同志 奶奶 爷爷 叔叔 伯伯 婆婆 阿婆 "
    "老伯 经理 主任 书记 医生 警官 总 某 姐 哥 叔 伯 姨 婶 工 氏 老 師傅 爺爺"
)
# A character that cannot begin a given name here: it begins the rest of the sentence
_NOT_FIRST = set(
    "的是在住了和与跟也都就还又要想说从给被把对向这那个位名些今昨因为以所可会能将已"
    "家电手联男女反投举咨来去到找请打问让叫有没不很太啊呀吧呢嘛哦嗯等及并且或"
)
# After 我叫, 名叫, 姓名 … a name is what is meant: only these say it is not one
_NOT_FIRST_STRONG = set("的是在了也都就还又不很太啊呀吧呢嘛哦嗯什谁")
# ... nor go on one (fewer: 明, 家, 和, 为 … are common in given names)
_NOT_SECOND = set(
    "的是在住了说要想反投举咨给被把对向从跟与也都就还又这那个电手联男女今昨啊呀吧呢嘛等及并或请打问让叫有没不很太来去到找"
)
# Two characters that begin the rest of the sentence right after a one-character given name
_GOES_ON = {"家住", "家在", "家的", "家里", "家门"}
# What follows 我是/本人 and is a word, not a name (each begins with a surname character)
_WORDS = set(
    _words(
        "司机 车主 房东 房客 楼长 楼栋 楼上 楼下 党员 居民 住户 申请 安置 原住 国企 公务 海归 农民 "
        "商户 门卫 路过 游客 单亲 單親 计生 卫生 成年 方便 应该 信访 业主 金融 黄牛 程序 陈述 周边 "
        "任何 石头 夏天 付款 方面 白天 严重 康复 施工 岳父 岳母 左边 左右 祝福 尚未 符合 纪念 "
        "凌晨 毕业 辛苦 简单 费用 麻烦 班长 权益 廉租 祖父 祖母 马上 程度 孤寡 包工 包租 钟点 "
        "童工 苗木 蒋家 文员 柯桥 江边 谢谢 许多 林业 杨家 龙头 马路"
    )
)
_INTRO = (
    r"(?:我叫|名叫|叫做|他叫|她叫|名字叫|名字是|姓名[:：]?|联系人[:：]?|聯繫人[:：]?|聯系人[:：]?)"
    r"\s*"
)
# These may introduce a name (我是王芳) or not (我是司机, 叫物业来看看)
_WEAK_INTRO = r"(?:我是|本人|(?:(?<=^)|(?<=[，。,.！!？?；;：:\s]))叫)\s*"
_GIVEN = r"[\u4e00-\u9fff]"
_SURNAME = "|".join([*_COMPOUND, f"[{''.join(sorted(_SURNAMES))}]"])
_NAME = re.compile(
    rf"(?P<intro>{_INTRO}|(?P<weak>{_WEAK_INTRO}))(?P<surname>{_SURNAME})(?P<given>{_GIVEN}{{1,2}})"
    rf"|(?P<intro2>姓\s*(?:{_SURNAME})\s*[，,]?\s*名(?:叫|字叫|字是)?\s*)(?P<given2>{_GIVEN}{{1,2}})"
)


def _given(surname: str, given: str, weak: bool) -> str:
    """The part of ``given`` that is a given name ('' when there is none)."""
    if given[0] in (_NOT_FIRST if weak else _NOT_FIRST_STRONG):
        return ""
    if any(given.startswith(a) for a in _ADDRESS):
        return ""
    if weak and len(surname) == 1 and surname + given[0] in _WORDS:
        return ""
    if len(given) == 2 and (
        given[1] in _NOT_SECOND or any(given[1:].startswith(a) for a in _ADDRESS)
    ):
        return given[:1]
    return given


def _mask_name(m: re.Match[str]) -> str:
    if m.group("given2") is not None:
        given = m.group("given2")
        if given[0] in _NOT_FIRST:
            return m.group()
        if len(given) == 2 and given[1] in _NOT_SECOND:
            return m.group("intro2") + "*" + given[1]
        return m.group("intro2") + "*" * len(given)
    surname, raw = m.group("surname"), m.group("given")
    given = _given(surname, raw, m.group("weak") is not None)
    if len(given) == 2 and given[1] + m.string[m.end() : m.end() + 1] in _GOES_ON:
        given = given[:1]  # 我叫王芳家住…: 家 begins the sentence's next words
    if not given:
        return m.group()
    return m.group("intro") + surname + "*" * len(given) + raw[len(given) :]


def redact_names(text: str) -> str:
    """Given names after the words that introduce a name, masked (module doc, 3)."""
    return _NAME.sub(_mask_name, text)


# --- all of it ----------------------------------------------------------------------------------


def redact(text: str) -> str:
    """``text`` with its personal data masked: numbers, house numbers, names (module doc)."""
    return redact_names(redact_house_numbers(redact_numbers(text)))
