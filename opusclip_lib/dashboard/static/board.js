// The live board: draws each snapshot, applies each update as it arrives, and reconnects
// with backoff when the socket closes (a server restart), starting again from the snapshot
// the server sends first. No framework, no build step.
"use strict";

const RECENT_ROWS = 12;
const BACKOFF_MS = [100, 200, 500, 1000, 2000, 5000];

// Read by the browser test and the benchmark: what arrived, and how late.
const dashboard = window.dashboard = {
  connected: false, connects: 0, boards: 0, updates: 0, transport: null,
  latenciesMs: [],  // per update: DOM applied (epoch ms) - published_at (epoch ms)
  feedMs: [],  // per update: the part spent before the server had it (its latency_s)
};

function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child ?? "");
  return node;
}

function seconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

function clock(iso) {
  return iso ? new Date(iso).toLocaleTimeString() : "";
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function jobRow(job) {
  const percent = `${Math.round((job.progress || 0) * 100)}%`;
  const row = el("tr", { id: `job-${job.job_id}`, "data-status": job.status },
    el("td", {}, `#${job.job_id}`), el("td", {}, job.status), el("td", {}, job.stage || ""),
    el("td", {}, percent), el("td", {}, job.worker || ""), el("td", {}, clock(job.at)));
  return row;
}

function drawBoard(board) {
  const states = document.querySelector("#counts .states");
  const order = ["pending", "downloading", "transcribing", "analyzing", "rendering",
                 "completed", "failed", "cancelled"];
  fill(states, order.map((status) => el("div", { className: "state", "data-status": status },
    el("b", {}, String(board.counts[status] || 0)), status)));

  const oldest = document.querySelector("#oldest .big");
  oldest.textContent = board.oldest_pending
    ? `#${board.oldest_pending.job_id}, waiting ${seconds(board.oldest_pending.age_s)}`
    : "none waiting";

  document.getElementById("window").textContent = `(last ${seconds(board.window_s)})`;
  fill(document.querySelector("#workers tbody"), board.workers.map((w) => el("tr", {},
    el("td", {}, w.worker), el("td", {}, String(w.running)), el("td", {}, String(w.completed)),
    el("td", {}, w.per_minute.toFixed(1)), el("td", {}, clock(w.last_at)))));

  fill(document.querySelector("#recent tbody"), board.recent.slice(0, RECENT_ROWS).map(jobRow));

  fill(document.querySelector("#failures tbody"), board.failures.map((job) => el("tr", {},
    el("td", {}, `#${job.job_id}`), el("td", {}, job.stage || ""),
    el("td", { className: "reason" },
      [job.error_code, job.error_message].filter(Boolean).join(": ")),
    el("td", {}, clock(job.at)))));

  fill(document.querySelector("#groups tbody"), board.failure_groups.map((g) => el("tr", {},
    el("td", {}, g.exception_type), el("td", {}, g.stage || ""), el("td", {}, g.provider || ""),
    el("td", {}, String(g.count)), el("td", {}, clock(g.last_seen)))));

  fill(document.getElementById("alerts"), board.alerts.map((a) => el("div",
    { className: "alert", "data-alert": a.name }, el("b", {}, a.name.replace("_", " ")),
    a.summary)));

  document.getElementById("refreshed").textContent =
    `snapshot ${new Date().toLocaleTimeString()}`;
}

function applyUpdate(job) {
  const tbody = document.querySelector("#recent tbody");
  const old = document.getElementById(`job-${job.job_id}`);
  if (old) old.remove();
  const row = jobRow(job);
  row.className = "fresh";
  tbody.prepend(row);
  while (tbody.rows.length > RECENT_ROWS) tbody.lastElementChild.remove();
  if (typeof job.published_at === "number") {
    dashboard.latenciesMs.push(performance.timeOrigin + performance.now()
                               - job.published_at * 1000);
    dashboard.feedMs.push((job.latency_s || 0) * 1000);
  }
  dashboard.updates += 1;
}

function showConnection(up, text) {
  const badge = document.getElementById("connection");
  badge.className = up ? "up" : "down";
  badge.textContent = text;
}

function connect(attempt) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/live`);
  let opened = false;
  socket.onopen = () => {
    opened = true;
    dashboard.connected = true;
    dashboard.connects += 1;
  };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "update") {
      applyUpdate(message.job);
    } else if (message.type === "board") {
      dashboard.transport = message.transport;
      showConnection(true, `live · ${message.transport || "reconnecting feed"}`);
      if (message.board) drawBoard(message.board);
      dashboard.boards += 1;
    }
  };
  socket.onclose = () => {
    dashboard.connected = false;
    const next = opened ? 0 : attempt + 1;
    const delay = BACKOFF_MS[Math.min(next, BACKOFF_MS.length - 1)] * (0.75 + Math.random() / 2);
    showConnection(false, `reconnecting in ${(delay / 1000).toFixed(1)} s`);
    setTimeout(() => connect(next), delay);
  };
}

connect(0);
