"""The category taxonomy (分类): codes, names, default tiers, agency modes (and whether a case
gets an agent, 三代), keywords, SLAs."""

from __future__ import annotations

from functools import cached_property, lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contract.events import AgencyMode, Code, Tier
from shared.contract.limits import Limit

DEFAULT_TAXONOMY = Path(__file__).parent / "taxonomy.yaml"


class SlaOverride(BaseModel):
    """A category's own limits (natural time, working hours or working days: ``Limit``)."""

    model_config = ConfigDict(extra="forbid")
    respond: Limit | None = None
    resolve: Limit | None = None


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    code: Code
    name: str
    tier: Tier
    agency_mode: AgencyMode
    # 三代 agency: a case of this category gets an agent (代理人/代办员: the community's staff or
    # a party volunteer) beside its handler, in its ``agency_mode`` (docs/dispatch.md, "Agency")
    agent: bool = False
    keywords: dict[str, float] = Field(default_factory=dict)
    sla: SlaOverride | None = None


class Taxonomy(BaseModel):
    categories: list[Category]

    @model_validator(mode="after")
    def _unique_and_other(self) -> Taxonomy:
        codes = [c.code for c in self.categories]
        dupes = {c for c in codes if codes.count(c) > 1}
        if dupes:
            raise ValueError(f"duplicate category codes: {sorted(dupes)}")
        if "other" not in codes:
            raise ValueError("the taxonomy needs an 'other' category")
        return self

    def get(self, code: str) -> Category | None:
        return self.by_code.get(code)

    @cached_property
    def by_code(self) -> dict[str, Category]:
        return {c.code: c for c in self.categories}


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    with open(path or DEFAULT_TAXONOMY, encoding="utf-8") as f:
        return Taxonomy.model_validate(yaml.safe_load(f))


@lru_cache
def default_taxonomy() -> Taxonomy:
    return load_taxonomy()
