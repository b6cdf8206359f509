"""The Open311 services: one per taxonomy category, and their definitions (pure).

A service's ``service_code`` is the category's code. Every service takes the same attributes,
the optional fields of ``ReportSubmitted`` that Open311 has no name for (``title``,
``households_affected``, ``urgent``, ``anonymous``), and shows one informational attribute
(``variable`` false) saying at which tier and in which mode the category is handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.contract.taxonomy import Category, Taxonomy

from .status import TIER_NAMES

MODE_NAMES = {
    "proxy_petition": "诉求代理",
    "voice_advocacy": "意愿代言",
    "errand_service": "事务代办",
}
YES_NO = (("true", "是"), ("false", "否"))


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: str  # string | number | datetime | text | singlevaluelist | multivaluelist
    description: str
    order: int
    datatype_description: str | None = None
    values: tuple[tuple[str, str], ...] = ()
    variable: bool = True
    required: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "variable": self.variable,
            "code": self.code,
            "datatype": self.datatype,
            "required": self.required,
            "datatype_description": self.datatype_description,
            "order": self.order,
            "description": self.description,
        }
        if self.values:
            out["values"] = [{"key": k, "name": n} for k, n in self.values]
        return out


# What a POST may carry as attribute[code]: the report's optional fields (ReportSubmitted).
ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("title", "string", "诉求标题（可选）", 1, "不超过100个字"),
    Attribute(
        "households_affected", "number", "受影响的户数（可选）", 2, "1 到 1000000 之间的整数"
    ),
    Attribute("urgent", "singlevaluelist", "是否紧急（可选）", 3, values=YES_NO),
    Attribute(
        "anonymous",
        "singlevaluelist",
        "匿名反映：不回访、不公开电话（可选）",
        4,
        values=YES_NO,
    ),
    Attribute(
        "crs",
        "singlevaluelist",
        "lat/long 的坐标系（可选，默认 wgs84）："
        "wgs84（GPS）、gcj02（高德、腾讯、微信）、bd09（百度）",
        5,
        values=(
            ("wgs84", "WGS-84（GPS）"),
            ("gcj02", "GCJ-02（国测局）"),
            ("bd09", "BD-09（百度）"),
        ),
    ),
)
BY_CODE = {a.code: a for a in ATTRIBUTES}


def handling(category: Category) -> str:
    return (
        f"{category.name}：默认由{TIER_NAMES[category.tier]}层级办理"
        f"（{MODE_NAMES[category.agency_mode]}），办不了的逐级上报"
    )


def service(category: Category) -> dict[str, Any]:
    """The ``service`` of ``GET services`` for ``category``."""
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": handling(category),
        "metadata": True,
        "type": "realtime",
        "keywords": ", ".join(category.keywords),
        "group": MODE_NAMES[category.agency_mode],
    }


def services(taxonomy: Taxonomy) -> list[dict[str, Any]]:
    return [service(c) for c in taxonomy.categories]


def definition(category: Category) -> dict[str, Any]:
    """The ``service_definition`` of ``category``."""
    info = Attribute(
        "handling",
        "string",
        handling(category),
        len(ATTRIBUTES) + 1,
        variable=False,
    )
    return {
        "service_code": category.code,
        "attributes": [a.as_dict() for a in (*ATTRIBUTES, info)],
    }
