// The operations dashboard: a page of the gateway that reads the public API with the
// token the viewer enters once per browser session (sessionStorage, never the URL).
// Everything is drawn here as DOM and SVG: no inline script or style, no CDN, no build
// step, so it runs under a strict Content-Security-Policy. Views: #/overview,
// #/disputes?filters, #/sellers, #/case/<id>.
"use strict";
(function () {
  const TOKEN_KEY = "disputes-dashboard-token";
  const REFRESH_MS = 15000;
  const PAGE_SIZE = 20;
  const SVG = "http://www.w3.org/2000/svg";
  const OUTCOME_COLOURS = {
    refunded_full: "#2f6fde", refunded_partial: "#7aa5f0", replacement: "#0f9d8a",
    seller_favoured: "#c2410c", withdrawn: "#9aa5b1", buyer_lapsed: "#d4a017",
    return_not_shipped: "#8b5cf6", chargeback: "#be185d",
  };
  const SPARE_COLOURS = ["#64748b", "#0891b2", "#65a30d", "#a16207"]; // outcomes added later
  const REFUNDED = ["refunded_full", "refunded_partial"];
  const $ = (id) => document.getElementById(id);
  let machine = null; // GET /v1/state-machine, once
  let timer = null;
  let pages = [null]; // the cursors of the pages seen, for "newer"

  // --- the token -----------------------------------------------------------------

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

  function claims(value) {
    try {
      const part = value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
      return JSON.parse(atob(part));
    } catch (e) { return {}; }
  }

  class Unauthorized extends Error {}

  async function get(path) {
    const answer = await fetch(path, {
      headers: { "Authorization": "Bearer " + token(), "Accept": "application/json" },
      cache: "no-store",
    });
    let body = null;
    try { body = await answer.json(); } catch (e) { body = null; }
    if (answer.status === 401) { throw new Unauthorized((body && body.detail) || "token refused"); }
    if (!answer.ok) {
      const detail = body && (body.detail || body.title) ? (body.detail || body.title) : answer.statusText;
      throw new Error(path.split("?")[0] + ": " + answer.status + " " + detail);
    }
    return body;
  }

  // --- small DOM helpers -------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") { node.className = v; } else if (k.startsWith("data-")) { node.setAttribute(k, v); } else { node[k] = v; }
    }
    for (const child of children) {
      if (child === null || child === undefined) { continue; }
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) { node.setAttribute(k, String(v)); }
    for (const child of children) {
      if (child === null || child === undefined) { continue; }
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fill(tableId, rows, empty) {
    const table = $(tableId);
    const body = table.tBodies[0];
    body.replaceChildren();
    if (rows.length === 0) {
      const td = el("td", { class: "muted", colSpan: table.tHead.rows[0].cells.length }, empty);
      body.append(el("tr", { class: "empty" }, td));
      return;
    }
    for (const row of rows) {
      const tr = el("tr");
      for (const cell of row.cells) {
        tr.append(cell instanceof Node && cell.tagName === "TD" ? cell : el("td", {}, cell));
      }
      if (row.href) {
        tr.className = "link";
        tr.dataset.href = row.href;
        tr.addEventListener("click", () => { location.hash = row.href; });
      }
      body.append(tr);
    }
  }

  function when(iso) {
    if (!iso) { return ""; }
    return new Date(iso).toISOString().slice(0, 16).replace("T", " ") + "Z";
  }

  function duration(ms) {
    let s = Math.abs(ms) / 1000;
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60);
    return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m + "m";
  }

  // Time left until `iso` on the service's clock (`now`: its time, e.g. a stats answer's
  // as_of; the sandbox may run ahead of this browser's clock).
  function timeLeft(iso, now) {
    const ms = Date.parse(iso) - (now || Date.now());
    return el("td", { class: ms < 0 ? "overdue" : "" }, (ms < 0 ? "overdue " : "") + duration(ms) + (ms < 0 ? "" : " left"));
  }

  // The service's clock runs ahead of this browser's in the sandbox: every stats answer
  // with `as_of` says by how much.
  let clockSkew = 0;
  function serviceNow() { return Date.now() + clockSkew; }
  function sawServiceTime(iso) { if (iso) { clockSkew = Date.parse(iso) - Date.now(); } }

  function money(m) { return m ? (m.amount / 100).toFixed(2) + " " + m.currency : ""; }

  function pct(x) { return x === null || x === undefined ? "-" : Math.round(x * 100) + "%"; }

  function status(text, isError) {
    $("status").textContent = text;
    $("status").className = isError ? "error" : "muted";
  }

  function lagText(lag) {
    if (!lag) { return ""; }
    return lag.events === 0 ? "projection up to date" :
      "projection " + lag.events + " events / " + lag.seconds.toFixed(1) + " s behind";
  }

  // --- charts (SVG) ----------------------------------------------------------------

  function days(count, lastIso) {
    const out = [];
    const last = Date.parse(lastIso + "T00:00:00Z");
    for (let i = count - 1; i >= 0; i--) { out.push(new Date(last - i * 86400000).toISOString().slice(0, 10)); }
    return out;
  }

  // The top of a count axis and its tick step: whole numbers, four ticks at most.
  function countAxis(max) {
    const step = Math.max(1, Math.ceil(max / 4));
    return { top: step * Math.max(1, Math.ceil(max / step)), step: step };
  }

  // series: [{key, colour, values: [..per x..], group}]: the series of one group are
  // stacked in one bar; each group has its own bar side by side within a label.
  function barChart(containerId, labels, series, opts) {
    const W = opts.width || 760, H = opts.height || 220, L = 36, B = 34, T = 10, R = 10;
    const label = opts.label || ((day) => day.slice(5));
    const width = W - L - R, height = H - T - B;
    const groups = [...new Set(series.map((s) => s.group || ""))];
    const stacks = labels.map((_, i) => groups.map((g) => series.filter((s) => (s.group || "") === g).reduce((a, s) => a + (s.values[i] || 0), 0)));
    const axis = countAxis(Math.max(1, ...stacks.flat()));
    const max = axis.top;
    const step = width / labels.length;
    const bar = Math.max(2, (step * 0.8) / groups.length);
    const legendRows = opts.legend ? Math.ceil(series.reduce((a, s) => a + 24 + s.key.length * 6.5, 0) / (W - L - R)) : 0;
    const root = svg("svg", { viewBox: "0 0 " + W + " " + (H + legendRows * 16), role: "img", "aria-label": opts.title, "data-chart": containerId });
    root.append(svg("title", {}, opts.title));
    for (let v = 0; v <= max; v += axis.step) {
      const y = T + height - (height * v) / max;
      root.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y, y2: y }));
      root.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end" }, v));
    }
    labels.forEach((day, i) => {
      groups.forEach((g, gi) => {
        let y = T + height;
        const x = L + i * step + step * 0.1 + gi * bar;
        for (const s of series.filter((t) => (t.group || "") === g)) {
          const v = s.values[i] || 0;
          if (!v) { continue; }
          const h = (height * v) / max;
          y -= h;
          root.append(svg("rect", { x: x, y: y, width: Math.max(1, bar - 1), height: h, fill: s.colour, "data-series": s.key, "data-day": day },
            svg("title", {}, day + " " + s.key + ": " + v)));
        }
      });
      if (labels.length <= 12 || i % Math.ceil(labels.length / 10) === 0) {
        root.append(svg("text", { x: L + i * step + step / 2, y: H - B + 14, "text-anchor": "middle" }, label(labels[i])));
      }
    });
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: T + height, y2: T + height }));
    if (opts.legend) {
      let x = L, y = H - 4;
      const legend = svg("g", { class: "legend" });
      for (const s of series) {
        const w = 24 + s.key.length * 6.5;
        if (x + w > W - R) { x = L; y += 16; }
        legend.append(svg("rect", { x: x, y: y, width: 10, height: 10, fill: s.colour }));
        legend.append(svg("text", { x: x + 14, y: y + 9 }, s.key));
        x += w;
      }
      root.append(legend);
    }
    $(containerId).replaceChildren(root);
  }

  function lineChart(containerId, labels, values, title) {
    const W = 760, H = 200, L = 36, B = 30, T = 10, R = 10;
    const width = W - L - R, height = H - T - B;
    const step = width / Math.max(1, labels.length - 1);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title, "data-chart": containerId });
    root.append(svg("title", {}, title));
    for (let g = 0; g <= 4; g++) {
      const y = T + height - (height * g) / 4;
      root.append(svg("line", { class: "grid-line", x1: L, x2: W - R, y1: y, y2: y }));
      root.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end" }, g * 25 + "%"));
    }
    const points = [];
    labels.forEach((label, i) => {
      if (i % Math.ceil(labels.length / 10) === 0) {
        root.append(svg("text", { x: L + i * step, y: H - B + 14, "text-anchor": "middle" }, label.slice(5)));
      }
      if (values[i] === null) { return; }
      const x = L + i * step, y = T + height - height * values[i];
      points.push(x + "," + y);
      root.append(svg("circle", { class: "dot", cx: x, cy: y, r: 3.5, "data-day": label }, svg("title", {}, label + ": " + pct(values[i]))));
    });
    if (points.length > 1) { root.insertBefore(svg("polyline", { class: "line", points: points.join(" ") }), root.firstChild.nextSibling); }
    if (points.length === 0) { root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "muted" }, "no disputes closed in these days")); }
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: T + height, y2: T + height }));
    $(containerId).replaceChildren(root);
  }

  // --- the lifecycle diagram (SVG from GET /v1/state-machine) ---------------------------

  function layers(sm) {
    const depth = { [sm.initial]: 0 };
    const queue = [sm.initial];
    while (queue.length) {
      const s = queue.shift();
      for (const t of sm.transitions) {
        if (t.source === s && !(t.dest in depth)) { depth[t.dest] = depth[s] + 1; queue.push(t.dest); }
      }
    }
    const deepest = Math.max(0, ...Object.values(depth));
    for (const s of sm.states) {
      if (sm.terminal.includes(s)) { depth[s] = deepest + 1; } else if (!(s in depth)) { depth[s] = deepest; }
    }
    return depth;
  }

  function diagram(sm, current, visited, taken) {
    const depth = layers(sm);
    const columns = {};
    for (const s of sm.states) { (columns[depth[s]] = columns[depth[s]] || []).push(s); }
    const NW = 150, NH = 38, GX = 80, GY = 34, P = 20, BACK = 36;
    const ncols = Object.keys(columns).length;
    const tallest = Math.max(...Object.values(columns).map((c) => c.length));
    const W = P * 2 + ncols * NW + (ncols - 1) * GX, H = P * 2 + tallest * NH + (tallest - 1) * GY + BACK;
    const at = {};
    for (const [col, states] of Object.entries(columns)) {
      const offset = (H - BACK - (states.length * NH + (states.length - 1) * GY)) / 2;
      states.forEach((s, i) => { at[s] = { x: P + col * (NW + GX), y: offset + i * (NH + GY) }; });
    }
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, id: "lifecycle", role: "img", "aria-label": "dispute lifecycle, current state " + current });
    root.append(svg("title", {}, "Dispute lifecycle"));
    const defs = svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      svg("path", { class: "arrow", d: "M0,0 L10,5 L0,10 z" })));
    root.append(defs);
    const seen = new Set();
    for (const t of sm.transitions) {
      if (t.source === t.dest) { continue; }
      const key = t.source + ">" + t.dest;
      if (seen.has(key)) { continue; }
      seen.add(key);
      const a = at[t.source], b = at[t.dest];
      let d;
      if (b.x > a.x) { // forward: right side to left side
        const x1 = a.x + NW, y1 = a.y + NH / 2, x2 = b.x, y2 = b.y + NH / 2, bend = (x1 + x2) / 2;
        d = "M" + x1 + "," + y1 + " C" + bend + "," + y1 + " " + bend + "," + y2 + " " + x2 + "," + y2;
      } else if (b.x === a.x) { // same column: straight, between the facing sides
        const down = b.y > a.y, x = a.x + NW / 2 + (down ? -12 : 12);
        d = "M" + x + "," + (down ? a.y + NH : a.y) + " L" + x + "," + (down ? b.y : b.y + NH);
      } else { // backward: under every node
        const x1 = a.x + NW / 2 + 10, x2 = b.x + NW / 2 - 10, low = H - BACK / 2;
        d = "M" + x1 + "," + (a.y + NH) + " C" + x1 + "," + low + " " + x2 + "," + low + " " + x2 + "," + (b.y + NH);
      }
      const triggers = sm.transitions.filter((u) => u.source === t.source && u.dest === t.dest);
      const timeoutOnly = triggers.every((u) => u.action === null);
      const cls = "edge" + (timeoutOnly ? " timeout" : "") + (taken.has(key) ? " taken" : "");
      root.append(svg("path", { class: cls, d: d, "marker-end": "url(#arrow)", "data-edge": key },
        svg("title", {}, t.source + " \u2192 " + t.dest + ": " + triggers.map((u) => u.action || u.trigger + " (time-out)").join(", "))));
    }
    for (const s of sm.states) {
      const cls = "node" + (s === current ? " current" : visited.has(s) ? " visited" : "") + (sm.terminal.includes(s) ? " terminal" : "");
      root.append(svg("g", { class: cls, "data-state": s, transform: "translate(" + at[s].x + "," + at[s].y + ")" },
        svg("rect", { width: NW, height: NH, rx: 8 }),
        svg("text", { x: NW / 2, y: NH / 2 + 4, "text-anchor": "middle" }, s.replace(/_/g, " "))));
    }
    return root;
  }

  // --- views ------------------------------------------------------------------------

  async function stateMachine() {
    if (!machine) { machine = await get("/v1/state-machine"); }
    return machine;
  }

  async function showOverview() {
    const [counts, daily, breaches, due] = await Promise.all([
      get("/v1/stats/counts"), get("/v1/stats/daily"), get("/v1/stats/sla-breaches"), get("/v1/stats/deadlines-due"),
    ]);
    const sm = await stateMachine();
    sawServiceTime(due.as_of);
    $("total").textContent = counts.total;
    $("open-count").textContent = counts.total - (counts.by_state.closed || 0);
    $("breach-count").textContent = breaches.data.length;
    $("due-count").textContent = due.data.length;
    $("lag-figure").textContent = counts.lag.events + " ev / " + counts.lag.seconds.toFixed(0) + " s";
    barChart("chart-states", sm.states, [{ key: "disputes", colour: "#2f6fde", values: sm.states.map((s) => counts.by_state[s] || 0) }],
      { title: "Disputes by state", label: (s) => s.replace(/_/g, " ") });
    const labels = days(30, daily.to);
    const byDay = Object.fromEntries(daily.data.map((d) => [d.day, d]));
    const opened = labels.map((d) => (byDay[d] ? Object.values(byDay[d].opened).reduce((a, b) => a + b, 0) : 0));
    const seen = daily.data.flatMap((d) => Object.keys(d.closed));
    const outcomes = [...new Set([...Object.keys(OUTCOME_COLOURS), ...seen])];
    outcomes.forEach((o, i) => { OUTCOME_COLOURS[o] = OUTCOME_COLOURS[o] || SPARE_COLOURS[i % SPARE_COLOURS.length]; });
    // two bars a day: opened, and closed stacked by outcome
    barChart("chart-daily", labels, [
      { key: "opened", colour: "#cbd5e1", values: opened, group: "opened" },
      ...outcomes.map((o) => ({ key: o, colour: OUTCOME_COLOURS[o], group: "closed", values: labels.map((d) => (byDay[d] && byDay[d].closed[o]) || 0) })),
    ], { title: "Disputes opened and closed per day, by outcome", legend: true, width: 1200, height: 240 });
    const rate = labels.map((d) => {
      const closed = byDay[d] ? Object.values(byDay[d].closed).reduce((a, b) => a + b, 0) : 0;
      return closed ? REFUNDED.reduce((a, o) => a + (byDay[d].closed[o] || 0), 0) / closed : null;
    });
    lineChart("chart-refund-rate", labels, rate, "Refund rate of the disputes closed each day");
    const lapsedOn = {};
    for (const b of breaches.data) { const day = b.due_at.slice(0, 10); lapsedOn[day] = (lapsedOn[day] || 0) + 1; }
    const breachDays = days(30, breaches.as_of.slice(0, 10));
    barChart("chart-breaches", breachDays, [{ key: "past SLA", colour: "#c2410c", values: breachDays.map((d) => lapsedOn[d] || 0) }],
      { title: "Reviews past their SLA, by the day it lapsed" });
    const now = serviceNow();
    fill("deadlines", due.data.map((d) => ({
      href: "#/case/" + d.dispute_id,
      cells: [d.dispute_id.slice(0, 8), d.kind, when(d.due_at), timeLeft(d.due_at, now), d.state, d.seller_id],
    })), "nothing due in the next 24 hours");
    return counts.lag;
  }

  function filtersFromHash(query) {
    const params = new URLSearchParams(query);
    const form = $("filters");
    for (const input of form.elements) {
      if (input.name) { input.value = params.get(input.name) || ""; }
    }
    return params;
  }

  async function showDisputes(query) {
    const sm = await stateMachine();
    const select = $("filter-state");
    if (select.options.length === 1) {
      for (const s of sm.states) { select.append(el("option", { value: s }, s)); }
    }
    const params = filtersFromHash(query);
    const api = new URLSearchParams({ limit: String(PAGE_SIZE) });
    for (const [k, v] of params) {
      if (!v || k === "page") { continue; }
      api.set(k, k.startsWith("opened_") ? v + "T00:00:00Z" : v);
    }
    const page = Number(params.get("page") || 0);
    if (page > 0 && pages[page]) { api.set("cursor", pages[page]); }
    const list = await get("/v1/disputes?" + api.toString());
    pages[page + 1] = list.next_cursor;
    fill("disputes", list.data.map((d) => ({
      href: "#/case/" + d.id,
      cells: [d.id.slice(0, 8), el("td", {}, el("span", { class: "badge" }, d.state)), d.reason, d.seller_id, d.buyer_id, money(d.amount), when(d.opened_at),
        d.next_deadline ? d.next_deadline.kind + ", " + when(d.next_deadline.due_at) : (d.outcome ? "closed: " + d.outcome : "")],
    })), "no disputes match");
    $("page-label").textContent = "page " + (page + 1) + " \u00b7 " + list.data.length + " shown";
    $("page-prev").disabled = page === 0;
    $("page-next").disabled = !list.next_cursor;
    $("page-prev").dataset.page = String(page - 1);
    $("page-next").dataset.page = String(page + 1);
    return list.lag;
  }

  async function showSellers() {
    const sellers = await get("/v1/stats/sellers");
    const rows = sellers.data.slice().sort((a, b) => (b.dispute_rate || 0) - (a.dispute_rate || 0) || b.disputes - a.disputes || a.seller_id.localeCompare(b.seller_id));
    fill("sellers", rows.map((s) => ({
      href: "#/disputes?seller_id=" + encodeURIComponent(s.seller_id),
      cells: [s.seller_id, s.orders, s.disputes, pct(s.dispute_rate), s.open,
        Object.entries(s.by_reason).sort((a, b) => b[1] - a[1]).map(([r, n]) => r + " " + n + (s.reason_mix && s.reason_mix[r] !== undefined ? " (" + pct(s.reason_mix[r]) + ")" : "")).join(", "),
        s.median_response_seconds === null ? "-" : (s.median_response_seconds / 3600).toFixed(1) + " h",
        s.timeout_losses, pct(s.refund_rate), s.amount_refunded.map(money).join(", ")],
    })), "no sellers yet");
    return sellers.lag;
  }

  async function showCase(id) {
    const path = "/v1/disputes/" + encodeURIComponent(id);
    const [dispute, history, sm] = await Promise.all([get(path), get(path + "/events"), stateMachine()]);
    try { sawServiceTime((await get("/v1/stats/sla-breaches")).as_of); } catch (e) { /* not a stats viewer: this browser's clock */ }
    let verification = null;
    try { verification = await get(path + "/verification"); } catch (e) { verification = { error: e.message }; }
    $("case-id").textContent = dispute.id;
    $("case-state").textContent = dispute.state + (dispute.outcome ? " (" + dispute.outcome + ")" : "");
    const facts = [["Order", dispute.order_id], ["Reason", dispute.reason], ["Buyer", dispute.buyer_id], ["Seller", dispute.seller_id],
      ["Requested", dispute.requested_resolution + ", " + money(dispute.amount)], ["Order amount", money(dispute.order_amount)],
      ["Opened", when(dispute.opened_at)], ["Version", dispute.version], ["Turn", dispute.turn || "-"], ["Closed", when(dispute.closed_at) || "-"]];
    $("case-facts").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    const visited = new Set();
    const taken = new Set();
    let before = null;
    for (const e of history.events) {
      const s = e.payload.state;
      if (s) { visited.add(s); if (before && before !== s) { taken.add(before + ">" + s); } before = s; }
    }
    $("diagram").replaceChildren(diagram(sm, dispute.state, visited, taken));
    fill("case-deadlines", dispute.deadlines.map((d) => ({ cells: [d.kind, when(d.due_at), timeLeft(d.due_at, serviceNow())] })), "no deadline running");
    $("case-actions").replaceChildren(...(dispute.allowed_actions.length ? dispute.allowed_actions.map((a) => el("li", {}, a)) : [el("li", { class: "muted" }, "none")]));
    const r = dispute.recommendation;
    $("case-recommendation").textContent = r ? r.decision + (r.amount ? " " + money(r.amount) : "") + (r.return_required ? ", return required" : "") + ": " + r.basis : "none for this viewer";
    $("case-verification").textContent = verification.error ? verification.error :
      (verification.intact ? "intact: " : "BROKEN at version " + verification.first_invalid_version + ": ") + verification.events + " events, head " + (verification.head || "").slice(0, 16) + "\u2026";
    $("case-verification").className = verification.intact ? "" : "error";
    fill("timeline", history.events.map((e) => ({
      cells: [e.version, e.type, when(e.at), e.actor.role + ":" + e.actor.id, e.payload.state || "", e.request_id || ""],
    })), "no events");
    return null;
  }

  // --- routing and refresh --------------------------------------------------------------

  function route() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, query] = hash.split("?");
    const [view, arg] = path.split("/");
    return { view: ["overview", "disputes", "sellers", "case"].includes(view) ? view : "overview", arg: arg ? decodeURIComponent(arg) : "", query: query || "" };
  }

  async function render() {
    clearTimeout(timer);
    const signedIn = Boolean(token());
    $("sign-in").hidden = signedIn;
    $("nav").hidden = !signedIn;
    $("session").hidden = !signedIn;
    if (!signedIn) {
      for (const v of document.querySelectorAll(".view")) { v.hidden = true; }
      document.body.dataset.view = "sign-in";
      status("Sign in with a token to see the dashboard.");
      return;
    }
    const c = claims(token());
    $("who").textContent = (c.role || "?") + ":" + (c.sub || "?");
    const r = route();
    for (const v of document.querySelectorAll(".view")) { v.hidden = v.id !== "view-" + r.view; }
    for (const a of document.querySelectorAll("#nav a")) { a.classList.toggle("active", a.dataset.view === r.view); }
    document.body.dataset.view = r.view;
    document.body.dataset.loaded = "false";
    try {
      const lag = r.view === "disputes" ? await showDisputes(r.query) : r.view === "sellers" ? await showSellers()
        : r.view === "case" ? await showCase(r.arg) : await showOverview();
      status("Updated " + new Date().toISOString().slice(11, 19) + " UTC" + (lag ? " \u00b7 " + lagText(lag) : "") + " \u00b7 refreshes every " + REFRESH_MS / 1000 + " s");
      document.body.dataset.loaded = "true";
    } catch (error) {
      if (error instanceof Unauthorized) {
        sessionStorage.removeItem(TOKEN_KEY);
        render();
        status("The token was refused (" + error.message + "): sign in again.", true);
        return;
      }
      status(error.message, true);
      document.body.dataset.loaded = "error";
    }
    timer = setTimeout(render, REFRESH_MS);
  }

  function start() {
    $("token-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      $("token").value = "";
      if (value) { sessionStorage.setItem(TOKEN_KEY, value); render(); }
    });
    $("sign-out").addEventListener("click", () => { sessionStorage.removeItem(TOKEN_KEY); machine = null; render(); });
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault();
      const params = new URLSearchParams();
      for (const input of event.target.elements) { if (input.name && input.value) { params.set(input.name, input.value); } }
      pages = [null];
      location.hash = "#/disputes" + (params.toString() ? "?" + params.toString() : "");
    });
    $("filters").addEventListener("reset", () => { pages = [null]; setTimeout(() => { location.hash = "#/disputes"; }, 0); });
    for (const id of ["page-prev", "page-next"]) {
      $(id).addEventListener("click", (event) => {
        const params = new URLSearchParams(route().query);
        params.set("page", event.target.dataset.page);
        location.hash = "#/disputes?" + params.toString();
      });
    }
    const reasons = $("filter-reason");
    for (const r of ["not_received", "not_as_described", "wrong_item", "damaged", "missing_parts", "late_delivery", "not_shipped"]) {
      reasons.append(el("option", { value: r }, r));
    }
    window.addEventListener("hashchange", render);
    render();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
