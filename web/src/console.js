// The command-centre board (指挥调度中心): the district's open cases live, by street, community,
// grid and tier; deadline warnings; the map of grids and buildings from the registry's geometry;
// a case's drill-down with its timeline, reassigning it (改派) and sending a supervision (督办,
// POST /cases/{id}/supervise); the figures per unit and
// month, the ranking and the hot issues (figures.js, from feedback). Data: the board arrives over
// server-sent events (/console/api/events?deltas=true: the board without its buildings on
// connect, then what changed: the totals, the lists and the units whose counts moved, buildings
// too), the map's GeoJSON from /console/api/map (revalidated by its ETag) and each grid's and
// building's counts from /console/api/counts (read after the first board, so that the deltas
// after it are newer), a case from dispatch's
// own /cases/{id}. The session
// cookie authenticates every call; unsafe calls add the X-Requested-With header the service
// requires of cookie sessions.
import "leaflet/dist/leaflet.css";
import "./console.css";
import L from "leaflet";
import * as echarts from "echarts/core";
import { BarChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { SVGRenderer } from "echarts/renderers";
import {
  $,
  DUE_NAMES,
  EVENT_NAMES,
  LEVEL_NAMES,
  STATE_NAMES,
  TIER_NAMES,
  TIERS,
  actOn,
  el,
  fmtTime,
  refusal,
  shanghai,
} from "./common.js";
import { startFigures } from "./figures.js";

echarts.use([BarChart, GridComponent, LegendComponent, TooltipComponent, SVGRenderer]);

let board = null; // the last board pushed, its unit rows kept up to date by the deltas
let units = new Map(); // code -> unit row of the board (buildings: from the map, then deltas)
let touched = new Set(); // codes a delta has set since the last whole board
let openCase = null; // the case id in the drill-down

// --- the summary --------------------------------------------------------------------------------

function renderTotals(b) {
  const t = b.totals;
  const items = [
    ["在办案件", t.open, "open"],
    ["即将超时", t.due_soon, "due_soon"],
    ["已超时", t.overdue, "overdue"],
    ...TIERS.map((tier) => [`${TIER_NAMES[tier]}级`, t.by_tier[tier] || 0, `tier-${tier}`]),
  ];
  $("totals").replaceChildren(
    ...items.map(([label, n, key]) =>
      el("div", { class: `tile tile-${key}`, "data-total": key }, el("dt", {}, label), el("dd", {}, n)),
    ),
  );
  $("unit-name").textContent = b.unit.name;
  $("updated").textContent = `更新于 ${fmtTime(b.now)}`;
}

// --- the case lists -----------------------------------------------------------------------------

function caseItem(c) {
  const where = [c.community_name, c.grid_name].filter(Boolean).join(" · ") || c.unit_name;
  const due = c.due ? DUE_NAMES[c.due] : "";
  return el(
    "li",
    { "data-case-id": c.case_id, "data-due": c.due || "", class: `case due-${c.due || "none"}` },
    el(
      "button",
      { type: "button", class: "case-link", onclick: () => showCase(c.case_id) },
      el("span", { class: "case-id" }, c.case_id),
      el("span", { class: "case-cat" }, c.category_name),
      el("span", { class: "case-where" }, where),
      el("span", { class: "case-tier" }, `${TIER_NAMES[c.tier]}级 · ${STATE_NAMES[c.state] || c.state}`),
      el("span", { class: "case-due" }, c.deadline ? `${due} 期限 ${fmtTime(c.deadline)}` : due),
    ),
  );
}

function renderList(id, cases, empty) {
  const list = $(id);
  list.replaceChildren(...(cases.length ? cases.map(caseItem) : [el("li", { class: "empty" }, empty)]));
}

// --- the table by street, community and grid -------------------------------------------------

function renderUnits(b) {
  const children = new Map();
  for (const u of b.units) {
    const key = u.parent || "";
    if (!children.has(key)) children.set(key, []);
    children.get(key).push(u);
  }
  const rows = [];
  const walk = (code, depth) => {
    for (const u of children.get(code) || []) {
      if (u.level === "building" || u.level === "department") continue;
      rows.push(
        el(
          "tr",
          { "data-unit": u.code, class: u.overdue ? "has-overdue" : "" },
          el("th", { scope: "row", class: `depth-${depth}` }, u.name),
          el("td", {}, LEVEL_NAMES[u.level] || u.level),
          el("td", { "data-count": "open" }, u.open),
          el("td", {}, u.due_soon),
          el("td", { class: u.overdue ? "overdue-cell" : "" }, u.overdue),
          ...TIERS.map((t) => el("td", {}, u.by_tier[t] || 0)),
        ),
      );
      walk(u.code, depth + 1);
    }
  };
  walk(b.unit.code, 0);
  const depts = b.units.filter((u) => u.level === "department");
  for (const u of depts) {
    rows.push(
      el(
        "tr",
        { "data-unit": u.code, class: u.overdue ? "has-overdue" : "" },
        el("th", { scope: "row", class: "depth-0" }, u.name),
        el("td", {}, LEVEL_NAMES.department),
        el("td", { "data-count": "open" }, u.open),
        el("td", {}, u.due_soon),
        el("td", { class: u.overdue ? "overdue-cell" : "" }, u.overdue),
        ...TIERS.map((t) => el("td", {}, u.by_tier[t] || 0)),
      ),
    );
  }
  $("units-body").replaceChildren(...rows);
}

// --- the chart: open cases per street, by tier (ECharts) -----------------------------------------

let chart = null;
function renderChart(b) {
  const streets = b.units.filter((u) => u.level === "street");
  if (!chart) chart = echarts.init($("tier-chart"), null, { renderer: "svg" });
  chart.setOption({
    aria: { enabled: true },
    tooltip: { trigger: "axis" },
    legend: { top: 0, data: TIERS.map((t) => `${TIER_NAMES[t]}级`), textStyle: { color: "#1f2933" } },
    grid: { left: 48, right: 16, top: 36, bottom: 32 },
    xAxis: { type: "category", data: streets.map((s) => s.name), axisLabel: { color: "#1f2933" } },
    yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#1f2933" } },
    series: TIERS.map((t, i) => ({
      name: `${TIER_NAMES[t]}级`,
      type: "bar",
      stack: "open",
      color: ["#1d4ed8", "#0f766e", "#b45309", "#7e22ce"][i],
      data: streets.map((s) => s.by_tier[t] || 0),
    })),
  });
  $("tier-chart").setAttribute(
    "aria-label",
    "各街道在办案件：" + streets.map((s) => `${s.name} ${s.open} 件`).join("，"),
  );
}

// --- the map (Leaflet, the registry's own geometry, no tiles) -------------------------------------

let map = null;
const labels = new Map(); // grid or building code -> marker
const shapes = new Map(); // grid code -> polygon layer

function countIcon(code, kind, u) {
  const open = u ? u.open : 0;
  const overdue = u ? u.overdue : 0;
  const badge = overdue ? `<span class="overdue-badge" data-overdue="${overdue}">超${overdue}</span>` : "";
  return L.divIcon({
    className: `map-count map-${kind}${overdue ? " map-overdue" : ""}${open ? "" : " map-zero"}`,
    html: `<span class="count" data-map-unit="${code}" data-count="${open}">${open}</span>${badge}`,
    iconSize: null,
  });
}

let places = new Map(); // code -> the map's properties of a grid or building

// a unit's row as the board gives it, from its map properties and its counts (fields' order)
function countsRow(props, tally, fields) {
  const row = { ...props, open: 0, due_soon: 0, overdue: 0, by_tier: {} };
  fields.forEach((f, i) => {
    const n = tally ? tally[i] : 0;
    if (TIERS.includes(f)) row.by_tier[f] = n;
    else row[f] = n;
  });
  return row;
}

// the counts of the map's units no delta has set since the board (a delta is newer)
function takeCounts(tallies) {
  for (const [code, props] of places) {
    if (!touched.has(code)) units.set(code, countsRow(props, tallies.units[code], tallies.fields));
  }
}

async function getJSON(path) {
  const resp = await fetch(path, { credentials: "same-origin" });
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

// the geometry (the browser revalidates it with its ETag: a 304 until the registry changes)
const fetchMap = () => getJSON("/console/api/map");
const fetchCounts = () => getJSON("/console/api/counts");

async function loadMap() {
  const [geo, tallies] = await Promise.all([fetchMap(), fetchCounts()]);
  for (const f of geo.features) places.set(f.properties.code, f.properties);
  takeCounts(tallies);
  map = L.map("map", { attributionControl: false, zoomSnap: 0.25 });
  const layer = L.geoJSON(geo, {
    style: () => ({ color: "#1d4ed8", weight: 1.5, fillColor: "#93c5fd", fillOpacity: 0.25 }),
    filter: (f) => f.geometry.type === "Polygon",
    onEachFeature: (f, lyr) => {
      shapes.set(f.properties.code, lyr);
      lyr.bindTooltip(f.properties.name);
    },
  }).addTo(map);
  for (const f of geo.features) {
    const p = f.properties;
    const at =
      f.geometry.type === "Point"
        ? L.latLng(f.geometry.coordinates[1], f.geometry.coordinates[0])
        : shapes.get(p.code).getBounds().getCenter();
    const marker = L.marker(at, {
      icon: countIcon(p.code, p.level, null),
      title: `${p.name}：在办案件`,
      keyboard: false,
      zIndexOffset: p.level === "grid" ? 0 : 100,
    }).addTo(map);
    marker.on("click", () => selectUnit(p.code));
    labels.set(p.code, { marker, props: p });
  }
  const bounds = layer.getBounds();
  if (bounds.isValid()) map.fitBounds(bounds, { padding: [16, 16] });
  else map.setView([30.58, 114.3], 13);
  if (board) renderMap(board);
}

function renderMap(b) {
  if (!map) return;
  for (const [code, { marker, props }] of labels) {
    const u = units.get(code);
    marker.setIcon(countIcon(code, props.level, u));
    marker.options.title = `${props.name}：在办 ${u ? u.open : 0} 件，超时 ${u ? u.overdue : 0} 件`;
    const shape = shapes.get(code);
    if (shape) {
      const n = u ? u.open : 0;
      shape.setStyle({
        color: u && u.overdue ? "#b91c1c" : "#1d4ed8",
        weight: u && u.overdue ? 3 : 1.5,
        fillOpacity: Math.min(0.15 + n * 0.05, 0.6),
      });
    }
  }
}

function selectUnit(code) {
  const row = document.querySelector(`tr[data-unit="${CSS.escape(code)}"]`);
  if (row) {
    row.scrollIntoView({ block: "center" });
    row.classList.add("flash");
    setTimeout(() => row.classList.remove("flash"), 1500);
  }
}

// --- the drill-down and reassigning (改派) --------------------------------------------------------

async function showCase(caseId, outcome = "") {
  openCase = caseId;
  const dialog = $("case-dialog");
  $("case-title").textContent = `案件 ${caseId}`;
  $("case-body").replaceChildren(el("p", {}, "加载中…"));
  $("transfer-result").textContent = outcome;
  $("supervise-result").textContent = "";
  if (!dialog.open) dialog.showModal();
  const resp = await fetch(`/cases/${encodeURIComponent(caseId)}`, { credentials: "same-origin" });
  if (!resp.ok) {
    $("case-body").replaceChildren(el("p", { role: "alert" }, `无法读取案件（${resp.status}）`));
    return;
  }
  renderCase(await resp.json());
}

function renderCase(c) {
  const facts = [
    ["类别", categoryName(c.category)],
    ["状态", STATE_NAMES[c.state] || c.state],
    ["层级", `${TIER_NAMES[c.tier]}级（起始 ${TIER_NAMES[c.start_tier]}级）`],
    ["承办单位", unitName(c.unit)],
    ["位置", [c.street, c.community, c.grid, c.building].filter(Boolean).map(unitName).join(" / ")],
    ["期限状态", c.due ? DUE_NAMES[c.due] : "—"],
    ["响应期限", fmtTime(c.respond_by)],
    ["办结期限", fmtTime(c.resolve_by)],
    ["附议人数", c.supporters],
    ["督办", c.supervised ? "是" : "否"],
  ];
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v || "—"));
  const rows = c.timeline.map((s) =>
    el(
      "tr",
      {},
      el("td", {}, fmtTime(s.at)),
      el("td", {}, EVENT_NAMES[s.event] || s.event),
      el("td", {}, s.to_state ? STATE_NAMES[s.to_state] || s.to_state : "—"),
      el("td", {}, s.unit ? unitName(s.unit) : "—"),
      el("td", {}, s.handler_id || "—"),
      el("td", {}, (s.detail && s.detail.note) || ""),
    ),
  );
  const table = el(
    "table",
    { class: "timeline" },
    el("caption", {}, "办理过程"),
    el(
      "thead",
      {},
      el("tr", {}, ...["时间", "事件", "状态", "单位", "处置人", "说明"].map((h) => el("th", { scope: "col" }, h))),
    ),
    el("tbody", {}, ...rows),
  );
  $("case-body").replaceChildren(dl, table);
  const canTransfer = c.actions.includes("transfer");
  $("transfer-form").hidden = !canTransfer;
  if (canTransfer) fillTargets(c.unit);
  // 督办: an open case, to the unit that has it (the service checks it again)
  $("supervise-form").hidden = NOT_SUPERVISABLE.has(c.state);
  $("supervise-form").dataset.unit = c.unit;
}

const NOT_SUPERVISABLE = new Set(["resolved", "verifying", "triage"]);

async function supervise(event) {
  event.preventDefault();
  const result = $("supervise-result");
  const note = $("supervise-note").value.trim();
  if (!note) {
    result.textContent = "请填写督办意见";
    $("supervise-note").focus();
    return;
  }
  const by = $("supervise-by").value;
  const resp = await fetch(`/cases/${encodeURIComponent(openCase)}/supervise`, {
    method: "POST",
    credentials: "same-origin",
    headers: {
      "Content-Type": "application/json",
      "Idempotency-Key": crypto.randomUUID(),
      "X-Requested-With": "wangge-console",
    },
    body: JSON.stringify({ note, report_by: by ? shanghai(by) : null }),
  });
  if (resp.ok) {
    const sent = await resp.json();
    $("supervise-note").value = "";
    $("supervise-by").value = "";
    await showCase(openCase);
    $("supervise-result").textContent = `已向 ${unitName(sent.unit)} 发送第 ${sent.supervision} 次督办`;
  } else {
    result.textContent = `督办未成功：${await refusal(resp)}`;
  }
}

function unitName(code) {
  const u = units.get(code);
  return u ? u.name : code;
}
function categoryName(code) {
  return (board && board.categories && board.categories[code]) || code;
}

function fillTargets(current) {
  const select = $("transfer-target");
  const options = [...units.values()]
    .filter((u) => u.code !== current && u.level !== "building")
    .map((u) => el("option", { value: u.code }, `${u.name}（${LEVEL_NAMES[u.level] || u.level}）`));
  select.replaceChildren(...options);
}

async function transfer(event) {
  event.preventDefault();
  const result = $("transfer-result");
  const body = {
    action: "transfer",
    target_unit: $("transfer-target").value,
    note: $("transfer-note").value.trim() || null,
  };
  const resp = await actOn(openCase, body);
  if (resp.ok) {
    $("transfer-note").value = "";
    await showCase(openCase, `已改派至 ${unitName(body.target_unit)}`);
  } else {
    result.textContent = `改派未成功：${await refusal(resp)}`;
  }
}

// --- live updates ---------------------------------------------------------------------------------

function render(b) {
  board = b;
  renderTotals(b);
  renderList("overdue", b.warnings.overdue, "暂无超时案件");
  renderList("due-soon", b.warnings.due_soon, "暂无即将超时案件");
  renderList("recent", b.recent, "暂无在办案件");
  renderUnits(b);
  renderChart(b);
  renderMap(b);
  startFigures(b.unit);
  document.body.dataset.boardAt = b.now;
}

let mapAsked = false;

function connect() {
  const live = $("live");
  const source = new EventSource("/console/api/events?deltas=true");
  source.addEventListener("open", () => {
    live.textContent = "实时更新中";
    live.className = "live on";
  });
  source.addEventListener("board", (e) => {
    const b = JSON.parse(e.data);
    touched = new Set();
    for (const u of b.units) units.set(u.code, u);
    render(b);
    // the buildings' counts: with the map (first board), or again after a reconnect
    if (!mapAsked) {
      mapAsked = true;
      loadMap().catch((err) => {
        $("map").replaceChildren(el("p", { role: "alert" }, `地图加载失败：${err.message}`));
      });
    } else if (map) {
      fetchCounts()
        .then((tallies) => {
          takeCounts(tallies);
          renderMap(board);
        })
        .catch(() => {});
    }
  });
  source.addEventListener("delta", (e) => {
    if (!board) return;
    const d = JSON.parse(e.data);
    const rows = new Map(board.units.map((u, i) => [u.code, i]));
    for (const u of d.units) {
      units.set(u.code, u);
      touched.add(u.code);
      if (rows.has(u.code)) board.units[rows.get(u.code)] = u;
    }
    render({ ...board, now: d.now, totals: d.totals, warnings: d.warnings, recent: d.recent });
  });
  source.addEventListener("error", () => {
    live.textContent = "连接中断，正在重连…";
    live.className = "live off";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("transfer-form").addEventListener("submit", transfer);
  $("supervise-form").addEventListener("submit", supervise);
  $("case-close").addEventListener("click", () => $("case-dialog").close());
  $("case-dialog").addEventListener("close", () => {
    openCase = null;
  });
  window.addEventListener("resize", () => chart && chart.resize());
  connect();
});
