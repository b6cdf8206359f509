// What both pages share: the Chinese names of tiers, levels, states, due statuses and timeline
// events, the time format (Asia/Shanghai) and a small element builder.
export const TIERS = ["grid", "community", "street", "district"];
export const TIER_NAMES = { grid: "网格", community: "社区", street: "街道", district: "区" };
export const LEVEL_NAMES = {
  district: "区",
  street: "街道",
  community: "社区",
  grid: "网格",
  building: "楼栋",
  department: "职能部门",
};
export const STATE_NAMES = {
  dispatched: "已派发",
  escalated: "已上报",
  returned: "已退回",
  transferred: "已转办",
  accepted: "处置中",
  deliberating: "议事中",
  extension_requested: "延期待审批",
  suspended: "已挂起",
  verifying: "待核查",
  resolved: "已办结",
  triage: "待分拨",
};
export const DUE_NAMES = { on_track: "正常", due_soon: "即将超时", overdue: "已超时" };
export const EVENT_NAMES = {
  dispatched: "派发",
  accept: "接单",
  progress: "进展",
  resolve: "办结",
  escalate: "上报（吹哨）",
  return: "退单",
  transfer: "转办（改派）",
  deliberate: "提交议事会",
  respond_timeout: "响应超时",
  resolve_timeout: "办结超时",
  deliberation_ended: "议事结束",
  request_extension: "申请延期",
  approve_extension: "批准延期",
  refuse_extension: "不予延期",
  extension_lapsed: "延期申请逾期未审",
  suspend: "挂起",
  resume: "恢复办理",
  suspension_ended: "挂起期满恢复",
  verify: "核查通过",
  send_back: "核查不通过，退回重办",
  verify_timeout: "核查超时",
  verification_waived: "免核查",
  warned: "黄牌预警",
  rules_raised: "规则提级",
  reopen: "重新办理",
  reclassify: "重新分类",
  merged: "附议",
  supervise: "督办",
};

export const $ = (id) => document.getElementById(id);
// A datetime-local value (the user's wall clock, Asia/Shanghai) as an ISO time with its offset
export const shanghai = (local) => (local.length === 16 ? `${local}:00+08:00` : `${local}+08:00`);
export const fmtTime = (iso) =>
  iso
    ? new Date(iso).toLocaleString("zh-CN", {
        timeZone: "Asia/Shanghai",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
      })
    : "—";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// An action on a case through the handler API, with the session cookie: the header the service
// requires of a cookie session's unsafe call, and an Idempotency-Key so that a retry is harmless.
export function actOn(caseId, body) {
  return fetch(`/cases/${encodeURIComponent(caseId)}/actions`, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      "Idempotency-Key": crypto.randomUUID(),
      "X-Requested-With": "wangge-console",
    },
    body: JSON.stringify(body),
  });
}

// The reason a refused call gives (a problem's detail, or the field errors), else its status.
export async function refusal(resp) {
  try {
    const body = await resp.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((e) => e.msg).join("；");
  } catch {}
  return `${resp.status}`;
}
