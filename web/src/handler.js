// The handler's phone page (处置人手机页): my cases by deadline (overdue, due soon, the rest), a
// case's detail with its timeline, and the actions the handler API says the caller may take now
// (accept, progress, resolve, return, escalate), each with a note. A party volunteer's list from
// GET /me/cases also holds their community's open orders (接单): cases not assigned to them that
// they may accept. A case the command centre supervises (督办) has a badge, and its note and
// report-back time on top of the case. Data: /me/cases, /me/supervisions, /cases/{id},
// /console/api/names; actions: POST /cases/{id}/actions with the session cookie (common.actOn).
import "./handler.css";
import {
  $,
  DUE_NAMES,
  EVENT_NAMES,
  STATE_NAMES,
  TIER_NAMES,
  actOn,
  el,
  fmtTime,
  refusal,
  shanghai,
} from "./common.js";

// The actions this page offers, in the order shown; the API's list decides which appear
const ACTIONS = [
  ["accept", "接单", "primary"],
  ["progress", "反馈进展", "secondary"],
  ["resolve", "办结", "primary"],
  ["return", "退单", "secondary"],
  ["escalate", "上报（吹哨）", "secondary"],
  ["request_extension", "申请延期", "secondary"],
  ["suspend", "挂起（等待居民）", "secondary"],
  ["resume", "恢复办理", "primary"],
  ["approve_extension", "批准延期", "primary"],
  ["refuse_extension", "不予延期", "secondary"],
  ["verify", "核查通过", "primary"],
  ["send_back", "核查不通过（退回重办）", "secondary"],
];
const NOTE_REQUIRED = new Set([
  "resolve",
  "return",
  "escalate",
  "request_extension",
  "refuse_extension",
  "suspend",
  "send_back",
]);
// The actions that need a date, and the field of the API it goes to
const DATE_FIELD = { request_extension: "extend_to", suspend: "resume_by" };
const DONE = {
  accept: "已接单",
  progress: "已反馈进展",
  resolve: "已办结",
  return: "已退单",
  escalate: "已上报",
  request_extension: "已申请延期",
  suspend: "已挂起",
  resume: "已恢复办理",
  approve_extension: "已批准延期",
  refuse_extension: "已不予延期",
  verify: "已核查通过",
  send_back: "已退回重办",
};

const DEADLINE_NAMES = { respond: "接单期限", resolve: "办结期限", verify: "核查期限" };

let names = { units: {}, categories: {} };
let openCase = null;
let supervisions = new Map(); // case id -> its current supervision (督办), GET /me/supervisions

const unitName = (code) => (code && names.units[code]) || code || "—";
const categoryName = (code) => names.categories[code] || code;

// --- the lists ----------------------------------------------------------------------------------

function caseItem(c) {
  const deadline = c.next_deadline;
  const when = deadline ? `${DEADLINE_NAMES[deadline.kind]} ${fmtTime(deadline.at)}` : "暂停计时";
  return el(
    "li",
    { "data-case-id": c.case_id, "data-due": c.due || "", class: `case due-${c.due || "none"}` },
    el(
      "button",
      { type: "button", class: "case-link", onclick: () => showCase(c.case_id) },
      el("span", { class: "case-cat" }, categoryName(c.category)),
      el("span", { class: "case-due" }, c.due ? `${DUE_NAMES[c.due]} · ${when}` : when),
      el("span", { class: "case-where" }, unitName(c.grid || c.community || c.unit)),
      el(
        "span",
        { class: "case-state" },
        `${STATE_NAMES[c.state] || c.state} · ${TIER_NAMES[c.tier]}级${c.urgent ? " · 紧急" : ""}`,
      ),
      el("span", { class: "case-id" }, c.case_id),
      supervisions.has(c.case_id)
        ? el("span", { class: "badge-supervised", "data-supervised": supervisions.get(c.case_id).supervision }, "督办")
        : "",
    ),
  );
}

async function loadSupervisions() {
  const resp = await fetch("/me/supervisions", { credentials: "same-origin" });
  if (resp.ok) supervisions = new Map((await resp.json()).items.map((s) => [s.case_id, s]));
}

// The command centre's supervision of the case, on top of it: what to do, by when to report
function supervisionNote(s) {
  return el(
    "div",
    { class: "supervision", role: "note", "data-supervision": s.supervision },
    el("strong", {}, s.count > 1 ? `督办（${s.count}次）` : "督办"),
    el("span", {}, s.note),
    s.report_by ? el("span", { class: "muted-strong" }, `请于 ${fmtTime(s.report_by)} 前反馈`) : "",
    el("span", { class: "muted-strong" }, `${unitName(s.by.unit)} · ${fmtTime(s.supervised_at)}`),
  );
}

function renderList(id, cases, empty) {
  $(id).replaceChildren(...(cases.length ? cases.map(caseItem) : [el("li", { class: "empty" }, empty)]));
}

async function loadList() {
  await loadSupervisions();
  const resp = await fetch("/me/cases?limit=200", { credentials: "same-origin" });
  if (!resp.ok) {
    $("updated").textContent = `无法读取案件（${await refusal(resp)}）`;
    return;
  }
  const list = await resp.json();
  const volunteer = document.body.dataset.role === "party_volunteer";
  // a volunteer's cases not yet theirs are the community's open orders (接单)
  const mine = list.items.filter((c) => !volunteer || c.assigned_to_me);
  const orders = volunteer ? list.items.filter((c) => !c.assigned_to_me) : [];
  // the API lists nearest deadline first; overdue, due soon, then the rest keep that order
  renderList("overdue", mine.filter((c) => c.due === "overdue"), "暂无超时案件");
  renderList("due-soon", mine.filter((c) => c.due === "due_soon"), "暂无即将超时案件");
  renderList("rest", mine.filter((c) => c.due !== "overdue" && c.due !== "due_soon"), "暂无其他案件");
  $("orders-section").hidden = !volunteer;
  if (volunteer) renderList("orders", orders, "社区暂无待接订单");
  const counts = [
    ["在办", mine.length, "open"],
    ["已超时", mine.filter((c) => c.due === "overdue").length, "overdue"],
    ["即将超时", mine.filter((c) => c.due === "due_soon").length, "due_soon"],
    ...(volunteer ? [["待接订单", orders.length, "orders"]] : []),
  ];
  $("counts").replaceChildren(
    ...counts.map(([label, n, key]) =>
      el("div", { class: `tile tile-${key}`, "data-count": key }, el("dt", {}, label), el("dd", {}, n)),
    ),
  );
  $("updated").textContent = `更新于 ${fmtTime(list.now)}`;
  document.body.dataset.listAt = list.now;
}

// --- a case ---------------------------------------------------------------------------------------

async function showCase(caseId, outcome = "") {
  openCase = caseId;
  $("list-view").hidden = true;
  $("case-view").hidden = false;
  $("case-title").textContent = `案件 ${caseId}`;
  $("case-body").replaceChildren(el("p", {}, "加载中…"));
  $("timeline").replaceChildren();
  $("act-section").hidden = true;
  $("act-result").textContent = outcome;
  window.scrollTo(0, 0);
  const [resp] = await Promise.all([
    fetch(`/cases/${encodeURIComponent(caseId)}`, { credentials: "same-origin" }),
    loadSupervisions(),
  ]);
  if (!resp.ok) {
    $("case-body").replaceChildren(el("p", { role: "alert" }, `无法读取案件（${await refusal(resp)}）`));
    return;
  }
  renderCase(await resp.json());
}

function renderCase(c) {
  const facts = [
    ["类别", categoryName(c.category)],
    ["状态", STATE_NAMES[c.state] || c.state],
    ["期限状态", c.due ? DUE_NAMES[c.due] : "—"],
    ["接单期限", fmtTime(c.respond_by)],
    ["办结期限", fmtTime(c.resolve_by)],
    ["层级", `${TIER_NAMES[c.tier]}级`],
    ["承办单位", unitName(c.unit)],
    ["位置", [c.community, c.grid, c.building].filter(Boolean).map(unitName).join(" / ")],
    ["处置人", c.assigned_to_me ? "我" : c.handler_id || "本单位"],
    ["附议人数", c.supporters],
    ["督办", c.supervised || supervisions.has(c.case_id) ? "是" : "否"],
  ];
  if (c.paused_at && c.state !== "verifying") facts.push(["暂停计时", `自 ${fmtTime(c.paused_at)} 起，至迟 ${fmtTime(c.paused_until)}`]);
  if (c.extension) {
    facts.push(
      ["申请延期至", fmtTime(c.extension.extend_to)],
      ["延期理由", c.extension.reason],
      ["审批单位", unitName(c.extension.approver)],
    );
  }
  if (c.extensions) facts.push(["已延期次数", c.extensions]);
  if (c.verification) {
    facts.push(
      ["核查单位", unitName(c.verification.verifier_unit)],
      ["核查期限", fmtTime(c.verification.verify_by)],
    );
  }
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v || "—"));
  const sup = supervisions.get(c.case_id);
  $("case-body").replaceChildren(...(sup ? [supervisionNote(sup)] : []), dl);
  document.body.dataset.caseState = c.state;
  const reported = (c.photos || []).filter((p) => p.origin === "report").map((p) => p.photo_id);
  $("photos-section").hidden = reported.length === 0;
  $("report-photos").replaceChildren(photoStrip(c.case_id, reported, "群众上报照片"));
  $("timeline").replaceChildren(
    ...c.timeline.map((s) =>
      el(
        "li",
        { "data-event": s.event },
        el("span", { class: "step-at" }, fmtTime(s.at)),
        el("span", { class: "step-event" }, EVENT_NAMES[s.event] || s.event),
        el("span", { class: "step-to" }, s.to_state ? `→ ${STATE_NAMES[s.to_state] || s.to_state}` : ""),
        el("span", { class: "step-who" }, [s.unit && unitName(s.unit), s.handler_id].filter(Boolean).join(" · ")),
        s.detail && s.detail.note ? el("span", { class: "step-note" }, s.detail.note) : "",
        photoStrip(c.case_id, (s.detail && s.detail.photos) || [], "办理照片"),
      ),
    ),
  );
  const offered = ACTIONS.filter(([a]) => c.actions.includes(a));
  $("act-section").hidden = offered.length === 0;
  $("when-field").hidden = !offered.some(([a]) => a in DATE_FIELD);
  $("act-buttons").replaceChildren(
    ...offered.map(([action, label, kind]) =>
      el("button", { type: "button", class: kind, "data-action": action, onclick: () => act(action) }, label),
    ),
  );
}

// --- photos (照片) ----------------------------------------------------------------------------

// Thumbnails of a case's photos, each a link to the photo itself (GET /cases/{id}/photos/{pid}:
// dispatch serves a handler's, and sends a report's to intake with a short-lived signed link)
function photoStrip(caseId, ids, label) {
  if (!ids.length) return "";
  return el(
    "span",
    { class: "photos", "data-photos": ids.length },
    ...ids.map((pid, i) => {
      const url = `/cases/${encodeURIComponent(caseId)}/photos/${pid}`;
      const alt = `${label} ${i + 1}`;
      return el("a", { href: url, target: "_blank", rel: "noopener" }, el("img", { src: url, alt, loading: "lazy" }));
    }),
  );
}

// A photo for the next action, uploaded first (POST /cases/{id}/photos): the service checks it,
// strips its EXIF (the GPS position) and answers its id, which the action then names
function uploadPhoto(caseId, file) {
  const form = new FormData();
  form.append("photo", file);
  return fetch(`/cases/${encodeURIComponent(caseId)}/photos`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-Requested-With": "wangge-console" },
    body: form,
  });
}

async function act(action) {
  const note = $("note").value.trim();
  const result = $("act-result");
  if (NOTE_REQUIRED.has(action) && !note) {
    result.textContent = "请先填写说明";
    $("note").focus();
    return;
  }
  const body = { action, note: note || null };
  if (action in DATE_FIELD) {
    const when = $("when").value;
    if (!when) {
      result.textContent = "请先选择日期";
      $("when").focus();
      return;
    }
    body[DATE_FIELD[action]] = shanghai(when);
  }
  for (const b of $("act-buttons").querySelectorAll("button")) b.disabled = true;
  result.textContent = "提交中…";
  const file = $("photo").files[0];
  if (file) {
    const up = await uploadPhoto(openCase, file);
    if (!up.ok) {
      result.textContent = `照片未上传：${await refusal(up)}`;
      for (const b of $("act-buttons").querySelectorAll("button")) b.disabled = false;
      return;
    }
    body.photos = [(await up.json()).photo_id];
  }
  const resp = await actOn(openCase, body);
  if (resp.ok) {
    $("note").value = "";
    $("photo").value = "";
    $("when").value = "";
    await showCase(openCase, DONE[action]);
    loadList();
  } else {
    result.textContent = `未成功：${await refusal(resp)}`;
    for (const b of $("act-buttons").querySelectorAll("button")) b.disabled = false;
  }
}

function backToList() {
  openCase = null;
  $("case-view").hidden = true;
  $("list-view").hidden = false;
  loadList();
}

async function loadNames() {
  const resp = await fetch("/console/api/names", { credentials: "same-origin" });
  if (resp.ok) names = await resp.json();
  document.body.dataset.role = names.role || "";
  $("who").textContent = unitName(names.unit);
}

document.addEventListener("DOMContentLoaded", async () => {
  $("back").addEventListener("click", backToList);
  $("refresh").addEventListener("click", () => (openCase ? showCase(openCase) : loadList()));
  await loadNames();
  await loadList();
});
