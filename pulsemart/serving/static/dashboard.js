// The pulsemart dashboard: reads the API key from the URL fragment (/dashboard#key=...; a
// fragment never reaches the server or its logs), fetches dashboard/data with it as X-API-Key
// and draws every chart as SVG. No library and nothing loaded from outside the API.
//
// Each chart container ([data-chart]) gets data-points="<marks drawn>" once drawn; the body
// gets data-ready="true" when the page is done, or data-error="<message>" when it failed.
// Panel titles are HTML headings (they wrap inside their panel); each SVG is drawn at its
// panel's width in pixels, so its text keeps the size the style sheet's --axis-size gives it.
"use strict";
(function () {
  const NS = "http://www.w3.org/2000/svg";
  // The width of the chart being drawn (its panel's content width) and the axis text's size.
  let W = 640;
  let AXIS = 11;

  function el(name, attrs, parent, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    if (parent) parent.appendChild(node);
    return node;
  }

  function html(name, parent, text, className) {
    const node = document.createElement(name);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    parent.appendChild(node);
    return node;
  }

  // 12345.678 -> "12,345.68": the same in every browser locale, so a test can read it.
  function fmt(value, decimals) {
    const fixed = Math.abs(value).toFixed(decimals);
    const [whole, frac] = fixed.split(".");
    const sign = value < 0 && Number(fixed) !== 0 ? "-" : "";
    return sign + whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",") + (frac ? "." + frac : "");
  }

  function short(value) {
    const a = Math.abs(value);
    if (a >= 1e6) return fmt(value / 1e6, 1) + "M";
    if (a >= 1e4) return fmt(value / 1e3, 0) + "k";
    return fmt(value, Number.isInteger(value) ? 0 : 2);
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  // How many characters of axis text fit in `px` (an average glyph is about 0.6 em wide).
  const charsIn = (px) => Math.max(4, Math.floor(px / (AXIS * 0.6)));

  // A zero-based axis with round steps covering [lo, hi].
  function niceScale(lo, hi, count) {
    lo = Math.min(0, lo);
    hi = Math.max(0, hi);
    if (hi === lo) hi = lo + 1;
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
    const start = Math.floor(lo / step) * step;
    const end = Math.ceil(hi / step) * step;
    const values = [];
    for (let i = 0; start + i * step <= end + step / 2; i++) values.push(+(start + i * step).toPrecision(12));
    return { lo: start, hi: end, values };
  }

  function title(parent, text) {
    return html("h2", parent, text);
  }

  function svgFrame(parent, text, height) {
    const svg = el("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": text }, parent);
    el("title", {}, svg, text);
    return svg;
  }

  function showMessage(parent, text, message) {
    title(parent, text);
    html("p", parent, message, "message");
    return 0;
  }

  // Vertical value axis with grid lines, for the line and column charts.
  function yAxis(svg, scale, y, left, right, name) {
    const g = el("g", { class: "axis" }, svg);
    for (const v of scale.values) {
      el("line", { x1: left, x2: right, y1: y(v), y2: y(v), class: "grid-line" }, g);
      el("text", { x: left - 6, y: y(v) + AXIS / 3, "text-anchor": "end" }, g, short(v));
    }
    el("line", { x1: left, x2: left, y1: y(scale.lo), y2: y(scale.hi) }, g);
    const mid = (y(scale.lo) + y(scale.hi)) / 2;
    if (name) el("text", { x: AXIS, y: mid, "text-anchor": "middle", transform: `rotate(-90 ${AXIS} ${mid})` }, g, name);
  }

  // Category labels under a horizontal axis, as many as fit without touching, and the axis's
  // name under them.
  function xLabels(svg, labels, x, bottom, left, right, name) {
    const g = el("g", { class: "axis" }, svg);
    el("line", { x1: left, x2: right, y1: bottom, y2: bottom }, g);
    const widest = Math.max(...labels.map((l) => l.length)) * AXIS * 0.6 + AXIS;
    const every = Math.ceil(labels.length / Math.max(1, Math.floor((right - left) / widest)));
    labels.forEach((label, i) => {
      if (i % every) return;
      el("line", { x1: x(i), x2: x(i), y1: bottom, y2: bottom + 4 }, g);
      el("text", { x: x(i), y: bottom + 4 + AXIS * 1.2, "text-anchor": "middle" }, g, label);
    });
    if (name) el("text", { x: (left + right) / 2, y: bottom + 4 + AXIS * 2.6, "text-anchor": "middle", class: "axis-name" }, g, name);
  }

  function lineChart(parent, text, series, yName) {
    const points = series.points;
    if (!points.length) return showMessage(parent, text, "No sales in the datamart yet.");
    title(parent, text);
    const H = 280, m = { l: 3 * AXIS + 40, r: 16, t: 12, b: 4 * AXIS };
    const svg = svgFrame(parent, text, H);
    const ys = points.map((p) => p.y);
    const s = niceScale(Math.min(...ys), Math.max(...ys), 5);
    const iw = W - m.l - m.r, ih = H - m.t - m.b;
    const inset = Math.min(40, iw / 8); // room for the first and last labels
    const x = (i) => m.l + (points.length === 1 ? iw / 2 : inset + (i * (iw - 2 * inset)) / (points.length - 1));
    const y = (v) => m.t + ih - ((v - s.lo) / (s.hi - s.lo)) * ih;
    yAxis(svg, s, y, m.l, W - m.r, yName);
    xLabels(svg, points.map((p) => p.label), x, m.t + ih, m.l, W - m.r, `${series.grain} (UTC)`);
    el("path", { class: "line", d: points.map((p, i) => `${i ? "L" : "M"}${x(i)},${y(p.y)}`).join("") }, svg);
    points.forEach((p, i) => {
      const dot = el("circle", { cx: x(i), cy: y(p.y), r: points.length > 60 ? 2 : 3.5, class: "dot" }, svg);
      el("title", {}, dot, `${p.x}: ${fmt(p.y, 2)}`);
    });
    parent.setAttribute("data-grain", series.grain);
    return points.length;
  }

  // Horizontal bars, one row per item, with the value at the end of each bar.
  function barChart(parent, text, bars, valueText, empty) {
    if (!bars.length) return showMessage(parent, text, empty);
    title(parent, text);
    const row = Math.round(AXIS * 2.2);
    const m = { l: Math.min(210, Math.round(W * 0.4)), r: Math.min(96, Math.round(W * 0.25)), t: 4, b: 2 * AXIS };
    const H = m.t + m.b + row * bars.length;
    const svg = svgFrame(parent, text, H);
    const values = bars.map((b) => b.value);
    const s = niceScale(Math.min(...values), Math.max(...values), W < 480 ? 2 : 4);
    const iw = W - m.l - m.r, bottom = m.t + row * bars.length;
    const x = (v) => m.l + ((v - s.lo) / (s.hi - s.lo)) * iw;
    const g = el("g", { class: "axis" }, svg);
    for (const v of s.values) {
      el("line", { x1: x(v), x2: x(v), y1: m.t, y2: bottom, class: "grid-line" }, g);
      el("text", { x: x(v), y: bottom + AXIS * 1.3, "text-anchor": "middle" }, g, short(v));
    }
    el("line", { x1: x(0), x2: x(0), y1: m.t, y2: bottom }, g);
    bars.forEach((b, i) => {
      const top = m.t + i * row, middle = top + row / 2 + AXIS / 3;
      const label = el("text", { x: m.l - 6, y: middle, "text-anchor": "end" }, svg, clip(b.label, charsIn(m.l - 8)));
      el("title", {}, label, b.label);
      const rect = el("rect", { x: Math.min(x(0), x(b.value)), y: top + 4, height: row - 8,
        width: Math.max(1, Math.abs(x(b.value) - x(0))), class: "s0" }, svg);
      el("title", {}, rect, `${b.label}: ${valueText(b)}`);
      el("text", { x: x(Math.max(0, b.value)) + 4, y: middle, class: "value" }, svg, valueText(b));
    });
    return bars.length;
  }

  function legend(svg, names, x, y) {
    const step = Math.max(...names.map((n) => n.length)) * AXIS * 0.6 + 2 * AXIS;
    names.forEach((name, i) => {
      el("rect", { x: x + i * step, y: y - AXIS + 2, width: AXIS - 1, height: AXIS - 1, class: `s${i}` }, svg);
      el("text", { x: x + i * step + AXIS + 3, y }, svg, name);
    });
  }

  // Columns per category: stacked (one total per category) or grouped (side by side).
  function columnChart(parent, text, labels, series, stacked, yName) {
    title(parent, text);
    const H = 300, m = { l: 3 * AXIS + 40, r: 16, t: 2.5 * AXIS, b: 3 * AXIS };
    const svg = svgFrame(parent, text, H);
    legend(svg, series.map((s) => s.name), m.l, AXIS + 2);
    const cell = (s, i) => (s.values[i] === null || s.values[i] === undefined ? null : s.values[i]);
    const all = labels.map((_, i) => series.map((s) => cell(s, i) || 0));
    const hi = stacked ? Math.max(...all.map((vs) => vs.reduce((a, b) => a + b, 0))) : Math.max(...all.flat());
    const lo = stacked ? 0 : Math.min(...all.flat());
    const s = niceScale(lo, hi, 5);
    const iw = W - m.l - m.r, ih = H - m.t - m.b, band = iw / labels.length;
    const x = (i) => m.l + band * (i + 0.5);
    const y = (v) => m.t + ih - ((v - s.lo) / (s.hi - s.lo)) * ih;
    yAxis(svg, s, y, m.l, W - m.r, yName);
    xLabels(svg, labels, x, y(0), m.l, W - m.r);
    let drawn = 0;
    labels.forEach((label, i) => {
      const width = stacked ? Math.min(56, band * 0.7) : Math.min(28, (band * 0.8) / series.length);
      let base = 0;
      series.forEach((ser, k) => {
        const v = cell(ser, i);
        if (v === null || (stacked && v === 0)) return;
        const left = stacked ? x(i) - width / 2 : x(i) - (width * series.length) / 2 + k * width;
        const from = stacked ? base : 0, to = from + v;
        const rect = el("rect", { x: left, y: y(Math.max(from, to)), width: Math.max(1, width - 1),
          height: Math.max(1, Math.abs(y(from) - y(to))), class: `s${k % 5}` }, svg);
        el("title", {}, rect, `${label} · ${ser.name}: ${fmt(v, Number.isInteger(v) ? 0 : 4)}`);
        if (stacked) base = to;
        drawn += 1;
      });
    });
    return drawn;
  }

  function table(parent, columns, rows) {
    const t = html("table", html("div", parent, undefined, "table-wrap"));
    const head = html("tr", html("thead", t));
    columns.forEach((c) => html("th", head, c.name, c.num ? "num" : ""));
    const body = html("tbody", t);
    return rows.map((r) => {
      const tr = html("tr", body);
      columns.forEach((c) => html("td", tr, c.text(r), c.num ? "num" : ""));
      return tr;
    });
  }

  function tablePanel(parent, text, columns, rows, empty) {
    if (!rows.length) return showMessage(parent, text, empty);
    title(parent, text);
    return table(parent, columns, rows).length;
  }

  function modelPerformance(parent, perf) {
    if (!perf.available) {
      parent.classList.add("no-model");
      return showMessage(parent, "Model performance", perf.message);
    }
    let drawn = 0;
    for (const model of perf.models) {
      const series = model.series.map((s) => ({ name: `${s.name} ${s.version}`, values: s.values }));
      const when = model.evaluated_at.slice(0, 16).replace("T", " ");
      const serving = model.served_version ? `serving v${model.served_version}` : "not served";
      drawn += columnChart(parent, `Model performance: ${model.model_name} (${serving}, evaluated ${when} UTC)`,
        model.metrics, series, false, "value");
    }
    return drawn;
  }

  // The experiment's figures: a point and its 95% interval per variant, one band per metric.
  const percent = (v) => `${fmt(100 * v, 2)}%`;
  const EXPERIMENT_METRICS = [
    { key: "ctr", name: "Click-through rate", text: percent, tick: (v) => `${fmt(100 * v, 1)}%` },
    { key: "conversion", name: "Conversion", text: percent, tick: (v) => `${fmt(100 * v, 1)}%` },
    { key: "revenue_per_exposure", name: "Revenue per exposure", text: (v) => fmt(v, 2), tick: short },
  ];

  function withInterval(figure, text) {
    if (figure.estimate === null) return "–";
    const interval = figure.low === null ? "" : ` (${text(figure.low)} – ${text(figure.high)})`;
    return text(figure.estimate) + interval;
  }

  function intervalChart(parent, text, variants) {
    const row = Math.round(AXIS * 2), band = 2 * AXIS + 4, axis = 2 * AXIS;
    const m = { l: Math.min(150, Math.round(W * 0.3)), r: 24 };
    const H = EXPERIMENT_METRICS.length * (band + row * variants.length + axis);
    const svg = svgFrame(parent, text, H);
    const iw = W - m.l - m.r;
    let top = 0, drawn = 0;
    for (const metric of EXPERIMENT_METRICS) {
      const figures = variants.map((v) => v[metric.key]);
      const ends = figures.flatMap((f) => [f.estimate, f.low, f.high]).filter((v) => v !== null);
      const s = niceScale(Math.min(0, ...ends), Math.max(0, ...ends), W < 480 ? 2 : 4);
      const x = (v) => m.l + ((v - s.lo) / (s.hi - s.lo)) * iw;
      el("text", { x: 4, y: top + AXIS * 1.4, class: "facet" }, svg, metric.name);
      const first = top + band, bottom = first + row * variants.length;
      const g = el("g", { class: "axis" }, svg);
      for (const v of s.values) {
        el("line", { x1: x(v), x2: x(v), y1: first, y2: bottom, class: "grid-line" }, g);
        el("text", { x: x(v), y: bottom + AXIS * 1.3, "text-anchor": "middle" }, g, metric.tick(v));
      }
      variants.forEach((variant, i) => {
        const f = figures[i], middle = first + i * row + row / 2;
        const name = variant.model_version ? `${variant.variant} v${variant.model_version}` : variant.variant;
        el("text", { x: m.l - 8, y: middle + AXIS / 3, "text-anchor": "end" }, svg, clip(name, charsIn(m.l - 12)));
        if (f.estimate === null) return;
        const mark = el("g", { class: `interval s${i % 5}` }, svg);
        el("title", {}, mark, `${variant.variant} · ${metric.name}: ${withInterval(f, metric.text)}`);
        if (f.low !== null) {
          el("line", { x1: x(f.low), x2: x(f.high), y1: middle, y2: middle }, mark);
          for (const end of [f.low, f.high]) el("line", { x1: x(end), x2: x(end), y1: middle - 5, y2: middle + 5 }, mark);
        }
        el("circle", { cx: x(f.estimate), cy: middle, r: 4 }, mark);
        drawn += 1;
      });
      top = bottom + axis;
    }
    return drawn;
  }

  function experiment(parent, panel) {
    const e = panel.experiment;
    title(parent, e ? `Experiment ${e.experiment_id}: ${e.model_name}, ${e.status}${e.shadow ? " (shadow)" : ""}` : "Experiment");
    if (e) {
      const shares = e.shares.map((a) => `${a.variant}${a.model_version ? ` v${a.model_version}` : ""} ${fmt(100 * a.share, 1)}%`);
      const ended = e.ended_at ? `, ended ${e.ended_at.slice(0, 16).replace("T", " ")} UTC` : "";
      const meta = html("p", parent, `Started ${e.started_at.slice(0, 16).replace("T", " ")} UTC${ended} · shares: ${shares.join(", ")}`, "meta");
      meta.setAttribute("data-experiment-id", String(e.experiment_id));
      meta.setAttribute("data-status", e.status);
    }
    if (!panel.available) {
      html("p", parent, panel.message, "message");
      return 0;
    }
    const drawn = intervalChart(parent, "Per variant: estimate and 95% interval", panel.variants);
    const rows = table(parent, [
      { name: "Variant", text: (v) => (v.model_version ? `${v.variant} v${v.model_version}` : v.variant) },
      { name: "Share", num: true, text: (v) => (v.share === null ? "–" : `${fmt(100 * v.share, 1)}%`) },
      { name: "Exposures", num: true, text: (v) => fmt(v.exposures, 0) },
      ...EXPERIMENT_METRICS.map((metric) => ({ name: metric.name, num: true, text: (v) => withInterval(v[metric.key], metric.text) })),
    ], panel.variants);
    rows.forEach((tr, i) => tr.setAttribute("data-variant", panel.variants[i].variant));
    return drawn;
  }

  const money = (b) => fmt(b.value, 2);
  const CHARTS = {
    "sales-over-time": (p, d) => lineChart(p, `Net revenue per ${d.sales_over_time.grain} (total ${fmt(d.totals.net_revenue, 2)})`,
      d.sales_over_time, "net revenue"),
    "sales-by-country": (p, d) => barChart(p, "Net revenue by country (top 10)", d.sales_by_country.bars,
      money, "No sales yet."),
    "funnel": (p, d) => barChart(p, "Funnel: sessions that…", d.funnel.steps,
      (b) => `${fmt(b.value, 0)} (${fmt(100 * b.share_of_sessions, 1)}%)`, "No sessions yet."),
    "top-products": (p, d) => barChart(p, "Top products by net revenue", d.top_products.bars, money,
      "No products sold yet."),
    "top-categories": (p, d) => barChart(p, "Top categories by net revenue", d.top_categories.bars, money,
      "No sales yet."),
    "dq-scorecard": (p, d) => d.dq_scorecard.days.length
      ? columnChart(p, `Data quality decisions per day (quarantine rate ${fmt(100 * d.dq_scorecard.quarantine_rate, 2)}%)`,
        d.dq_scorecard.days, d.dq_scorecard.series, true, "records")
      : showMessage(p, "Data quality decisions per day", "No quality decisions yet."),
    "dq-top-rules": (p, d) => tablePanel(p, "Rules that fired most (fixed or quarantined)",
      [{ name: "Rule", text: (r) => r.rule_id }, { name: "Records", num: true, text: (r) => fmt(r.records, 0) }],
      d.dq_scorecard.top_rules, "No rule has fixed or quarantined a record."),
    "model-performance": (p, d) => modelPerformance(p, d.model_performance),
    "experiment": (p, d) => experiment(p, d.experiment),
  };

  function charts() {
    return Array.from(document.querySelectorAll("[data-chart]"));
  }

  function setStatus(text, kind) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.className = kind || "";
  }

  function fail(text) {
    setStatus(text, "error");
    document.body.setAttribute("data-error", text);
  }

  function render(data) {
    for (const [name, value] of Object.entries(data.totals)) {
      const target = document.querySelector(`[data-total="${name}"]`);
      if (target) {
        target.textContent = typeof value === "number" ? fmt(value, name === "units_sold" ? 0 : 2) : value;
        target.setAttribute("data-value", String(value));
      }
    }
    const days = document.querySelector('[data-total="days"]');
    days.textContent = data.totals.days ? `${data.totals.days} (${data.totals.first_day} – ${data.totals.last_day})` : "0";
    AXIS = parseFloat(getComputedStyle(document.documentElement).getPropertyValue("--axis-size")) || 11;
    for (const container of charts()) {
      container.replaceChildren();
      const style = getComputedStyle(container);
      const inner = container.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
      W = Math.max(240, Math.floor(inner)) || 640;
      const draw = CHARTS[container.getAttribute("data-chart")];
      container.setAttribute("data-points", String(draw ? draw(container, data) : 0));
    }
  }

  async function main() {
    const key = new URLSearchParams(location.hash.replace(/^#/, "")).get("key");
    let response;
    try {
      response = await fetch("dashboard/data", { headers: key ? { "X-API-Key": key } : {}, cache: "no-store" });
    } catch (err) {
      return fail(`Could not reach the pulsemart API: ${err.message}`);
    }
    if (response.status === 401) {
      return fail("API key missing: open this page as /dashboard#key=<PULSEMART_API_KEY> " +
        "(`pulsemart up` prints the link).");
    }
    if (response.status === 403) {
      return fail("API key rejected (403): the key after #key= is not this server's PULSEMART_API_KEY.");
    }
    if (!response.ok) {
      const body = await response.text();
      return fail(`The API answered ${response.status}: ${clip(body, 300)}`);
    }
    const data = await response.json();
    if (!data.available) {
      setStatus(data.message, "notice");
      charts().forEach((c) => c.setAttribute("data-points", "0"));
      document.body.setAttribute("data-available", "false");
    } else {
      render(data);
      setStatus(`Data as of ${data.generated_at}.`);
      document.body.setAttribute("data-available", "true");
      // Charts are drawn at their panel's width: draw them again when it changes.
      let pending;
      window.addEventListener("resize", () => {
        clearTimeout(pending);
        pending = setTimeout(() => render(data), 150);
      });
    }
    document.body.setAttribute("data-ready", "true");
  }

  // A new key typed into the fragment does not reload the page by itself.
  window.addEventListener("hashchange", () => location.reload());
  main().catch((err) => fail(`Drawing the dashboard failed: ${err && err.message ? err.message : err}`));
})();
