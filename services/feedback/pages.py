"""The residents' pages (pure): the rating form, its answers, and a case's status, as HTML.

Server-rendered, in Chinese, one small page each: no script, no external asset (government
networks and old phones), the style inline in one ``<style>`` element that the Content Security
Policy admits by its hash (``CSP``). Every value from the database or the request is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any, get_args

from shared.contract.events import Satisfaction

from .periods import TZ

SATISFACTION_LABELS: dict[str, str] = {
    "satisfied": "满意",
    "basically_satisfied": "基本满意",
    "unsatisfied": "不满意",
}
assert set(SATISFACTION_LABELS) == set(get_args(Satisfaction)), "a Satisfaction without a label"
RESOLVED_LABELS = {"yes": "已解决", "no": "未解决"}

STYLE = """
*{box-sizing:border-box}
body{margin:0;font:16px/1.6 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;
color:#1f2328;background:#f4f6f8}
main{max-width:34rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.5rem 0 1rem}
.card{background:#fff;border-radius:.6rem;padding:1rem;margin-bottom:1rem;
box-shadow:0 1px 2px rgba(0,0,0,.08)}
fieldset{border:0;margin:0 0 1rem;padding:0}
legend{font-weight:600;margin-bottom:.4rem}
.choice{display:block;padding:.7rem .8rem;margin:.35rem 0;border:1px solid #d0d7de;
border-radius:.5rem;background:#fff}
.choice input{margin-right:.5rem;transform:scale(1.2)}
label.text{display:block;font-weight:600;margin-bottom:.4rem}
textarea{width:100%;min-height:6rem;padding:.6rem;font:inherit;border:1px solid #d0d7de;
border-radius:.5rem}
button{width:100%;padding:.8rem;font:inherit;font-weight:600;color:#fff;background:#0a66c2;
border:0;border-radius:.5rem;margin-top:1rem}
button:focus,input:focus,textarea:focus{outline:3px solid #f2a900;outline-offset:2px}
.errors{border-left:4px solid #cf222e;background:#fff5f5;padding:.6rem .8rem;margin-bottom:1rem}
.muted{color:#57606a;font-size:.9rem}
.state{font-size:1.2rem;font-weight:600;color:#0a66c2}
ol.timeline{list-style:none;padding:0;margin:0}
ol.timeline li{border-left:3px solid #d0d7de;padding:0 0 .8rem .8rem;margin-left:.3rem}
ol.timeline li:last-child{border-left-color:#0a66c2}
time{display:block;color:#57606a;font-size:.85rem}
""".strip()
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
# No script, no frame, nothing from elsewhere; the form posts to this page only.
CSP = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src 'none'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",  # the token in the URL goes nowhere else
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
HELP = "如需帮助，请联系您所在的社区或拨打 12345 热线。"


def local_time(at: datetime) -> str:
    return at.astimezone(TZ).strftime("%Y-%m-%d %H:%M")


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def rating_form(
    *,
    case_id: str,
    category_name: str | None,
    expires_at: datetime,
    nonce: str,
    errors: Sequence[str] = (),
    values: Mapping[str, str] | None = None,
) -> str:
    """The two questions (问题是否解决, 满意度) and a comment, posted to the page's own URL."""
    v = values or {}
    what = escape(category_name or "您反映的问题")
    intro = (
        f'<div class="card"><p>您反映的“{what}”问题（编号 {escape(case_id)}）已办结。'
        "请您对办理结果进行评价，您的评价将用于改进工作。</p>"
        f'<p class="muted">评价链接仅可使用一次，有效期至 {local_time(expires_at)}。</p></div>'
    )
    shown_errors = ""
    if errors:
        items = "".join(f"<li>{escape(e)}</li>" for e in errors)
        shown_errors = f'<div class="errors" role="alert"><ul>{items}</ul></div>'
    resolved = _radios("resolved", RESOLVED_LABELS, v.get("resolved"))
    satisfaction = _radios("satisfaction", SATISFACTION_LABELS, v.get("satisfaction"))
    form = (
        '<form class="card" method="post" accept-charset="utf-8">'
        f'<input type="hidden" name="nonce" value="{escape(nonce)}">'
        f"<fieldset><legend>1. 问题是否已解决？</legend>{resolved}</fieldset>"
        f"<fieldset><legend>2. 您对办理结果是否满意？</legend>{satisfaction}</fieldset>"
        '<label class="text" for="comment">3. 意见或建议（选填）</label>'
        '<textarea id="comment" name="comment" maxlength="2000" rows="4">'
        f"{escape(v.get('comment', ''))}</textarea>"
        '<button type="submit">提交评价</button></form>'
    )
    return page("办理结果评价", intro + shown_errors + form)


def _radios(name: str, labels: Mapping[str, str], checked: str | None) -> str:
    out = []
    for value, label in labels.items():
        on = " checked" if value == checked else ""
        out.append(
            f'<label class="choice"><input type="radio" name="{name}" value="{value}" '
            f"required{on}>{escape(label)}</label>"
        )
    return "".join(out)


def message(title: str, text: str, *, status_url: str | None = None) -> str:
    """A page that only says something (an answer, or why not)."""
    link = (
        f'<p><a href="{escape(status_url)}">查看办理进度</a></p>' if status_url is not None else ""
    )
    return page(title, f'<div class="card"><p>{escape(text)}</p>{link}</div>')


def status_page(view: Mapping[str, Any]) -> str:
    """A case's state and timeline (``status.resident_view``)."""
    what = escape(view.get("category_name") or "诉求")
    head = (
        f'<div class="card"><p class="muted">编号 {escape(view["case_id"])} · {what}</p>'
        f'<p class="state">当前状态：{escape(view["state_label"])}</p></div>'
    )
    items = []
    for step in view["timeline"]:
        where = " · ".join(escape(x) for x in (step.get("tier_label"), step.get("unit_name")) if x)
        extra = "".join(
            f'<span class="muted">（{x}）</span>'
            for x in (where, escape(step["detail"] or ""))
            if x
        )
        items.append(
            f"<li><time>{local_time(step['at'])}</time>{escape(step['label'])}{extra}</li>"
        )
    steps = (
        f'<div class="card"><ol class="timeline">{"".join(items)}</ol></div>'
        if items
        else '<div class="card"><p>您的诉求已收到，正在处理中。</p></div>'
    )
    return page("诉求办理进度", head + steps)
