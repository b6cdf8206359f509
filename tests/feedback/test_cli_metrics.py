"""The CLI's metrics table follows the JSON of GET /units/{code}/metrics (pure)."""

from __future__ import annotations

from cli.metrics import LABELS, metric_rows, served_apart_lines
from services.feedback.api import RATES


def test_every_rate_of_the_api_has_a_labelled_row() -> None:
    assert set(RATES) <= set(LABELS)
    metrics = {
        "received": 4,
        "satisfaction_rate": {"rate": 0.6, "numerator": 3, "denominator": 5},
        "reopen_rate": {"rate": None, "numerator": 0, "denominator": 0},
        "time_to_resolve_hours": {"median": 6.0, "p90": 39.6, "cases": 3},
    }
    assert metric_rows(metrics) == [
        ("受理量 received", "4", ""),
        ("满意率 satisfaction rate", "60.0%", "3/5"),
        ("重办率 reopen rate", "-", "0/0"),
        ("办结用时(小时) time to resolve (h)", "median 6", "p90 39.6, 3 cases"),
    ]


def test_the_warnings_row() -> None:
    warned = {
        "yellow": 3,
        "red": 1,
        "cases": 2,
        "respond": {"yellow": 2, "red": 1},
        "resolve": {"yellow": 1, "red": 0},
    }
    assert metric_rows({"warned": warned}) == [
        ("黄牌/红牌 warnings (yellow/red)", "3/1", "respond 2/1, resolve 1/0; 2 cases"),
    ]


def test_served_places_are_told_under_the_table() -> None:
    """插花地: the serving unit is told which of its cases are another's; the administrative
    one by whom its cases are served (their figures in a table of their own)."""
    assert served_apart_lines({"served_elsewhere": None, "served_for_others": None}) == []
    serving = {
        "served_for_others": {
            "administrative": [{"code": "QS-HWL-GDHY", "name": "钢都花园社区"}],
            "received": 1,
            "resolved": 1,
            "ratings": 0,
        }
    }
    assert served_apart_lines(serving) == [
        "插花地: of these, 1 received, 1 resolved, 0 ratings are administratively "
        "钢都花园社区 (QS-HWL-GDHY)'s"
    ]
    admin = {"served_elsewhere": {"serving": [{"code": "WC-YY-HPY", "name": None}], "metrics": {}}}
    assert served_apart_lines(admin) == [
        "插花地: served by WC-YY-HPY (WC-YY-HPY), counted there and shown below apart "
        "(not in the figures above)"
    ]
