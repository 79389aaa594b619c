// queuesim dashboard page: polls the JSON API and draws the queue table, sparklines, failed jobs, dead-letter
// queues and one job's details. Everything the server sends is inserted as text (never as HTML).
"use strict";

(() => {
  const TOKEN_KEY = "queuesim-dashboard-token";
  const COUNT_COLS = ["waiting", "prioritized", "delayed", "paused", "active", "completed", "failed", "dlq"];
  const HEALTH_EVERY_MS = 10000;
  const ICONS = { healthy: "●", warning: "▲", critical: "■" };

  const $ = (sel) => document.querySelector(sel);
  let token = null;
  let timer = null;
  let lastHealthAt = 0;
  let health = {};
  let current = null; // {queue, id} of the job shown in the detail panel
  let dlqNames = {}; // queue -> its dead-letter queue

  // --- token ------------------------------------------------------------------------------------------------

  function takeTokenFromFragment() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const fromUrl = params.get("token");
    if (fromUrl) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      // do not leave the secret in the address bar or the history
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showLogin(message) {
    stopTimer();
    $("#main").hidden = true;
    $("#login").hidden = false;
    $("#login-error").textContent = message || "";
    $("#token-input").focus();
  }

  function showMain() {
    $("#login").hidden = true;
    $("#main").hidden = false;
  }

  // --- API --------------------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, method = "GET") {
    const res = await fetch("/api" + path, {
      method,
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      cache: "no-store",
      credentials: "omit",
    });
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      body = null;
    }
    if (!res.ok) {
      const detail = body && typeof body.detail === "string" ? body.detail : res.status + " " + res.statusText;
      if (res.status === 401 || (res.status === 403 && /token/.test(detail))) {
        sessionStorage.removeItem(TOKEN_KEY);
        showLogin(detail);
      }
      throw new ApiError(res.status, detail);
    }
    return body;
  }

  const enc = encodeURIComponent;

  function toast(message, isError) {
    const el = $("#toast");
    el.textContent = message;
    el.className = isError ? "toast error" : "toast ok";
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 4000);
  }

  async function act(path, confirmText) {
    if (confirmText && !window.confirm(confirmText)) return null;
    try {
      const result = await api(path, "POST");
      toast(result.message || "done", false);
      await tick(true);
      if (current) await showJob(current.queue, current.id, true);
      return result;
    } catch (err) {
      toast(err.message, true);
      return null;
    }
  }

  // --- helpers ----------------------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else if (k === "onclick") node.addEventListener("click", v);
      else node[k] = v;
    }
    for (const c of children) node.append(c);
    return node;
  }

  const fmtInt = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));

  function fmtTime(ms) {
    if (!ms) return "–";
    const d = new Date(ms);
    return d.toLocaleTimeString("en-GB", { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "–";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(2) + " s";
  }

  function badge(status) {
    const s = status || "unknown";
    return el("span", { class: "badge badge-" + s, text: (ICONS[s] ? ICONS[s] + " " : "") + s });
  }

  function stateBadge(state) {
    return el("span", { class: "badge state-" + state, text: state });
  }

  // --- sparklines -------------------------------------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";

  function sparkline(values, cls, unit) {
    const w = 130, h = 34, pad = 2;
    const wrap = el("div", { class: "spark" });
    if (values.length < 2) {
      wrap.append(el("span", { class: "muted", text: "collecting…" }));
      return wrap;
    }
    const max = Math.max(1, ...values);
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", w);
    svg.setAttribute("height", h);
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("role", "img");
    const base = document.createElementNS(SVG, "line");
    base.setAttribute("x1", 0); base.setAttribute("x2", w);
    base.setAttribute("y1", h - pad); base.setAttribute("y2", h - pad);
    base.setAttribute("class", "baseline");
    svg.append(base);
    const step = (w - 2 * pad) / (values.length - 1);
    const pts = values.map((v, i) => `${(pad + i * step).toFixed(1)},${(h - pad - (v / max) * (h - 2 * pad)).toFixed(1)}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", pts.join(" "));
    line.setAttribute("class", cls);
    svg.append(line);
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${unit}: latest ${values[values.length - 1]}, max ${max}`;
    svg.append(title);
    const last = values[values.length - 1];
    wrap.append(svg, el("span", { class: "spark-label" },
      el("strong", { text: fmtInt(Math.round(last)) }), el("small", { text: " " + unit }),
      el("br"), el("small", { class: "muted", text: "max " + fmtInt(Math.round(max)) })));
    return wrap;
  }

  // --- queue table ------------------------------------------------------------------------------------------

  function renderQueues(stats, series) {
    const body = $("#queues tbody");
    body.replaceChildren();
    const names = Object.keys(stats.queues);
    for (const name of names) {
      const s = stats.queues[name];
      const h = health[name];
      const healthCell = el("td", { class: "health" }, badge(h ? h.status : "unknown"));
      if (h) {
        // the numbers the seed's rules look at (jobs finished in the last minute)
        const p = h.performance;
        healthCell.append(el("div", { class: "perf", title: "Jobs finished in the last minute",
          text: `last minute: ${fmtInt(p.throughput_per_min)} done · ${p.error_rate_pct.toFixed(1)} % failed · ` +
            `${fmtDuration(Math.round(p.avg_processing_ms))} avg` }));
      }
      if (h && h.alerts.length) {
        healthCell.append(el("ul", { class: "alerts" }, ...h.alerts.map((a) => el("li", { text: a }))));
      }
      if (s.is_paused) healthCell.append(el("div", { class: "paused-flag", text: "paused: press Resume" }));
      const row = el("tr", { "data-queue": name },
        el("th", { scope: "row", text: name }), healthCell);
      for (const col of COUNT_COLS) {
        const cell = el("td", { class: "num", "data-col": col, text: col === "dlq" && !s.dead_letter_queue ? "–" : fmtInt(s[col]) });
        if (col === "failed" && s.failed > 0) cell.classList.add("bad");
        row.append(cell);
      }
      const samples = (series.queues && series.queues[name]) || [];
      row.append(el("td", {}, sparkline(samples.map((p) => p.throughput_per_min), "line-throughput", "/min")));
      row.append(el("td", {}, sparkline(samples.map((p) => p.depth), "line-depth", "jobs")));
      const pauseBtn = s.is_paused
        ? el("button", { type: "button", text: "Resume", "data-action": "resume",
          onclick: () => act(`/queues/${enc(name)}/resume`) })
        : el("button", { type: "button", text: "Pause", "data-action": "pause",
          onclick: () => act(`/queues/${enc(name)}/pause`, `Pause queue ${name}? Workers will take no new jobs.`) });
      row.append(el("td", { class: "actions" }, pauseBtn));
      body.append(row);
    }
    for (const col of COUNT_COLS) {
      $(`#totals td[data-col="${col}"]`).textContent = fmtInt(stats.totals[col]);
    }
    const select = $("#search-queue");
    const chosen = select.value;
    const dead = names.filter((n) => dlqNames[n]).map((n) => dlqNames[n]);
    const wanted = ["", ...names, ...dead];
    const have = Array.from(select.options).map((o) => o.value);
    if (wanted.join("\n") !== have.join("\n")) {
      select.replaceChildren(el("option", { value: "", text: "any queue" }),
        ...names.map((n) => el("option", { value: n, text: n })),
        ...dead.map((n) => el("option", { value: n, text: `${n} (dead letters)` })));
      select.value = wanted.includes(chosen) ? chosen : "";
    }
    const interval = series.interval_s || 2;
    const windowS = interval * 90;
    $("#window").textContent = windowS >= 60 ? `${Math.round(windowS / 60)} minutes` : `${windowS} seconds`;
  }

  function renderOverall(healthResponse) {
    const overall = $("#overall");
    overall.replaceWith(Object.assign(badge(healthResponse.overall), { id: "overall" }));
  }

  // --- failed jobs and dead-letter queues -------------------------------------------------------------------

  function jobLink(queue, id) {
    return el("a", { href: "#", text: id, onclick: (e) => { e.preventDefault(); showJob(queue, id); } });
  }

  function renderFailed(failed) {
    const body = $("#failed tbody");
    body.replaceChildren();
    for (const j of failed.failed_jobs) {
      body.append(el("tr", { "data-job": j.id },
        el("td", { text: j.queue }),
        el("td", {}, jobLink(j.queue, j.id)),
        el("td", { text: j.name }),
        el("td", { class: "num", text: `${j.attempts_made} of ${j.max_attempts}` }),
        el("td", { text: fmtTime(j.finished_on) }),
        el("td", { class: "reason", text: j.failed_reason || "" }),
        el("td", {}, el("button", { type: "button", text: "Retry",
          onclick: () => act(`/queues/${enc(j.queue)}/jobs/${enc(j.id)}/retry`) }))));
    }
    $("#failed-empty").hidden = failed.failed_jobs.length > 0;
    $("#failed-total").textContent = failed.total ? `(${fmtInt(failed.total)} in all, newest first)` : "";
  }

  async function renderDlqs() {
    const box = $("#dlqs");
    const parts = [];
    for (const [queue, dlq] of Object.entries(dlqNames)) {
      const data = await api(`/queues/${enc(queue)}/dlq?limit=10`);
      const rows = data.jobs.map((j) => el("tr", { "data-job": j.id },
        el("td", {}, jobLink(dlq, j.id)),
        el("td", { text: j.name }),
        el("td", { class: "num", text: `${j.attempts_made} of ${j.max_attempts}` }),
        el("td", { text: fmtTime(j.finished_on) }),
        el("td", { class: "reason", text: j.failed_reason || "" }),
        el("td", {}, el("button", { type: "button", text: "Redrive",
          onclick: () => act(`/queues/${enc(queue)}/dlq/${enc(j.id)}/redrive`) }))));
      const head = el("div", { class: "dlq-head" },
        el("strong", { text: `${dlq}` }), el("span", { class: "muted", text: ` — dead jobs of ${queue}: ${fmtInt(data.total)}` }),
        el("button", { type: "button", text: "Redrive all", disabled: data.total === 0,
          onclick: () => act(`/queues/${enc(queue)}/dlq/redrive`, `Send all ${data.total} dead jobs back to ${queue}?`) }),
        el("button", { type: "button", class: "danger", text: "Purge", disabled: data.total === 0,
          onclick: () => act(`/queues/${enc(queue)}/dlq/purge`, `Delete all ${data.total} dead jobs of ${dlq} for good?`) }));
      const table = el("table", { class: "dlq" },
        el("thead", {}, el("tr", {}, ...["Job", "Name", "Attempts", "Died at", "Reason", ""].map((t) => el("th", { text: t })))),
        el("tbody", {}, ...rows));
      parts.push(el("div", { class: "dlq-box", "data-dlq": dlq }, head, rows.length ? table : el("p", { class: "muted", text: "empty" })));
    }
    box.replaceChildren(...parts);
    $("#dlq-empty").hidden = parts.length > 0;
  }

  // --- job search and detail --------------------------------------------------------------------------------

  async function search(queue, id) {
    const out = $("#search-result");
    out.replaceChildren();
    try {
      if (queue) {
        await showJob(queue, id);
        return;
      }
      const found = await api(`/jobs/${enc(id)}`);
      if (found.matches.length === 1) {
        await showJob(found.matches[0].queue, id);
        return;
      }
      out.append(el("p", { text: `${found.matches.length} queues have a job ${id}:` }),
        el("ul", {}, ...found.matches.map((m) => el("li", {}, jobLink(m.queue, id),
          ` in ${m.kind} ${m.queue} (${m.name}, ${m.state})`))));
    } catch (err) {
      $("#detail").hidden = true;
      current = null;
      out.append(el("p", { class: "error", text: err.message }));
    }
  }

  function field(dl, label, value, cls) {
    dl.append(el("dt", { text: label }), el("dd", { class: cls || "", text: value }));
  }

  function pretty(value) {
    if (value === null || value === undefined) return "–";
    return typeof value === "string" ? value : JSON.stringify(value, null, 1);
  }

  async function showJob(queue, id, quiet) {
    let d;
    try {
      d = await api(`/queues/${enc(queue)}/jobs/${enc(id)}`);
    } catch (err) {
      if (!quiet) {
        $("#search-result").replaceChildren(el("p", { class: "error", text: err.message }));
        $("#detail").hidden = true;
        current = null;
      } else {
        $("#detail-state").replaceWith(Object.assign(stateBadge("gone"), { id: "detail-state" }));
      }
      return;
    }
    current = { queue, id };
    if (!quiet) $("#search-result").replaceChildren();
    const j = d.job;
    $("#detail").hidden = false;
    $("#detail-title").textContent = `${j.id} (${j.name}) in ${d.queue}`;
    $("#detail-state").replaceWith(Object.assign(stateBadge(j.state), { id: "detail-state" }));
    const inDlq = Boolean(d.dead_letter_source);
    $("#btn-retry").hidden = inDlq;
    $("#btn-cancel").hidden = inDlq;
    $("#btn-redrive").hidden = !inDlq;
    const dl = $("#detail-fields");
    dl.replaceChildren();
    field(dl, "State", j.state);
    field(dl, "Attempts", `${j.attempts_made} finished, ${j.attempts_started} started, of ${j.max_attempts} allowed`);
    field(dl, "Progress", pretty(j.progress));
    field(dl, "Created", fmtTime(j.created_at));
    field(dl, "Started", fmtTime(j.processed_on));
    field(dl, "Finished", fmtTime(j.finished_on));
    field(dl, "Processing time", j.finished_on && j.processed_on ? fmtDuration(j.finished_on - j.processed_on) : "–");
    field(dl, "Worker", j.processed_by || "–");
    field(dl, "Data", pretty(j.data), "code");
    field(dl, "Result", pretty(j.result), "code");
    field(dl, "Error", j.error || "–", j.error ? "error" : "");
    if (j.logs.length) field(dl, "Logs", j.logs.join("\n"), "code");
    if (d.dead_letter_source) field(dl, "Dead letter of", d.dead_letter_source);
    const ol = $("#timeline");
    ol.replaceChildren();
    const t0 = d.timeline.length ? d.timeline[0].time_ms : 0;
    for (const e of d.timeline) {
      ol.append(el("li", { "data-event": e.event },
        el("span", { class: "when", text: `${fmtTime(e.time_ms)} (+${fmtDuration(e.time_ms - t0)})` }),
        el("span", { class: "event event-" + e.event, text: e.event }),
        el("span", { class: "what", text: e.details +
          (e.event === "delayed" && e.fields && e.fields.delay ? ` until ${fmtTime(Number(e.fields.delay))}` : "") })));
    }
  }

  $("#btn-retry").addEventListener("click", () => current && act(`/queues/${enc(current.queue)}/jobs/${enc(current.id)}/retry`));
  $("#btn-cancel").addEventListener("click", () => current && act(`/queues/${enc(current.queue)}/jobs/${enc(current.id)}/cancel`,
    `Cancel job ${current.id}? It will be removed from ${current.queue}.`));
  $("#btn-redrive").addEventListener("click", async () => {
    if (!current) return;
    const source = Object.keys(dlqNames).find((q) => dlqNames[q] === current.queue);
    const id = current.id;
    const r = await act(`/queues/${enc(source)}/dlq/${enc(id)}/redrive`);
    if (r) await showJob(source, id, true);
  });
  $("#btn-reload").addEventListener("click", () => current && showJob(current.queue, current.id));

  // --- polling ----------------------------------------------------------------------------------------------

  let busy = false;

  async function tick(force) {
    if (busy && !force) return;
    busy = true;
    try {
      const now = Date.now();
      const wantHealth = force || now - lastHealthAt >= HEALTH_EVERY_MS;
      const [queues, stats, series, failed, h] = await Promise.all([
        api("/queues"), api("/stats"), api("/series"), api("/failed?limit=10"),
        wantHealth ? api("/health") : Promise.resolve(null)]);
      dlqNames = {};
      for (const q of queues.queues) if (q.dead_letter_queue) dlqNames[q.name] = q.dead_letter_queue;
      if (h) {
        lastHealthAt = now;
        health = {};
        for (const r of h.queues) health[r.name] = r;
        renderOverall(h);
      }
      showMain();
      renderQueues(stats, series);
      renderFailed(failed);
      await renderDlqs();
      if (current && !force) await showJob(current.queue, current.id, true);
      $("#updated").textContent = "updated " + fmtTime(Date.now());
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 401 || err.status === 403))) {
        $("#updated").textContent = "update failed: " + err.message;
      }
    } finally {
      busy = false;
    }
  }

  function stopTimer() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  function startTimer() {
    stopTimer();
    const every = Number($("#refresh").value);
    if (every > 0) timer = setInterval(() => tick(false), every);
  }

  $("#refresh").addEventListener("change", startTimer);
  $("#logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    token = null;
    showLogin("Token forgotten.");
  });
  $("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    token = $("#token-input").value.trim();
    $("#token-input").value = "";
    sessionStorage.setItem(TOKEN_KEY, token);
    $("#login-error").textContent = "";
    lastHealthAt = 0;
    await tick(true);
    if (!$("#main").hidden) startTimer();
  });
  $("#search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search($("#search-queue").value, $("#search-id").value.trim());
  });

  token = takeTokenFromFragment();
  if (!token) {
    showLogin("");
  } else {
    tick(true).then(() => { if (!$("#main").hidden) startTimer(); });
  }
})();
