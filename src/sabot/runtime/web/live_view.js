// Sabot's live view: polls the coordinator's HTTP API every 500 ms and draws the selected job's
// graph, one N x M heat map per shuffle edge, its operators and its tasks (docs/http-api.md).
//
// Every figure is written into the DOM as text (never as HTML) and as a data-* attribute with
// the exact number, so a person reads the cells and a test reads the attributes:
//   td.cell[data-edge][data-writer][data-partition]: data-rows, data-bytes, data-value (the
//     metric shown), data-stalled ("true"/"false");
//   th.writer[data-edge][data-writer]: data-blocked-seconds, data-blocked-share;
//   td.partition-total[data-edge][data-partition]: data-rows;
//   body: data-polls (completed polls), data-job (the job shown), data-job-state.
"use strict";

(function () {
  const kPollMs = 500;
  const kStallMs = 2000;       // a channel that moved nothing for this long while its edge moved
  const kMaxCells = 128;       // writers and partitions drawn per edge (the rest are summed)
  const kHistory = 16;         // snapshots kept per job for rates and stall detection

  const params = new URLSearchParams(location.hash.slice(1));
  let token = params.get("token") || "";
  let selectedJob = params.get("job") || "";
  let metric = "rows";
  let polls = 0;
  const snapshots = [];          // [{time, job}] of the selected job, oldest first
  let historyJob = "";

  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------------------------------------
  // Formatting.

  function compact(value) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    const abs = Math.abs(value);
    const units = [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [scale, unit] of units) {
      if (abs >= scale) return (value / scale).toFixed(abs >= 10 * scale ? 0 : 1) + unit;
    }
    return Number.isInteger(value) ? String(value) : value.toFixed(1);
  }

  function bytesText(value) {
    if (value === null || value === undefined) return "–";
    const units = [[2 ** 40, "TiB"], [2 ** 30, "GiB"], [2 ** 20, "MiB"], [2 ** 10, "KiB"]];
    for (const [scale, unit] of units) {
      if (Math.abs(value) >= scale) return (value / scale).toFixed(1) + " " + unit;
    }
    return value + " B";
  }

  function seconds(value) {
    if (value === null || value === undefined) return "–";
    if (value >= 3600) return (value / 3600).toFixed(1) + " h";
    if (value >= 60) return (value / 60).toFixed(1) + " min";
    return value.toFixed(value >= 10 ? 0 : 1) + " s";
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function row(cells) {
    const tr = document.createElement("tr");
    for (const cell of cells) tr.appendChild(cell instanceof Node ? cell : el("td", {}, cell));
    return tr;
  }

  // ---------------------------------------------------------------------------------------------
  // The API.

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, method) {
    const headers = {};
    if (token) headers["Authorization"] = "Bearer " + token;
    const response = await fetch(path, { method: method || "GET", headers, cache: "no-store" });
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error : response.statusText;
      throw new HttpError(response.status, message);
    }
    return body;
  }

  function setConnection(state, text) {
    const node = $("connection");
    node.dataset.state = state;
    node.textContent = text;
  }

  function updateFragment() {
    const next = new URLSearchParams();
    if (token) next.set("token", token);
    if (selectedJob) next.set("job", selectedJob);
    window.history.replaceState(null, "", "#" + next.toString());
  }

  // ---------------------------------------------------------------------------------------------
  // Job list and agents.

  function renderJobs(jobs) {
    const body = $("job-list").tBodies[0];
    body.replaceChildren();
    for (const job of jobs) {
      const name = el("td", { class: "job-name" });
      const link = el("a", { href: "#", "data-job": job.id }, job.name + " (" + job.id + ")");
      link.addEventListener("click", (event) => {
        event.preventDefault();
        selectedJob = job.id;
        updateFragment();
        poll(true);
      });
      name.appendChild(link);
      const tr = row([name, el("td", { class: "state " + job.state }, job.state),
                      el("td", { "data-value": job.rows_out }, compact(job.rows_out)),
                      el("td", {}, seconds(job.elapsed_seconds))]);
      tr.dataset.job = job.id;
      if (job.id === selectedJob) tr.classList.add("selected");
      body.appendChild(tr);
    }
    $("no-jobs").hidden = jobs.length > 0;
  }

  function renderAgents(agents) {
    const body = $("agent-list").tBodies[0];
    body.replaceChildren();
    for (const agent of agents) {
      const tr = row([el("td", { title: agent.location }, agent.id),
                      el("td", { class: "state " + agent.state }, agent.state),
                      el("td", {}, agent.slots_used + "/" + agent.slots),
                      el("td", {}, bytesText(agent.memory_used_bytes))]);
      tr.dataset.agent = agent.id;
      body.appendChild(tr);
    }
  }

  // The job to show: the one asked for, else the first running one, else the newest.
  function chooseJob(jobs) {
    if (selectedJob && jobs.some((job) => job.id === selectedJob)) return selectedJob;
    const running = jobs.find((job) => job.state === "running");
    if (running) return running.id;
    return jobs.length > 0 ? jobs[0].id : "";
  }

  // ---------------------------------------------------------------------------------------------
  // Graph: operators in columns by depth (longest path from a source), edges between them.

  function renderGraph(job) {
    const graph = job.graph;
    const area = $("graph");
    area.replaceChildren();
    const depth = new Map(graph.operators.map((op) => [op.name, 0]));
    for (let pass = 0; pass < graph.operators.length; ++pass) {
      let changed = false;
      for (const edge of graph.edges) {
        const next = (depth.get(edge.from) || 0) + 1;
        if (depth.has(edge.to) && next > depth.get(edge.to)) {
          depth.set(edge.to, next);
          changed = true;
        }
      }
      if (!changed) break;
    }
    const columns = new Map();
    const place = new Map();
    for (const op of graph.operators) {
      const d = depth.get(op.name);
      const slot = columns.get(d) || 0;
      columns.set(d, slot + 1);
      place.set(op.name, { x: 20 + d * 280, y: 20 + slot * 90 });
    }
    const width = 20 + (Math.max(0, ...columns.keys()) + 1) * 280;
    const height = 20 + Math.max(1, ...columns.values()) * 90;
    area.setAttribute("width", width);
    area.setAttribute("height", height);
    area.setAttribute("viewBox", "0 0 " + width + " " + height);

    const boxW = 165;
    const boxH = 56;
    for (const edge of graph.edges) {
      const a = place.get(edge.from);
      const b = place.get(edge.to);
      if (!a || !b) continue;
      const x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2;
      const line = svg("path", {
        d: "M" + x1 + "," + y1 + " C" + (x1 + 30) + "," + y1 + " " + (x2 - 30) + "," + y2 +
           " " + x2 + "," + y2,
        class: "edge " + (edge.chained ? "chained" : edge.type),
      });
      area.appendChild(line);
      const label = edge.chained
          ? "chained"
          : edge.type + " " + edge.num_writers + "×" + edge.num_partitions;
      const text = svg("text", {
        x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 6, class: "edge-label",
        "data-edge": edge.shuffle_id || "",
      }, label);
      area.appendChild(text);
    }
    for (const op of graph.operators) {
      const p = place.get(op.name);
      const group = svg("g", { class: "operator", "data-operator": op.name,
                               "data-parallelism": op.parallelism });
      group.appendChild(svg("rect", { x: p.x, y: p.y, width: boxW, height: boxH, rx: 6 }));
      group.appendChild(svg("text", { x: p.x + 10, y: p.y + 22, class: "op-name" },
                            op.name + "  ×" + op.parallelism));
      group.appendChild(svg("text", { x: p.x + 10, y: p.y + 42, class: "op-kind" },
                            op.kind + (op.chain === null ? "" : " · chain " + op.chain)));
      area.appendChild(group);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Heat maps.

  // The snapshot of this job about `ms` before the newest, or the oldest one kept.
  function snapshotBefore(ms) {
    const newest = snapshots[snapshots.length - 1];
    for (let i = snapshots.length - 2; i >= 0; --i) {
      if (newest.time - snapshots[i].time >= ms) return snapshots[i];
    }
    return snapshots.length > 1 ? snapshots[0] : null;
  }

  function findEdge(job, shuffleId) {
    return job ? job.edges.find((edge) => edge.shuffle_id === shuffleId) : undefined;
  }

  function cellOf(matrix, i, j) {
    return matrix && matrix[i] && matrix[i][j] !== undefined ? matrix[i][j] : null;
  }

  // Per channel: rows, bytes, rates over the last interval, stalled or not.
  function edgeFigures(edge, running) {
    const now = snapshots[snapshots.length - 1];
    const previous = snapshots.length > 1 ? snapshots[snapshots.length - 2] : null;
    const stallBase = snapshotBefore(kStallMs);
    const before = previous ? findEdge(previous.job, edge.shuffle_id) : undefined;
    const stallEdge = stallBase ? findEdge(stallBase.job, edge.shuffle_id) : undefined;
    const dt = previous ? (now.time - previous.time) / 1000 : 0;
    const stallSpan = stallBase ? now.time - stallBase.time : 0;
    const edgeMoved = stallEdge !== undefined && edge.total_rows > stallEdge.total_rows;
    const cells = [];
    for (let i = 0; i < edge.num_writers; ++i) {
      const line = [];
      for (let j = 0; j < edge.num_partitions; ++j) {
        const rows = cellOf(edge.rows, i, j);
        const bytes = cellOf(edge.bytes, i, j);
        const rowsBefore = before ? cellOf(before.rows, i, j) : null;
        const bytesBefore = before ? cellOf(before.bytes, i, j) : null;
        const rowsStall = stallEdge ? cellOf(stallEdge.rows, i, j) : null;
        line.push({
          rows,
          bytes,
          rows_rate: dt > 0 && rows !== null && rowsBefore !== null ? (rows - rowsBefore) / dt : null,
          bytes_rate:
              dt > 0 && bytes !== null && bytesBefore !== null ? (bytes - bytesBefore) / dt : null,
          stalled: running && edgeMoved && stallSpan >= kStallMs && rows !== null &&
                   rows === rowsStall,
        });
      }
      cells.push(line);
    }
    const blocked = [];
    for (let i = 0; i < edge.num_writers; ++i) {
      const total = edge.writer_blocked_seconds[i];
      const totalBefore = before ? before.writer_blocked_seconds[i] : undefined;
      blocked.push({
        seconds: total === undefined ? null : total,
        share: dt > 0 && total !== undefined && totalBefore !== undefined
            ? Math.min(1, Math.max(0, (total - totalBefore) / dt)) : null,
      });
    }
    return { cells, blocked };
  }

  function heat(fraction) {
    // White (nothing) to deep blue (the matrix's largest value).
    const f = Math.max(0, Math.min(1, fraction));
    const light = 97 - f * 62;
    return "hsl(215, 80%, " + light.toFixed(1) + "%)";
  }

  function metricText(value) {
    if (value === null) return "–";
    return metric.startsWith("bytes") ? bytesText(value) : compact(value);
  }

  function buildEdgeCard(edge, shownWriters, shownPartitions) {
    const card = el("div", { class: "edge-card", "data-edge": edge.shuffle_id });
    const title = el("h4", {}, edge.from + " → " + edge.to + "  ");
    title.appendChild(el("span", { class: "muted" },
                         edge.type + " " + edge.num_writers + "×" + edge.num_partitions +
                         (edge.keys && edge.keys.length ? " on " + edge.keys.join(", ") : "") +
                         " · " + edge.shuffle_id));
    card.appendChild(title);
    card.appendChild(el("p", { class: "edge-summary" }));
    const table = el("table", { class: "heatmap", "data-edge": edge.shuffle_id });
    const head = el("tr");
    head.appendChild(el("th", { class: "corner" }, "writer \\ partition"));
    for (let j = 0; j < shownPartitions; ++j) head.appendChild(el("th", {}, "p" + j));
    head.appendChild(el("th", { class: "blocked-head" }, "blocked"));
    table.appendChild(head);
    for (let i = 0; i < shownWriters; ++i) {
      const tr = el("tr");
      tr.appendChild(el("th", { class: "writer", "data-edge": edge.shuffle_id, "data-writer": i },
                        "w" + i));
      for (let j = 0; j < shownPartitions; ++j) {
        tr.appendChild(el("td", { class: "cell", "data-edge": edge.shuffle_id, "data-writer": i,
                                  "data-partition": j }));
      }
      tr.appendChild(el("td", { class: "blocked", "data-edge": edge.shuffle_id,
                                "data-writer": i }));
      table.appendChild(tr);
    }
    const totals = el("tr", { class: "totals" });
    totals.appendChild(el("th", {}, "Σ rows"));
    for (let j = 0; j < shownPartitions; ++j) {
      totals.appendChild(el("td", { class: "partition-total", "data-edge": edge.shuffle_id,
                                    "data-partition": j }));
    }
    totals.appendChild(el("td"));
    table.appendChild(totals);
    card.appendChild(table);
    if (shownWriters < edge.num_writers || shownPartitions < edge.num_partitions) {
      card.appendChild(el("p", { class: "hint" },
                          "Showing the first " + shownWriters + " writers and " +
                          shownPartitions + " partitions; the API has them all."));
    }
    return card;
  }

  function renderEdges(job) {
    const container = $("edges");
    const running = job.state === "running";
    const seen = new Set();
    for (const edge of job.edges) {
      seen.add(edge.shuffle_id);
      const shownWriters = Math.min(edge.num_writers, kMaxCells);
      const shownPartitions = Math.min(edge.num_partitions, kMaxCells);
      let card = container.querySelector(
          'div.edge-card[data-edge="' + CSS.escape(edge.shuffle_id) + '"]');
      const shape = shownWriters + "x" + shownPartitions;
      if (!card || card.dataset.shape !== shape) {
        const fresh = buildEdgeCard(edge, shownWriters, shownPartitions);
        fresh.dataset.shape = shape;
        if (card) container.replaceChild(fresh, card); else container.appendChild(fresh);
        card = fresh;
      }
      const figures = edgeFigures(edge, running);
      let max = 0;
      for (const line of figures.cells) {
        for (const c of line) if (c[metric] !== null && c[metric] > max) max = c[metric];
      }
      const partitionRows = new Array(edge.num_partitions).fill(0);
      for (let i = 0; i < edge.num_writers; ++i) {
        for (let j = 0; j < edge.num_partitions; ++j) {
          partitionRows[j] += figures.cells[i][j].rows || 0;
        }
      }
      const mean = partitionRows.reduce((a, b) => a + b, 0) / Math.max(1, edge.num_partitions);
      let stalledCount = 0;
      for (const td of card.querySelectorAll("td.cell")) {
        const i = Number(td.dataset.writer);
        const j = Number(td.dataset.partition);
        const c = figures.cells[i][j];
        const value = c[metric];
        td.dataset.rows = c.rows === null ? "" : String(c.rows);
        td.dataset.bytes = c.bytes === null ? "" : String(c.bytes);
        td.dataset.value = value === null ? "" : String(value);
        td.dataset.stalled = c.stalled ? "true" : "false";
        td.classList.toggle("stalled", c.stalled);
        if (c.stalled) ++stalledCount;
        td.textContent = metricText(value);
        td.style.background = heat(max > 0 && value !== null ? value / max : 0);
        td.style.color = max > 0 && value !== null && value / max > 0.55 ? "white" : "";
        td.title = "writer " + i + " → partition " + j + ": " +
                   (c.rows === null ? "–" : c.rows) + " rows, " +
                   (c.bytes === null ? "–" : c.bytes + " bytes") +
                   (c.rows_rate === null ? "" : ", " + compact(c.rows_rate) + " rows/s") +
                   (c.stalled ? " — STALLED" : "");
      }
      for (const td of card.querySelectorAll("td.blocked")) {
        const b = figures.blocked[Number(td.dataset.writer)];
        td.dataset.blockedSeconds = b.seconds === null ? "" : String(b.seconds);
        td.dataset.blockedShare = b.share === null ? "" : String(b.share);
        td.textContent = b.seconds === null
            ? "–"
            : seconds(b.seconds) + (b.share === null ? "" : " · " + Math.round(b.share * 100) + "%");
        const share = b.share === null ? 0 : b.share;
        td.style.background = share > 0 ? "hsl(0, 85%, " + (96 - share * 46).toFixed(1) + "%)" : "";
      }
      for (const td of card.querySelectorAll("td.partition-total")) {
        const j = Number(td.dataset.partition);
        td.dataset.rows = String(partitionRows[j]);
        td.textContent = compact(partitionRows[j]);
        td.classList.toggle("hot", mean > 0 && partitionRows[j] > 1.5 * mean);
      }
      const summary = card.querySelector("p.edge-summary");
      summary.textContent =
          compact(edge.total_rows) + " rows, " + bytesText(edge.total_bytes) + " · skew " +
          edge.skew.toFixed(2) + " · blocked " + seconds(edge.blocked_seconds) +
          " · spilled " + bytesText(edge.bytes_spilled) +
          (stalledCount > 0 ? " · " + stalledCount + " stalled channel(s)" : "");
      summary.classList.toggle("alert", stalledCount > 0 || edge.skew > 1.5);
      card.dataset.totalRows = String(edge.total_rows);
      card.dataset.skew = String(edge.skew);
    }
    for (const card of [...container.querySelectorAll("div.edge-card")]) {
      if (!seen.has(card.dataset.edge)) card.remove();
    }
    $("no-edges").hidden = job.edges.length > 0;
  }

  // ---------------------------------------------------------------------------------------------
  // Operators, tasks, header.

  function renderOperators(job) {
    const previous = snapshots.length > 1 ? snapshots[snapshots.length - 2] : null;
    const now = snapshots[snapshots.length - 1];
    const dt = previous ? (now.time - previous.time) / 1000 : 0;
    const body = $("operators").tBodies[0];
    body.replaceChildren();
    for (const op of job.operators) {
      const before = previous ? previous.job.operators.find((o) => o.name === op.name) : null;
      const rate = before && dt > 0 ? (op.rows_out - before.rows_out) / dt : null;
      const lag = op.input_ended ? "ended" : op.watermark_lag_seconds === null
          ? "–" : seconds(op.watermark_lag_seconds);
      const tr = row([el("td", {}, op.name), el("td", {}, op.kind),
                      el("td", {}, String(op.parallelism)),
                      el("td", { "data-value": op.rows_in }, compact(op.rows_in)),
                      el("td", { "data-value": op.rows_out }, compact(op.rows_out)),
                      el("td", {}, rate === null ? "–" : compact(rate)),
                      el("td", {}, op.busy_seconds.toFixed(1)),
                      el("td", {}, lag),
                      el("td", {}, bytesText(op.state_spilled_bytes)),
                      el("td", {}, compact(op.late_rows))]);
      tr.dataset.operator = op.name;
      body.appendChild(tr);
    }
  }

  function renderTasks(job) {
    const body = $("tasks").tBodies[0];
    body.replaceChildren();
    for (const task of job.tasks) {
      const tr = row([el("td", {}, task.operator + "[" + task.subtask + "]"),
                      el("td", { title: task.agent_location }, task.agent_id || "–"),
                      el("td", { class: "state " + task.state }, task.state),
                      el("td", { "data-value": task.rows_in }, compact(task.rows_in)),
                      el("td", { "data-value": task.rows_out }, compact(task.rows_out)),
                      el("td", { class: "error" }, task.error)]);
      tr.dataset.task = task.chain + "." + task.subtask;
      body.appendChild(tr);
    }
  }

  function renderJob(job) {
    $("job").hidden = false;
    $("job-title").textContent = job.name + " (" + job.id + ")";
    const state = $("job-state");
    state.textContent = job.state;
    state.className = "state " + job.state;
    $("job-elapsed").textContent = seconds(job.elapsed_seconds);
    $("job-error").hidden = !job.error;
    $("job-error").textContent = job.error;
    $("cancel-job").hidden = ["finished", "failed", "cancelled"].includes(job.state);
    document.body.dataset.job = job.id;
    document.body.dataset.jobState = job.state;
    const graphKey = JSON.stringify(job.graph);
    if ($("graph").dataset.key !== graphKey) {
      renderGraph(job);
      $("graph").dataset.key = graphKey;
    }
    renderEdges(job);
    renderOperators(job);
    renderTasks(job);
  }

  // ---------------------------------------------------------------------------------------------
  // Polling.

  let timer = null;
  let inFlight = false;

  async function poll(now) {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (inFlight) return;
    inFlight = true;
    try {
      const [jobs, agents] = await Promise.all([api("/api/v1/jobs"), api("/api/v1/agents")]);
      renderJobs(jobs.jobs);
      renderAgents(agents.agents);
      selectedJob = chooseJob(jobs.jobs);
      for (const tr of $("job-list").tBodies[0].rows) {
        tr.classList.toggle("selected", tr.dataset.job === selectedJob);
      }
      if (selectedJob) {
        const job = await api("/api/v1/jobs/" + encodeURIComponent(selectedJob));
        if (historyJob !== job.id) {
          snapshots.length = 0;
          historyJob = job.id;
          $("edges").replaceChildren();
        }
        snapshots.push({ time: performance.now(), job });
        if (snapshots.length > kHistory) snapshots.shift();
        renderJob(job);
      } else {
        $("job").hidden = true;
      }
      polls += 1;
      document.body.dataset.polls = String(polls);
      setConnection("ok", "live · updated " + new Date().toLocaleTimeString());
    } catch (error) {
      if (error instanceof HttpError && error.status === 401) {
        setConnection("unauthorized", "token needed: " + error.message);
        $("token-input").focus();
      } else if (error instanceof HttpError && error.status === 404) {
        selectedJob = "";
        setConnection("error", error.message);
      } else {
        setConnection("error", "cannot reach the coordinator: " + error.message);
      }
    } finally {
      inFlight = false;
      timer = setTimeout(poll, kPollMs);
    }
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    token = $("token-input").value.trim();
    updateFragment();
    poll(true);
  });

  for (const input of document.querySelectorAll('input[name="metric"]')) {
    input.addEventListener("change", () => {
      metric = input.value;
      if (snapshots.length > 0) renderEdges(snapshots[snapshots.length - 1].job);
    });
  }

  $("cancel-job").addEventListener("click", async () => {
    if (!selectedJob || !window.confirm("Cancel job " + selectedJob + "?")) return;
    try {
      await api("/api/v1/jobs/" + encodeURIComponent(selectedJob), "DELETE");
    } catch (error) {
      setConnection("error", "cancel failed: " + error.message);
    }
    poll(true);
  });

  window.addEventListener("hashchange", () => {
    const next = new URLSearchParams(location.hash.slice(1));
    token = next.get("token") || token;
    selectedJob = next.get("job") || selectedJob;
  });

  if (token) $("token-input").value = token;
  poll(true);
})();
