// The board's figures (考核指标): the rates a unit is judged by, month by month and per unit below
// it, each with its numerator and denominator and whether the month is frozen (正式数据) or still
// provisional (暂定); the ranking of the units below; the hot issues (高频问题) with their trend.
// The figures are feedback's (GET <feedback>/units/{code}/trends): the page reads them from the
// browser with its session cookie (feedback allows the board's origin: WANGGE_CORS_ORIGINS), at
// the address dispatch puts in the page's <meta name="wangge-feedback"> (WANGGE_CONSOLE_FEEDBACK_URL).
import * as echarts from "echarts/core";
import { BarChart, LineChart } from "echarts/charts";
import { GridComponent, LegendComponent, TooltipComponent } from "echarts/components";
import { SVGRenderer } from "echarts/renderers";
import { $, LEVEL_NAMES, el, fmtTime } from "./common.js";

echarts.use([BarChart, LineChart, GridComponent, LegendComponent, TooltipComponent, SVGRenderer]);

export const RATE_NAMES = {
  response_rate: "响应率",
  on_time_resolution_rate: "按期办结率",
  resolution_rate: "解决率",
  satisfaction_rate: "满意率",
  reopen_rate: "重办率",
  kept_in_grid_rate: "小事不出网格率",
  kept_in_community_rate: "大事不出社区率",
  escalation_rate: "上报率",
};
const RATES = Object.keys(RATE_NAMES);
const MAIN = RATES.slice(0, 4); // 三率 and satisfaction, shown at first; the others in the legend
const COLOURS = ["#1d4ed8", "#0f766e", "#b45309", "#7e22ce", "#be123c", "#4d7c0f", "#0e7490", "#6b7280"];
const STATUS_NAMES = { frozen: "已冻结", provisional: "暂定" };
const MONTHS = 6;
const REFRESH_MS = 60_000;
const INK = "#1f2933";

let base = null; // feedback's address, from the page
let home = null; // the command centre's unit (the board's)
let unit = null; // the unit whose figures are shown
let data = null; // the last trends answer
let month = null; // the month of the per-unit chart and the ranking
const charts = {};

export const pct = (r) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(1)}%`);
// "75.0%（3/4）": a rate with the numerator and denominator it is made of
export const ratio = (m) => (m ? `${pct(m.rate)}（${m.numerator}/${m.denominator}）` : "—");

function chart(id) {
  if (!charts[id]) charts[id] = echarts.init($(id), null, { renderer: "svg" });
  return charts[id];
}

function statusText(f) {
  if (f.status === "frozen") return `${f.period} 已冻结（正式数据，${fmtTime(f.frozen_at)}）`;
  return `${f.period} 暂定${f.freezes_at ? `（${fmtTime(f.freezes_at)} 冻结）` : ""}`;
}

// --- the unit's rates month by month --------------------------------------------------------------

function renderTrend(d) {
  const own = d.figures.months;
  const selected = Object.fromEntries(RATES.map((k) => [RATE_NAMES[k], MAIN.includes(k)]));
  chart("rates-trend").setOption(
    {
      aria: { enabled: true },
      tooltip: {
        trigger: "axis",
        formatter: (items) => {
          const f = own[items[0].dataIndex];
          const lines = items.map((i) => `${i.marker}${i.seriesName} ${ratio(f.metrics[RATES[i.seriesIndex]])}`);
          return [`${f.period}（${STATUS_NAMES[f.status]}）`, ...lines].join("<br>");
        },
      },
      legend: { top: 0, data: RATES.map((k) => RATE_NAMES[k]), selected, textStyle: { color: INK } },
      grid: { left: 48, right: 16, top: 64, bottom: 32 },
      xAxis: {
        type: "category",
        data: own.map((f) => (f.status === "frozen" ? f.period : `${f.period}（暂定）`)),
        axisLabel: { color: INK, interval: 0 },
      },
      yAxis: { type: "value", min: 0, max: 1, axisLabel: { color: INK, formatter: (v) => `${v * 100}%` } },
      series: RATES.map((k, i) => ({
        name: RATE_NAMES[k],
        type: "line",
        color: COLOURS[i],
        connectNulls: false,
        data: own.map((f) => f.metrics[k].rate),
      })),
    },
    true,
  );
  $("rates-trend").setAttribute(
    "aria-label",
    `${d.unit.name}各月指标：` +
      own.map((f) => `${f.period} ${MAIN.map((k) => `${RATE_NAMES[k]} ${pct(f.metrics[k].rate)}`).join("、")}`).join("；"),
  );
  const rows = own.map((f) =>
    el(
      "tr",
      { "data-month": f.period, "data-status": f.status },
      el("th", { scope: "row" }, f.period),
      el("td", {}, STATUS_NAMES[f.status]),
      el("td", {}, f.metrics.received),
      ...RATES.map((k) => el("td", { "data-rate": k }, ratio(f.metrics[k]))),
    ),
  );
  $("trend-body").replaceChildren(...rows);
}

// --- the units below it, in one month ----------------------------------------------------------

function monthIndex(d) {
  const i = d.months.indexOf(month);
  return i < 0 ? d.months.length - 1 : i;
}

function renderUnitsChart(d) {
  const i = monthIndex(d);
  const kids = d.children;
  chart("rates-units").setOption(
    {
      aria: { enabled: true },
      tooltip: {
        trigger: "axis",
        formatter: (items) => {
          const f = kids[items[0].dataIndex].months[i];
          const name = kids[items[0].dataIndex].unit.name;
          const lines = items.map((it) => `${it.marker}${it.seriesName} ${ratio(f.metrics[MAIN[it.seriesIndex]])}`);
          return [`${name} · ${f.period}（${STATUS_NAMES[f.status]}）`, ...lines].join("<br>");
        },
      },
      legend: { top: 0, data: MAIN.map((k) => RATE_NAMES[k]), textStyle: { color: INK } },
      grid: { left: 48, right: 16, top: 36, bottom: 32 },
      xAxis: { type: "category", data: kids.map((k) => k.unit.name), axisLabel: { color: INK } },
      yAxis: { type: "value", min: 0, max: 1, axisLabel: { color: INK, formatter: (v) => `${v * 100}%` } },
      series: MAIN.map((k, j) => ({
        name: RATE_NAMES[k],
        type: "bar",
        color: COLOURS[j],
        data: kids.map((u) => u.months[i].metrics[k].rate),
      })),
    },
    true,
  );
  $("rates-units").setAttribute(
    "aria-label",
    `${d.months[i]}各单位指标：` +
      kids
        .map((u) => `${u.unit.name} ${MAIN.map((k) => `${RATE_NAMES[k]} ${pct(u.months[i].metrics[k].rate)}`).join("、")}`)
        .join("；"),
  );
}

// --- the ranking (排名) -----------------------------------------------------------------------------

function renderRanking(d) {
  const i = monthIndex(d);
  const label = d.months[i];
  const byCode = new Map(d.children.map((u) => [u.unit.code, u.months[i]]));
  const rows = (d.ranking[label] || []).map((r) => {
    const f = byCode.get(r.code);
    return el(
      "tr",
      { "data-rank-unit": r.code },
      el("td", {}, r.rank),
      el("th", { scope: "row" }, r.name),
      el("td", {}, r.score === null ? "—" : r.score.toFixed(1)),
      el("td", {}, r.received),
      ...RATES.map((k) => el("td", { "data-rate": k }, ratio(f && f.metrics[k]))),
      el("td", {}, f ? STATUS_NAMES[f.status] : "—"),
    );
  });
  $("ranking-body").replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colSpan: RATES.length + 5 }, "无下级单位"))]),
  );
  $("ranking-caption").textContent = `${label} 下级单位排名（综合得分）`;
  const f = d.figures.months[i];
  $("figures-status").textContent = statusText(f);
  $("figures-status").dataset.status = f.status;
}

// --- hot issues (高频问题) and their trend -------------------------------------------------------

function renderHot(d) {
  const issues = d.hot_issues;
  chart("hot-chart").setOption(
    {
      aria: { enabled: true },
      tooltip: { trigger: "axis" },
      legend: { top: 0, data: issues.map((h) => h.category_name), textStyle: { color: INK } },
      grid: { left: 40, right: 16, top: 36, bottom: 32 },
      xAxis: { type: "category", data: d.months, axisLabel: { color: INK, interval: 0 } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: INK } },
      series: issues.map((h, j) => ({ name: h.category_name, type: "line", color: COLOURS[j % COLOURS.length], data: h.counts })),
    },
    true,
  );
  $("hot-chart").setAttribute(
    "aria-label",
    "高频问题各月案件数：" + issues.map((h) => `${h.category_name} ${h.counts.join("、")}`).join("；"),
  );
  $("hot-head").replaceChildren(
    el("th", { scope: "col" }, "问题类别"),
    ...d.months.map((m) => el("th", { scope: "col" }, m)),
    el("th", { scope: "col" }, "合计"),
  );
  const rows = issues.map((h) =>
    el(
      "tr",
      { "data-category": h.category },
      el("th", { scope: "row" }, h.category_name),
      ...h.counts.map((n) => el("td", {}, n)),
      el("td", {}, h.total),
    ),
  );
  $("hot-body").replaceChildren(
    ...(rows.length ? rows : [el("tr", {}, el("td", { colSpan: d.months.length + 2 }, "暂无案件"))]),
  );
}

// --- loading -----------------------------------------------------------------------------------------

function fillControls(d) {
  const units = [d.unit, ...d.children.map((c) => c.unit)];
  const known = new Map([...($("figures-unit").options || [])].map((o) => [o.value, o.textContent]));
  if (home) known.set(home.code, home.name);
  for (const u of units) known.set(u.code, `${u.name}（${LEVEL_NAMES[u.level] || u.level}）`);
  $("figures-unit").replaceChildren(
    ...[...known].map(([code, name]) => el("option", { value: code, selected: code === d.unit.code }, name)),
  );
  if (!d.months.includes(month)) month = d.months[d.months.length - 1];
  $("figures-month").replaceChildren(
    ...d.months.map((m) => el("option", { value: m, selected: m === month }, m)),
  );
}

function render(d) {
  data = d;
  fillControls(d);
  $("figures-title").textContent = `${d.unit.name} 考核指标`;
  renderTrend(d);
  renderUnitsChart(d);
  renderRanking(d);
  renderHot(d);
  document.body.dataset.figuresAt = new Date().toISOString();
  document.body.dataset.figuresUnit = d.unit.code;
}

async function load() {
  const note = $("figures-note");
  const resp = await fetch(`${base}/units/${encodeURIComponent(unit)}/trends?months=${MONTHS}`, {
    credentials: "include",
  });
  if (!resp.ok) {
    note.textContent = `指标读取失败（${resp.status}）`;
    return;
  }
  note.textContent = "";
  render(await resp.json());
}

function reload() {
  load().catch((err) => {
    $("figures-note").textContent = `指标读取失败：${err.message}`;
  });
}

// Called with the board's unit when the board first arrives.
export function startFigures(boardUnit) {
  if (home) return;
  home = boardUnit;
  unit = boardUnit.code;
  base = (document.querySelector('meta[name="wangge-feedback"]') || {}).content || "";
  if (boardUnit.level === "unknown") {
    // a unit the registry does not (yet) hold: feedback has no figures of it either
    $("figures-note").textContent = `登记册中尚无单位 ${boardUnit.code}，暂无考核指标。`;
    return;
  }
  if (!base) {
    $("figures-note").textContent = "未配置指标服务地址（WANGGE_CONSOLE_FEEDBACK_URL），无法显示考核指标。";
    return;
  }
  base = base.replace(/\/+$/, "");
  $("figures-unit").addEventListener("change", (e) => {
    unit = e.target.value;
    reload();
  });
  $("figures-month").addEventListener("change", (e) => {
    month = e.target.value;
    if (data) {
      renderUnitsChart(data);
      renderRanking(data);
    }
  });
  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.resize()));
  reload();
  setInterval(reload, REFRESH_MS);
}
