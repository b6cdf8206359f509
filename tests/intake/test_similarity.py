"""The rule for duplicates across channels (services/intake/similarity.py) and its measurement
on the labelled pairs (bench/duplicates.py)."""

from __future__ import annotations

from bench.duplicates import evaluate, load
from services.intake.coords import from_wgs84, to_wgs84
from services.intake.similarity import NearbyCase, NearbyRule, Sketch, matter_text, text_similarity

HOTLINE = (
    "来电人反映：7栋3楼住户从窗户拉电线到楼下给电动车充电，"
    "电线悬在半空，雨天存在隐患，要求尽快处理。"
)
WEIXIN = "7栋3楼有人从窗户里拉电线下来给电瓶车充电，线就挂在半空中，下雨天很危险"
OTHER = "小区门口的烧烤摊划拳喝酒到凌晨两点，窗户关了都挡不住"


def test_channel_formulae_and_long_numbers_are_not_compared():
    text = matter_text("来电人反映：3栋垃圾桶满了，电话13812345678，要求尽快处理。")
    assert "来电人" not in text and "要求" not in text and "尽快" not in text
    assert "13812345678" not in text and "5678" not in text
    assert "3" in text and "垃圾桶满了" in text


def test_the_same_matter_reads_alike_and_another_does_not():
    same = text_similarity(matter_text(HOTLINE), matter_text(WEIXIN))
    other = text_similarity(matter_text(HOTLINE), matter_text(OTHER))
    assert same >= NearbyRule().min_similarity > other
    assert text_similarity("", matter_text(WEIXIN)) == 0.0


def _sketch(text: str, lon: float, lat: float, category: str = "ebike_charging") -> Sketch:
    return Sketch(category, lon, lat, matter_text(text))


def test_the_rule_needs_the_category_the_radius_and_the_text():
    rule = NearbyRule(radius_m=150, min_similarity=0.5)
    case = NearbyCase("C1", _sketch(HOTLINE, 114.40, 30.50))
    # an app's GCJ-02 fix 60 m north of the building, converted as intake converts it
    lon, lat = to_wgs84(*from_wgs84(114.40, 30.50 + 60 / 111_320, "gcj02"), "gcj02")
    m = rule.match(_sketch(WEIXIN, lon, lat), case)
    assert m is not None and m.case_id == "C1" and 55 < m.distance_m < 65
    # unconverted, the GCJ-02 point is hundreds of metres off: not the same matter
    assert rule.match(_sketch(WEIXIN, *from_wgs84(lon, lat, "gcj02")), case) is None
    assert rule.match(_sketch(WEIXIN, lon, lat, "noise"), case) is None
    assert rule.match(_sketch(OTHER, lon, lat), case) is None
    far = 30.50 + 400 / 111_320
    assert rule.match(_sketch(WEIXIN, 114.40, far), case) is None


def test_best_prefers_the_most_alike_case_then_the_nearest():
    rule = NearbyRule()
    alike = NearbyCase("alike", _sketch(HOTLINE, 114.40, 30.50))
    unlike = NearbyCase("unlike", _sketch("小区里一个充电桩都没有，能不能装几个", 114.40, 30.50))
    m = rule.best(_sketch(WEIXIN, 114.4001, 30.5001), [unlike, alike])
    assert m is not None and m.case_id == "alike"
    nearer = NearbyCase("nearer", _sketch(HOTLINE, 114.4001, 30.5001))
    m = rule.best(_sketch(WEIXIN, 114.4001, 30.5001), [alike, nearer])
    assert m is not None and m.case_id == "nearer"
    assert rule.best(_sketch(OTHER, 114.40, 30.50), [unlike, alike]) is None


def test_the_default_rule_is_precise_on_the_labelled_pairs():
    pairs = load()
    assert sum(p["same"] for p in pairs) >= 50 and len(pairs) >= 200
    kinds = {p["kind"] for p in pairs}
    assert {"same_matter", "same_category_nearby", "alike_nearby", "alike_far"} <= kinds
    assert {p["b"]["crs"] for p in pairs} == {"wgs84", "gcj02", "bd09"}
    result = evaluate(pairs, NearbyRule())
    assert result["precision"] >= 0.9
    assert result["recall"] >= 0.8
    # the thresholds matter: a rule that ignores the text is not precise
    assert evaluate(pairs, NearbyRule(radius_m=300, min_similarity=0.0))["precision"] < 0.9
