"""Builds services/intake/data/duplicate-pairs.jsonl: labelled pairs of reports (the first one
the report that opened a case, the second a later one), same matter or not, with channels,
coordinates in the systems the channels send and times, for ``python -m bench.duplicates``.

The reports are the labelled reports of services/intake/data/ (reports-labeled.jsonl and
reports-labeled-more.jsonl); the second report of a same-matter pair is another resident's
account of the same problem through another channel, written by hand below (VARIANTS), and the
alike-but-different ones (NEIGHBOURS) the same kind of problem at a nearby building. Everything
else (places, distances, systems, times) is drawn from a seeded generator, so running this again
writes the same file:

    .venv/bin/python scripts/build_duplicate_pairs.py
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from services.intake.coords import Crs, from_wgs84

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "services" / "intake" / "data"
OUT = DATA / "duplicate-pairs.jsonl"
BBOX = (114.30, 30.45, 114.56, 30.60)  # the simulated district (sim/territory.py)
SEED = 20

# (index of the labelled report, channel of the second report, what the second resident says)
VARIANTS = [
    (
        271,
        "hotline_12345",
        "来电人反映：其住9栋3单元2楼，楼下垃圾桶就放在她家窗户底下，夏天气味很大，要求把垃圾桶挪远一些。",
    ),
    (
        272,
        "weixin_grid_group",
        "6栋前面那条明沟全是烂叶子和泥巴，都发黑发臭了，蚊子好多，啥时候来掏一下",
    ),
    (275, "app", "福安小区3号楼西边的绿化带被人当成垃圾场了，生活垃圾越堆越多，麻烦环卫来清理。"),
    (253, "app", "楼下垃圾收集点臭味太重了，熏得我们家都不敢开窗，能不能处理一下"),
    (
        252,
        "door_knock",
        "天天敲门组走访时，3栋住户反映门口垃圾桶经常满溢，桶盖盖不上，另反映楼道灯不亮。",
    ),
    (398, "weixin_grid_group", "14栋一楼的信报箱门掉得差不多了，信老是丢，物业能修一下吗"),
    (
        396,
        "hotline_12345",
        "来电人反映：8栋一楼门口的公共下水道经常堵塞返水，几乎每月一次，要求物业彻底疏通。",
    ),
    (
        71,
        "weixin_grid_group",
        "枫林湾8栋地下室漏水两个星期了，水都有二十公分深，储藏室的东西全泡了，物业说派单了就是没人来",
    ),
    (
        66,
        "hotline_12345",
        "来电人反映：其楼上楼道内公共水管爆裂，楼道大量积水并往下流，要求物业立即关闸抢修。",
    ),
    (394, "weixin_grid_group", "5栋电梯按钮坏了几天了，按8楼它停6楼，大家天天爬楼梯"),
    (334, "app", "晚上好多车直接开上绿化带停，草坪都压秃了，希望管一管。"),
    (
        45,
        "hotline_12345",
        "来电人反映：其购买的固定车位被他人车辆占用，车牌尾号378，车上留的电话无法接通，下班后无处停车。",
    ),
    (41, "weixin_grid_group", "小区里面的路两边停满了车，中间就剩一条缝，早上出门堵二十分钟"),
    (350, "app", "幸福家园晚上外面的车大量开进来停，业主自己的车没地方停，建议进出登记。"),
    (194, "app", "已经半夜12点了楼上还在砸墙，吵得完全睡不着，请处理！"),
    (667, "weixin_grid_group", "隔壁单元装修周末一大早就切瓷砖，吵死了，能不能提醒他们按时间施工"),
    (
        670,
        "hotline_12345",
        "来电人反映：附近学校每天早上六点半开始播放广播做操，周末也不停，音量过大，要求调低音量。",
    ),
    (203, "weixin_grid_group", "卧室窗外那台空调外机嗡嗡响一整晚，根本睡不着，是哪家的"),
    (
        48,
        "hotline_12345",
        "来电人反映：7栋3楼住户从窗户拉电线到楼下给电动车充电，电线悬在半空，雨天存在触电和火灾隐患。",
    ),
    (
        373,
        "weixin_grid_group",
        "2栋1单元楼梯间窗户外吊了一根长电线一直垂到地上，是给楼下电瓶车充电的",
    ),
    (52, "app", "东亭小区11栋2单元三楼窗口有人飞线给电动车充电，很危险。"),
    (
        51,
        "hotline_12345",
        "来电人反映：其所在单元一楼住户每天将电动车推进楼道充电，整夜不拔插头，楼上住户担心起火无法逃生。",
    ),
    (
        74,
        "hotline_12345",
        "来电人反映：其所在巷子至今仍是土路，雨天泥泞不堪，老人出行困难，要求尽快硬化路面。",
    ),
    (402, "app", "学府路有个井盖丢了，只用一个塑料桶盖着，晚上看不清，很容易掉下去。"),
    (405, "app", "公交站边上那段人行道地砖翘起来了，我今天差点崴了脚。"),
    (
        73,
        "weixin_grid_group",
        "建设路和文化路路口东边人行道上井盖坏了缺了一块，也没个警示牌，晚上太危险了",
    ),
    (
        695,
        "hotline_12345",
        "来电人反映：楼前一棵老杨树向7栋方向倾斜越来越严重，树根已翘出地面，大风天有倒伏砸人危险，要求尽快处理。",
    ),
    (685, "app", "好好的一块草坪被人铲掉铺了水泥，拿来停车了。"),
    (694, "weixin_grid_group", "小区公共绿地被人围起来种葱种白菜了，还搭了竹架子"),
    (
        627,
        "hotline_12345",
        "来电人反映：其楼上6楼住户门口煤气味很浓，敲门无人应答，怀疑燃气灶未关，要求尽快处置。",
    ),
    (648, "weixin_grid_group", "楼道电表箱老是噼里啪啦响，有时候还冒火花，吓死人"),
    (629, "app", "外墙瓷砖又掉下来一块，差一点砸到路过的人，太吓人了。"),
    (
        633,
        "hotline_12345",
        "来电人反映：其所在楼栋承重墙出现一条长裂缝，从二楼延伸至四楼，住户十分担心安全，要求派人鉴定。",
    ),
    (297, "weixin_grid_group", "11栋楼道里有人养的猫到处拉屎，一开门就臭，麻烦提醒一下猫主人"),
    (
        12,
        "hotline_12345",
        "来电人反映：青和居3栋北侧刚有人从楼上扔下一个啤酒瓶，碎在儿童玩耍区域，险些砸到人，要求查处高空抛物者。",
    ),
    (
        17,
        "weixin_grid_group",
        "东亭小区8栋那几户在绿地上开荒种菜还浇大粪，绿地挖得坑坑洼洼，臭死了",
    ),
    (
        720,
        "hotline_12345",
        "来电人反映：一楼住户将车库改作小卖部，货架摆放在消防通道上经营，存在安全隐患。",
    ),
    (707, "app", "夜市摊的油烟太大了，熏得人受不了，窗户都不敢开。"),
    (717, "weixin_grid_group", "楼下新开那个棋牌室好像没执照，天天人来人往的，门口一堆人抽烟"),
    (325, "weixin_grid_group", "小区后门河边有人圈了块地种菜，还搭了个工具房"),
    (29, "hotline_12345", "来电人反映：8栋楼下有人正在搭建铁皮棚，疑似违章搭建，要求城管查处。"),
    (306, "app", "东门小卖部在人行道上盖了一间彩钢房，把路占了一半。"),
    (
        587,
        "weixin_grid_group",
        "沙湖新村8栋装电梯的施工队占了一楼的院墙，都没跟一楼商量，能不能先停下来协调",
    ),
    (
        580,
        "hotline_12345",
        "来电人反映：其所在单元加装电梯已挖好电梯井，施工队停工一个多月未复工，要求了解原因。",
    ),
    (624, "weixin_grid_group", "业委会那个物业费调价方案大家意见很大，要求开业主大会"),
    (
        434,
        "hotline_12345",
        "来电人反映：因晾晒衣物滴水问题与5楼住户发生矛盾，对方在其家门上张贴辱骂纸条，请求社区调解。",
    ),
    (
        110,
        "hotline_12345",
        "来电人反映：其回迁房公摊面积比合同约定多出近十平方米，要求说明多出部分为何由住户承担。",
    ),
    (136, "app", "我妈要做高龄津贴的年度认证，但她常年卧床出不了门，能请社区上门帮忙办吗？"),
    (
        126,
        "hotline_12345",
        "来电人反映：其独自抚养两个孩子，前夫不支付抚养费，本人打零工收入低，咨询能否申请困难补助。",
    ),
    (
        566,
        "visit",
        "居民来访：家中两位老人年近九十，想申请居家适老化改造（防滑地板、床边扶手），询问办理手续。",
    ),
]
# Two reports of the same kind of problem at two nearby buildings (different matters that read
# alike): (index of the labelled report, channel, text).
NEIGHBOURS = [
    (252, "weixin_grid_group", "5栋门口的垃圾桶又满了，都溢出来了，没人来收"),
    (48, "weixin_grid_group", "9栋4楼也有人从窗户拉电线下来给电瓶车充电，线挂在树上"),
    (394, "app", "3栋电梯门关不上，一直开开合合的，好几天了"),
    (398, "visit", "入户走访时，2栋住户反映一楼信报箱锁坏了，信件被人翻。"),
    (297, "weixin_grid_group", "4栋楼道里有人养狗，狗在楼梯上撒尿，臭得很"),
    (29, "weixin_grid_group", "12栋楼顶有人在搭彩钢棚子"),
    (194, "weixin_grid_group", "楼下那家装修白天电钻响一整天，中午都不停"),
    (627, "weixin_grid_group", "2楼厨房的燃气管好像漏了，整个单元都是煤气味"),
    (71, "hotline_12345", "来电人反映：枫林湾3栋电梯井底部积水，电梯停运，要求物业抽水维修。"),
    (12, "weixin_grid_group", "青和居5栋南面有人往下扔烟头，落到晾的被子上烧了个洞"),
    (402, "weixin_grid_group", "学府路的路灯坏了一排，晚上黑漆漆的"),
    (633, "weixin_grid_group", "我们楼楼梯扶手松了，晃得厉害，老人扶着很危险"),
]

# the systems each channel sends points in: apps and WeChat from a map SDK, the others a
# building's surveyed point
SYSTEMS: dict[str, tuple[Crs, ...]] = {
    "app": ("gcj02", "bd09", "wgs84"),
    "weixin_grid_group": ("gcj02",),
}
FAR_CHANNELS = ("hotline_12345", "visit", "door_knock", "suggestion_box")


def labelled() -> list[dict[str, Any]]:
    rows = []
    for name in ("reports-labeled.jsonl", "reports-labeled-more.jsonl"):
        with open(DATA / name, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return rows


def offset(lon: float, lat: float, metres: float, rng: random.Random) -> tuple[float, float]:
    bearing = rng.uniform(0, 2 * math.pi)
    dlat = metres * math.cos(bearing) / 111_320
    dlon = metres * math.sin(bearing) / (111_320 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def report(
    text: str,
    category: str,
    source: str,
    point: tuple[float, float],
    hours: float,
    rng: random.Random,
) -> dict[str, Any]:
    crs: Crs = rng.choice(SYSTEMS.get(source, ("wgs84",)))
    lon, lat = from_wgs84(*point, crs)
    return {
        "text": text,
        "category": category,
        "source": source,
        "lon": round(lon, 7),
        "lat": round(lat, 7),
        "crs": crs,
        "hours": round(hours, 2),
    }


def jitter_m(source: str, rng: random.Random) -> float:
    """How far a report's point is from the problem: a phone's fix and where the resident
    stands (apps, WeChat), or the building's surveyed point (the others)."""
    return rng.uniform(0, 120) if source in SYSTEMS else rng.uniform(0, 40)


def somewhere(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(BBOX[0], BBOX[2]), rng.uniform(BBOX[1], BBOX[3])


def pairs(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def pair(kind: str, same: bool, a: dict[str, Any], b: dict[str, Any]) -> None:
        out.append({"kind": kind, "same": same, "a": a, "b": b})

    def first(row: dict[str, Any], at: tuple[float, float]) -> dict[str, Any]:
        point = offset(*at, jitter_m(row["source"], rng), rng)
        return report(row["text"], row["category"], row["source"], point, 0.0, rng)

    # the same matter through another channel, within two days
    for i, source, text in VARIANTS:
        row, at = rows[i], somewhere(rng)
        b_point = offset(*at, jitter_m(source, rng), rng)
        b = report(text, row["category"], source, b_point, rng.uniform(0.1, 48), rng)
        pair("same_matter", True, first(row, at), b)
    # the same kind of problem, told alike, at another community 1-5 km away
    for i, source, text in rng.sample(VARIANTS, 25):
        row, at = rows[i], somewhere(rng)
        b_point = offset(*at, rng.uniform(1000, 5000), rng)
        b = report(text, row["category"], source, b_point, rng.uniform(0.1, 48), rng)
        pair("alike_far", False, first(row, at), b)
    # the same kind of problem at a building nearby (80-250 m)
    for i, source, text in NEIGHBOURS:
        row, at = rows[i], somewhere(rng)
        b_point = offset(*at, rng.uniform(80, 250), rng)
        b = report(text, row["category"], source, b_point, rng.uniform(0.1, 48), rng)
        pair("alike_nearby", False, first(row, at), b)
    # two other reports of one category within 300 m
    by_category: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_category.setdefault(row["category"], []).append(row)
    categories = sorted(by_category)
    for _ in range(120):
        a_row, b_row = rng.sample(by_category[rng.choice(categories)], 2)
        at = somewhere(rng)
        b_point = offset(*at, rng.uniform(0, 300), rng)
        b = report(
            b_row["text"], b_row["category"], b_row["source"], b_point, rng.uniform(0.1, 48), rng
        )
        pair("same_category_nearby", False, first(a_row, at), b)
    # reports of two categories within 300 m
    for _ in range(40):
        a_cat, b_cat = rng.sample(categories, 2)
        a_row, b_row = rng.choice(by_category[a_cat]), rng.choice(by_category[b_cat])
        at = somewhere(rng)
        b_point = offset(*at, rng.uniform(0, 300), rng)
        b = report(
            b_row["text"], b_row["category"], b_row["source"], b_point, rng.uniform(0.1, 48), rng
        )
        pair("other_category_nearby", False, first(a_row, at), b)
    return out


def main() -> None:
    rng = random.Random(SEED)
    rows = pairs(labelled(), rng)
    with open(OUT, "w", encoding="utf-8") as f:
        for p in rows:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    print(
        f"{len(rows)} pairs ({sum(p['same'] for p in rows)} same matter) -> {OUT.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
