"""Report texts for the simulated city: the labelled examples shipped in ``sim/data`` (a copy of
the project's labelled reports) and per-category templates that name the simulated place.

Pure and seeded (every function takes its ``random.Random``).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).parent / "data" / "reports-labeled.jsonl"

# {place}: a building as residents write it (金湖苑3栋); {days}, {n}: small numbers.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "sanitation": (
        "{place}楼下的垃圾桶满溢了，已经{days}天没人清运，味道很大，麻烦尽快处理",
        "{place}单元门口堆了很多装修垃圾和杂物，蚊蝇很多，请安排保洁清理",
    ),
    "civility": (
        "{place}有人从楼上往下扔东西，高空抛物太危险了，请查一下",
        "{place}附近遛狗不牵绳，狗屎也没人清理，希望管一管这种不文明行为",
    ),
    "illegal_construction": (
        "{place}顶楼有住户在私搭阳光房，属于违建，请城管来看看",
        "{place}一楼住户把院子圈起来加建了一间房，违章搭建，影响通行",
    ),
    "parking": (
        "{place}门口消防通道被私家车占用，乱停车很严重，救护车都进不来",
        "{place}旁边有一辆僵尸车停了{days}个月，占用车位，请处理",
    ),
    "ebike_charging": (
        "{place}有人从窗户拉飞线给电动车充电，电线挂在楼道里，很危险",
        "{place}楼道里停了好几辆电瓶车在充电，万一着火后果不堪设想",
    ),
    "property_repair": (
        "{place}楼道灯坏了{days}天了，晚上黑漆漆的，老人上下楼不方便，请物业维修",
        "{place}单元门禁坏了，门关不上，外人随便进出，麻烦报修",
        "{place}楼上漏水，我家天花板渗水，找物业好几次都没人来",
    ),
    "municipal_facility": (
        "{place}前面马路上的井盖松动了，车压过去哐哐响，晚上很吵也危险",
        "{place}外面人行道路面塌了一个坑，下雨就积水，请市政修一下",
        "{place}旁边路灯坏了一排，晚上路口很黑",
    ),
    "neighbor_dispute": (
        "{place}楼上邻居和楼下因为漏水的事吵了好几次，请网格员来调解一下",
        "{place}对门邻居长期把鞋柜杂物放在公共走廊，沟通无果，产生矛盾",
    ),
    "legal_petition": (
        "我在{place}住，之前打工的老板拖欠工资{n}个月了，想咨询法律援助",
        "{place}的住户反映签了装修合同被骗，想找律师维权，请帮忙",
    ),
    "demolition": (
        "{place}所在片区听说要征收，补偿标准一直没有公布，居民很着急",
        "{place}拆迁安置房迟迟没有交付，补偿款也没到位，希望给个说法",
    ),
    "welfare": (
        "{place}有一户家庭生活困难，丈夫大病住院，想申请临时救助",
        "{place}的残疾老人想问低保怎么申请，需要什么材料",
    ),
    "public_service": (
        "我住{place}，想开具居住证明，请问社区什么时候可以盖章",
        "{place}的住户想办理孩子入学需要的户口证明，麻烦代办一下",
    ),
    "elderly_care": (
        "{place}有一位独居高龄老人，最近身体不好，希望社区上门看看",
        "{place}的老人家想问社区助餐点在哪里，能不能送餐上门",
    ),
    "elevator_retrofit": (
        "{place}是老旧小区，住户想加装电梯，低层住户意见不一，希望社区协调",
        "{place}加装电梯的申请交上去{n}个月了，想了解进度",
    ),
    "owners_committee": (
        "{place}所在小区业委会账目不公开，维修基金怎么用的没人知道",
        "{place}的业主想召开业主大会换物业，请社区指导业委会选举",
    ),
    "safety_hazard": (
        "{place}楼道里有很浓的燃气味，怀疑漏气，请马上派人来看！",
        "{place}外墙瓷砖脱落，砸到楼下车上了，随时可能伤人，安全隐患很大",
        "{place}楼道的灭火器都过期了，消防设施形同虚设",
    ),
    "noise": (
        "{place}楼下店铺音响声音太大，每天半夜还在放，吵得睡不着",
        "{place}旁边工地夜间施工，噪音扰民，已经持续{days}天了",
    ),
    "greening": (
        "{place}门口的大树树枝快伸进窗户了，请绿化养护的来修剪一下",
        "{place}楼下绿地被人毁绿种菜，还施农家肥，臭气熏天",
    ),
    "market_order": (
        "{place}门口每天晚上都有流动摊贩占道经营，油烟很大",
        "{place}旁边商铺出店经营，把人行道都占满了",
    ),
    "consultation": (
        "请问{place}的居民办理医保报销需要什么材料，流程是怎样的",
        "我住{place}，想咨询一下新生儿落户的政策",
    ),
    "suggestion": (
        "建议在{place}旁边增设几个休闲座椅，老人散步累了可以歇歇脚",
        "希望社区能在{place}附近设置快递柜，方便居民取件",
    ),
}


@dataclass(frozen=True)
class Example:
    text: str
    category: str
    source: str
    urgent: bool
    households: int | None


@cache
def labelled_examples() -> dict[str, tuple[Example, ...]]:
    """The labelled reports by category."""
    out: dict[str, list[Example]] = defaultdict(list)
    for line in DATA.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        out[d["category"]].append(
            Example(
                d["text"], d["category"], d["source"], d["urgent"], d.get("households_affected")
            )
        )
    return {k: tuple(v) for k, v in out.items()}


def report_text(category: str, place: str, rng: random.Random) -> tuple[str, Example | None]:
    """A resident's text for ``category`` about ``place``: a labelled example (sometimes prefixed
    with the place) or a template. Returns the text and the example it came from."""
    examples = labelled_examples().get(category, ())
    if examples and (rng.random() < 0.55 or category not in TEMPLATES):
        ex = rng.choice(examples)
        text = f"{place}，{ex.text}" if rng.random() < 0.4 else ex.text
        return text, ex
    template = rng.choice(TEMPLATES[category])
    return template.format(place=place, days=rng.randint(2, 9), n=rng.randint(2, 6)), None


RESOLVE_NOTES = (
    "已到现场核实，协调物业处理完毕",
    "已安排人员清理，现场已恢复",
    "已联系相关单位维修完成，居民确认",
    "已上门沟通，双方达成一致",
    "已办理完毕，结果已电话告知居民",
    "已现场整改，后续纳入日常巡查",
)
PROGRESS_NOTES = ("已联系物业，正在安排", "已到现场查看，等待材料", "已约定上门时间")
ESCALATE_NOTES = (
    "超出网格处置能力，申请上报",
    "涉及多个部门，需要上级协调（吹哨）",
    "需要执法力量介入，申请上报",
)
RETURN_NOTES = ("不属于本单位职责范围，申请退单", "地址不在本辖区，请重新派单")
RATING_COMMENTS = {
    "satisfied": ("处理很及时，谢谢网格员", "问题解决了，满意", None, None),
    "basically_satisfied": ("解决了，但是时间有点长", "基本解决，希望以后多巡查", None),
    "unsatisfied": ("问题没有解决，还是老样子", "来看了一下就走了，没处理", "态度不好"),
}
