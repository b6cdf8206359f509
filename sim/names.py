"""Chinese names for the simulated city: streets, communities, compounds (小区), people.

Pure and seeded: every function takes the ``random.Random`` it draws from.
"""

from __future__ import annotations

import random
from collections.abc import Callable

_STREET_HEADS = "珞南关山狮山张湾洪山和平青山卓刀梨园东湖花山九峰左岭天兴白沙"
_PLACE_A = "金银玉翠锦华丽春秋和平安康宁泰福瑞祥嘉兴盛宏新福东南西北长青绿桂兰梅竹松柏枫"
_PLACE_B = "湖江河山桥港湾城园林苑庭台阁府居坊里巷岭洲岸堤亭"
_COMPOUND_SUFFIX = ("苑", "园", "居", "城", "府", "庭", "家园", "花园", "公寓", "新村")
_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余杜叶程"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国文斌宇浩凯欣怡婷雪晨阳"
_CN_DIGITS = "零一二三四五六七八九"


def chinese_numeral(n: int) -> str:
    """1 -> 一, 11 -> 十一, 23 -> 二十三, 105 -> 一百零五 (building numbers)."""
    if n < 10:
        return _CN_DIGITS[n]
    if n < 20:
        return "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _CN_DIGITS[n // 10] + "十" + (_CN_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    head = _CN_DIGITS[n // 100] + "百"
    if rest == 0:
        return head
    if rest < 10:
        return head + "零" + _CN_DIGITS[rest]
    if rest < 20:
        return head + "一" + chinese_numeral(rest)
    return head + chinese_numeral(rest)


class UniqueNames:
    """Draws names that were not drawn before (names must be unique for text matching)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _fresh(self, make: Callable[[], str], what: str) -> str:
        for _ in range(10_000):
            name = make()
            if name not in self.used and not any(name in u or u in name for u in self._near(name)):
                self.used.add(name)
                return name
        raise RuntimeError(f"ran out of {what} names")

    def _near(self, name: str) -> list[str]:
        # Names containing one another would make text matching ambiguous (金桂 in 金桂园).
        return [u for u in self.used if u[:1] == name[:1]]

    def street(self, i: int) -> str:
        heads = _STREET_HEADS
        if 2 * i + 2 <= len(heads):
            base = heads[2 * i : 2 * i + 2]
            if base not in self.used:
                self.used.add(base)
                return base
        return self._fresh(lambda: self.rng.choice(_PLACE_A) + self.rng.choice(_PLACE_B), "street")

    def community(self) -> str:
        return self._fresh(
            lambda: (
                self.rng.choice(_PLACE_A) + self.rng.choice(_PLACE_A) + self.rng.choice("苑园里坊")
            ),
            "community",
        )

    def compound(self) -> str:
        return self._fresh(
            lambda: (
                self.rng.choice(_PLACE_A)
                + self.rng.choice(_PLACE_B)
                + self.rng.choice(_COMPOUND_SUFFIX)
            ),
            "compound",
        )


def person(rng: random.Random) -> str:
    given = rng.choice(_GIVEN) + (rng.choice(_GIVEN) if rng.random() < 0.7 else "")
    return rng.choice(_SURNAMES) + given


def mobile(rng: random.Random) -> str:
    """A mainland China mobile number (11 digits, 13x-19x)."""
    return f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
