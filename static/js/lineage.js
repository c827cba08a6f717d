// The lineage graph of an entity page's Lineage tab and of /lineage/?nodeId=…
//
// It opens one hop around the root (GET /api/v1/lineage?nodeId=…&depth=1, with the session cookie) and
// merges one more hop into the drawing each time a node is activated (click, or Enter on the focused
// node). Layered left to right: upstream columns on the left of the root, downstream on the right.
// Everything is SVG built with DOM calls (names are set as text, never parsed as markup); no inline
// script or style, so the portal's CSP holds.
(function () {
  "use strict";
  const NS = "http://www.w3.org/2000/svg";
  const W = 220, H = 50, COL_GAP = 84, SUB_GAP = 56, ROW_GAP = 14, PAD = 28, MAX_ROWS = 25;
  const MIN_REVEAL_SCALE = 0.6; // an expansion zooms out at most to this to show what it brought in
  // On a narrow canvas (a phone) an automatic fit may go lower, down to the scale that shows a node with a
  // column on each side (see minScale), but never below this: smaller, a node is a coloured box only.
  const MIN_NARROW_SCALE = 0.34;
  const CHIP_OUT = 24; // how far a node's "+" chips reach beyond its box, left and right
  const NAME_CHARS = 28;
  // Kinds as the pages name them (catalog/descriptors/kinds.py, the `kind_name` template filter).
  const KIND_LABELS = {
    dataset: "Dataset", job: "Job", pipeline: "Pipeline", featureset: "Feature set", run: "MLflow run",
    version: "Model version", model: "Model", deployment: "Deployment", component: "Component", api: "API",
    resource: "Resource", system: "System", domain: "Domain", group: "Group", user: "User",
    airesource: "AI resource", template: "Template", location: "Location",
  };
  const COLOURED_KINDS = new Set(["dataset", "job", "featureset", "run", "version", "model", "deployment"]);
  const STATES = {
    COMPLETE: ["complete", "✓", "succeeded"], FAIL: ["fail", "✕", "failed"], ABORT: ["abort", "■", "aborted"],
    RUNNING: ["running", "▶", "running"], START: ["running", "▶", "running"], OTHER: ["running", "▶", "running"],
    // MLflow run states
    FINISHED: ["complete", "✓", "succeeded"], FAILED: ["fail", "✕", "failed"], KILLED: ["abort", "■", "aborted"],
    SCHEDULED: ["running", "▶", "scheduled"],
  };

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs || {})) { node.setAttribute(key, String(value)); }
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function html(name, attrs, text) {
    const node = document.createElement(name);
    for (const [key, value] of Object.entries(attrs || {})) { node.setAttribute(key, String(value)); }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // Cut in the middle: the end of a table or file name tells siblings apart (…_000, …_001).
  function truncate(text, max) {
    if (text.length <= max) { return text; }
    const tail = Math.floor((max - 1) / 2);
    return text.slice(0, max - 1 - tail) + "…" + text.slice(text.length - tail);
  }

  function kindOf(node) {
    const data = node.data || {};
    const kind = String(data.kind || node.type || "").toLowerCase();
    if (kind === "pipeline") { return "job"; }
    if (kind === "entity") { return "other"; }
    return COLOURED_KINDS.has(kind) ? kind : "other";
  }

  function kindLabel(node) {
    const kind = String((node.data || {}).kind || node.type || "").toLowerCase();
    return KIND_LABELS[kind] || (kind ? kind.charAt(0).toUpperCase() + kind.slice(1) : "Node");
  }

  // A declared entity's title reads best; an observed dataset's title is "<namespace>/<name>", whose
  // namespace every table of a database shares, so its name is shown instead.
  function nameOf(node) {
    const data = node.data || {};
    if ((node.type === "DATASET" || node.type === "JOB") && (!data.entity || data.lifecycle === "observed")) {
      return String(data.name || node.id);
    }
    return String(data.title || data.name || node.id);
  }

  function stateOf(node) {
    const run = (node.data || {}).lastRun;
    if (!run || !run.state) { return ["none", "○", "no run recorded"]; }
    return STATES[String(run.state).toUpperCase()] || ["running", "▶", String(run.state).toLowerCase()];
  }

  // Jobs, datasets (through the job that wrote them) and MLflow runs have a last run; other entities do not.
  function runs(node) {
    return Boolean((node.data || {}).lastRun) || ["JOB", "DATASET", "RUN"].includes(node.type);
  }

  function formatTime(value) {
    if (!value) { return "—"; }
    const when = new Date(value);
    if (isNaN(when.getTime())) { return String(value); }
    return when.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function formatDuration(seconds) {
    if (seconds === null || seconds === undefined || seconds === "") { return "—"; }
    const s = Number(seconds);
    if (!isFinite(s)) { return String(seconds); }
    if (s < 60) { return s.toFixed(s < 10 ? 1 : 0) + " s"; }
    if (s < 3600) { return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s"; }
    return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " min";
  }

  // Column-lineage node ids are datasetField:<namespace>:<name>:<field>; the dataset is everything
  // before the last colon (the namespace itself may hold "://").
  function fieldParts(node) {
    const data = node.data || {};
    const rest = node.id.replace(/^datasetField:/, "");
    const cut = rest.lastIndexOf(":");
    const field = data.field || rest.slice(cut + 1);
    const dataset = data.dataset || "dataset:" + (data.namespace && data.name ? data.namespace + ":" + data.name : rest.slice(0, cut));
    return { field: String(field), dataset: dataset, datasetName: String(data.name || dataset) };
  }

  // The API's error body is {"error": {"status", "message"}} (DRF's {"detail"} elsewhere).
  function errorText(body) {
    if (body && body.error && body.error.message) { return String(body.error.message); }
    return body && body.detail ? String(body.detail) : "";
  }

  class LineageGraph {
    constructor(root) {
      this.root = root;
      this.rootId = root.dataset.root;
      this.api = root.dataset.api;
      this.columnsApi = root.dataset.columnsApi;
      this.page = root.dataset.page;
      this.svg = root.querySelector("svg");
      this.canvas = root.querySelector("[data-lineage-canvas]");
      this.panel = root.querySelector("[data-lineage-panel]");
      this.status = root.querySelector("[data-lineage-status]");
      this.empty = root.querySelector("[data-lineage-empty]");
      this.legend = root.querySelector(".lineage-legend");
      this.scale = 1;
      this.userZoomed = false; // the reader zoomed with − or +: no automatic zoom until they press Fit
      this.direction = "both";
      this.reset();
      this.wire();
      this.load(this.rootId, this.direction, true);
    }

    reset() {
      this.nodes = new Map();      // id -> {id, type, data, ins: Set, outs: Set}
      this.expanded = new Map();   // id -> Set of "upstream" / "downstream"
      this.hidden = 0;
      this.selected = null;
      this.focusId = this.rootId;
      this.columnHits = new Map(); // dataset node id -> [field names] of the picked column's lineage
      this.pending = 0;
      this.generation = (this.generation || 0) + 1;
    }

    wire() {
      this.root.querySelectorAll("[data-lineage-direction] input").forEach((input) => {
        input.addEventListener("change", () => {
          if (!input.checked) { return; }
          this.direction = input.value;
          this.closePanel(false);
          this.reset();
          this.load(this.rootId, this.direction, true);
        });
      });
      const colour = this.root.querySelector("[data-lineage-colour]");
      colour.addEventListener("change", () => { this.root.classList.toggle("by-state", colour.value === "state"); });
      this.root.querySelectorAll("[data-lineage-zoom]").forEach((button) => {
        button.addEventListener("click", () => this.zoom(button.dataset.lineageZoom));
      });
      this.svg.addEventListener("click", (event) => {
        const g = event.target.closest("[data-id]");
        if (g && !this.dragged) { this.activate(g.dataset.id); }
      });
      this.svg.addEventListener("keydown", (event) => this.onKey(event));
      this.svg.addEventListener("focusin", (event) => {
        const g = event.target.closest("[data-id]");
        if (g) { this.setFocus(g.dataset.id, false); }
      });
      this.panel.addEventListener("keydown", (event) => {
        if (event.key === "Escape") { event.preventDefault(); this.closePanel(true); }
      });
      this.panel.addEventListener("click", (event) => {
        const target = event.target.closest("button");
        if (!target) { return; }
        if (target.dataset.close !== undefined) { this.closePanel(true); }
        if (target.dataset.column) { this.pickColumn(target.dataset.node, target.dataset.column, target); }
        if (target.dataset.goto) { this.setFocus(target.dataset.goto, true); }
      });
      // Drag the background to pan (the canvas also scrolls with the wheel and the scroll bars).
      let start = null;
      this.canvas.addEventListener("pointerdown", (event) => {
        if (event.button !== 0) { return; }
        start = { x: event.clientX, y: event.clientY, left: this.canvas.scrollLeft, top: this.canvas.scrollTop };
        this.dragged = false;
      });
      this.canvas.addEventListener("pointermove", (event) => {
        if (!start) { return; }
        const dx = event.clientX - start.x, dy = event.clientY - start.y;
        if (Math.abs(dx) + Math.abs(dy) > 4) { this.dragged = true; this.canvas.classList.add("panning"); }
        if (this.dragged) { this.canvas.scrollLeft = start.left - dx; this.canvas.scrollTop = start.top - dy; }
      });
      const stop = () => {
        start = null; this.canvas.classList.remove("panning");
        setTimeout(() => { this.dragged = false; }, 0);
      };
      this.canvas.addEventListener("pointerup", stop);
      this.canvas.addEventListener("pointerleave", stop);
    }

    // --- data -----------------------------------------------------------------------------------

    url(nodeId, direction) {
      const query = new URLSearchParams({ nodeId: nodeId, depth: "1", direction: direction });
      return this.api + "?" + query.toString();
    }

    async load(nodeId, direction, isRoot) {
      const generation = this.generation;
      this.pending += 1;
      this.root.setAttribute("aria-busy", "true");
      this.say(isRoot ? "Loading the lineage graph…" : "Loading the neighbours of " + this.label(nodeId) + "…");
      let response;
      try {
        response = await fetch(this.url(nodeId, direction), {
          credentials: "same-origin", headers: { Accept: "application/json" },
        });
      } catch (error) {
        this.failed(generation, "The lineage graph could not be loaded (network error). Try again.");
        return;
      }
      if (generation !== this.generation) { return; }
      this.pending -= 1;
      this.root.setAttribute("aria-busy", this.pending > 0 ? "true" : "false");
      if (response.status === 404 && isRoot) { this.showEmpty(); return; }
      if (!response.ok) {
        let detail = "";
        try { detail = errorText(await response.json()); } catch (error) { detail = ""; }
        this.failed(generation, "The lineage graph could not be loaded (" + response.status + (detail ? ": " + detail : "") + ").");
        return;
      }
      const body = await response.json();
      if (generation !== this.generation) { return; }
      this.merge(body);
      const done = this.expanded.get(nodeId) || new Set();
      (direction === "both" ? ["upstream", "downstream"] : [direction]).forEach((d) => done.add(d));
      this.expanded.set(nodeId, done);
      if (isRoot && this.isEmpty()) { this.showEmpty(); return; }
      this.empty.hidden = true;
      this.legend.hidden = false;
      this.canvas.hidden = false;
      this.render();
      if (isRoot) {
        this.firstView();
      } else {
        this.revealAround(nodeId, (body.graph || []).map((n) => n.id));
      }
      this.report();
    }

    failed(generation, message) {
      if (generation !== this.generation) { return; }
      this.pending = Math.max(0, this.pending - 1);
      this.root.setAttribute("aria-busy", "false");
      this.status.classList.add("error-text");
      this.status.setAttribute("role", "alert");
      this.status.textContent = message;
    }

    merge(body) {
      for (const item of body.graph || []) {
        let node = this.nodes.get(item.id);
        if (!node) {
          node = { id: item.id, type: item.type, data: item.data || {}, ins: new Set(), outs: new Set() };
          this.nodes.set(item.id, node);
        } else if (item.data) {
          node.data = Object.assign({}, node.data, item.data);
        }
        for (const edge of item.inEdges || []) { node.ins.add(edge.origin); }
        for (const edge of item.outEdges || []) { node.outs.add(edge.destination); }
      }
      // An edge named by one end only (the other end's node came in an earlier answer) counts for both.
      for (const node of this.nodes.values()) {
        for (const id of node.outs) { const other = this.nodes.get(id); if (other) { other.ins.add(node.id); } }
        for (const id of node.ins) { const other = this.nodes.get(id); if (other) { other.outs.add(node.id); } }
      }
      if (body.root && body.root !== this.rootId && !this.nodes.has(this.rootId) && this.nodes.has(body.root)) {
        this.rootId = body.root; // asked for an entity id that is one node with its dataset/job id
        this.focusId = body.root;
      }
      this.hidden = Math.max(this.hidden, Number(body.hidden) || 0);
    }

    isEmpty() {
      const root = this.nodes.get(this.rootId);
      return this.nodes.size <= 1 && (!root || (root.ins.size === 0 && root.outs.size === 0));
    }

    showEmpty() {
      this.canvas.hidden = true;
      this.legend.hidden = true;
      if (this.direction === "both") {
        this.empty.hidden = false;
        this.say(this.hidden ? this.hiddenText() : "No lineage recorded for this entity.");
      } else {
        this.empty.hidden = true;
        this.say("Nothing " + this.direction + " of this entity." + (this.hidden ? " " + this.hiddenText() : ""));
      }
    }

    hiddenText() {
      return this.hidden + (this.hidden === 1 ? " node" : " nodes") + " hidden (not visible to you).";
    }

    drawnEdges() {
      const edges = [];
      for (const node of this.nodes.values()) {
        for (const id of node.outs) { if (this.nodes.has(id)) { edges.push([node.id, id]); } }
      }
      return edges;
    }

    // Neighbours named by the graph but not loaded yet, on each side (shown as "+N" and in the label).
    more(node) {
      // The API names only edges between the nodes it returns, so a node not expanded yet may have
      // more neighbours on that side: "+" until it is expanded ("+N" when N are already known).
      let up = 0, down = 0;
      for (const id of node.ins) { if (!this.nodes.has(id)) { up += 1; } }
      for (const id of node.outs) { if (!this.nodes.has(id)) { down += 1; } }
      const done = this.expanded.get(node.id) || new Set();
      return {
        up: this.direction === "downstream" ? 0 : up, down: this.direction === "upstream" ? 0 : down,
        upUnknown: !done.has("upstream") && this.direction !== "downstream",
        downUnknown: !done.has("downstream") && this.direction !== "upstream",
      };
    }

    // --- layout ---------------------------------------------------------------------------------

    layout() {
      const rank = new Map([[this.rootId, 0]]);
      const queue = [this.rootId];
      while (queue.length) {
        const id = queue.shift();
        const node = this.nodes.get(id);
        if (!node) { continue; }
        for (const next of node.outs) {
          if (this.nodes.has(next) && !rank.has(next)) { rank.set(next, rank.get(id) + 1); queue.push(next); }
        }
        for (const prev of node.ins) {
          if (this.nodes.has(prev) && !rank.has(prev)) { rank.set(prev, rank.get(id) - 1); queue.push(prev); }
        }
      }
      for (const id of this.nodes.keys()) { if (!rank.has(id)) { rank.set(id, 0); } }
      const layers = new Map();
      for (const [id, r] of rank) {
        if (!layers.has(r)) { layers.set(r, []); }
        layers.get(r).push(id);
      }
      const ranks = [...layers.keys()].sort((a, b) => a - b);
      // Fewer crossings: order each column by the mean position of its neighbours in the column
      // nearer the root (two sweeps outwards from the root).
      const index = new Map();
      const place = (r) => layers.get(r).forEach((id, i) => index.set(id, i));
      ranks.forEach(place);
      for (let sweep = 0; sweep < 2; sweep += 1) {
        for (const r of ranks) {
          if (r === 0) { continue; }
          const nearer = r > 0 ? r - 1 : r + 1;
          const key = new Map();
          for (const id of layers.get(r)) {
            const node = this.nodes.get(id);
            const near = [...node.ins, ...node.outs].filter((n) => rank.get(n) === nearer && index.has(n));
            key.set(id, near.length ? near.reduce((s, n) => s + index.get(n), 0) / near.length : index.get(id));
          }
          layers.get(r).sort((a, b) => key.get(a) - key.get(b) || index.get(a) - index.get(b));
          place(r);
        }
      }
      // A column taller than MAX_ROWS wraps into side-by-side sub-columns (the first one nearest the
      // root): a hub with 150 inputs is a block to scan, not a strip 10,000 px high. Sub-columns are
      // staggered by half a row so the edges of the outer ones run between the boxes of the inner ones.
      const wraps = new Map(ranks.map((r) => [r, Math.ceil(layers.get(r).length / MAX_ROWS)]));
      const rows = new Map(ranks.map((r) => [r, Math.ceil(layers.get(r).length / wraps.get(r))]));
      const tallest = Math.max(...ranks.map((r) => rows.get(r) + (wraps.get(r) > 1 ? 0.5 : 0)));
      const pos = new Map();
      let x = PAD;
      for (const r of ranks) {
        const column = layers.get(r), k = wraps.get(r), n = rows.get(r);
        const offset = ((tallest - n - (k > 1 ? 0.5 : 0)) * (H + ROW_GAP)) / 2;
        column.forEach((id, i) => {
          const sub = Math.floor(i / n), row = i % n;
          const slot = r < 0 ? k - 1 - sub : sub; // upstream: sub-column 0 is the rightmost
          pos.set(id, {
            x: x + slot * (W + SUB_GAP), y: PAD + offset + row * (H + ROW_GAP) + (sub % 2 ? (H + ROW_GAP) / 2 : 0),
            rank: r, row: i,
          });
        });
        x += k * W + (k - 1) * SUB_GAP + COL_GAP;
      }
      this.layers = layers;
      this.rank = rank;
      this.pos = pos;
      this.size = {
        width: x - COL_GAP + PAD,
        height: PAD * 2 + tallest * (H + ROW_GAP) - ROW_GAP,
      };
    }

    // --- drawing --------------------------------------------------------------------------------

    render() {
      const hadFocus = this.svg.contains(document.activeElement);
      this.layout();
      if (!this.nodes.has(this.focusId)) { this.focusId = this.rootId; }
      const svg = this.svg;
      svg.replaceChildren();
      svg.setAttribute("viewBox", "0 0 " + this.size.width + " " + this.size.height);
      this.applyScale();
      const defs = el("defs");
      const marker = el("marker", { id: "lineage-arrow", viewBox: "0 0 10 10", refX: "10", refY: "5",
        markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" });
      marker.appendChild(el("path", { d: "M0,0 L10,5 L0,10 z", class: "lineage-arrowhead" }));
      defs.appendChild(marker);
      svg.appendChild(defs);
      const edgeLayer = el("g", { class: "lineage-edges", "aria-hidden": "true" });
      for (const [from, to] of this.drawnEdges()) {
        const a = this.pos.get(from), b = this.pos.get(to);
        let d;
        if (b.x > a.x) {
          const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mid = (x1 + x2) / 2;
          d = "M" + x1 + "," + y1 + " C" + mid + "," + y1 + " " + mid + "," + y2 + " " + x2 + "," + y2;
        } else { // a cycle or a same-column edge: loop around under the boxes
          const x1 = a.x + W / 2, y1 = a.y + H, x2 = b.x + W / 2, y2 = b.y + H, low = Math.max(y1, y2) + ROW_GAP;
          d = "M" + x1 + "," + y1 + " C" + x1 + "," + low + " " + x2 + "," + low + " " + x2 + "," + y2;
        }
        const hit = this.columnHits.has(from) && this.columnHits.has(to);
        edgeLayer.appendChild(el("path", { d: d, class: "lineage-edge" + (hit ? " col-hit" : ""),
          "marker-end": "url(#lineage-arrow)", "data-from": from, "data-to": to }));
      }
      svg.appendChild(edgeLayer);
      const nodeLayer = el("g", { class: "lineage-nodes" });
      for (const node of this.nodes.values()) { nodeLayer.appendChild(this.drawNode(node)); }
      svg.appendChild(nodeLayer);
      if (hadFocus) { this.setFocus(this.focusId, true); }
    }

    drawNode(node) {
      const p = this.pos.get(node.id);
      const kind = kindOf(node);
      const [stateKey, stateIcon, stateText] = stateOf(node);
      const more = this.more(node);
      const name = nameOf(node);
      const classes = ["lnode", "kind-" + kind, "state-" + stateKey];
      if (node.id === this.rootId) { classes.push("root"); }
      if (node.id === this.selected) { classes.push("selected"); }
      if (this.columnHits.has(node.id)) { classes.push("col-hit"); }
      const parts = [kindLabel(node) + " " + name];
      if (node.id === this.rootId) { parts.push("the entity of this page"); }
      if (runs(node)) { parts.push("last run " + stateText); }
      if (this.columnHits.has(node.id)) { parts.push("column lineage: " + this.columnHits.get(node.id).join(", ")); }
      if (more.up) { parts.push(more.up + " more upstream"); } else if (more.upUnknown) { parts.push("upstream not loaded"); }
      if (more.down) { parts.push(more.down + " more downstream"); } else if (more.downUnknown) { parts.push("downstream not loaded"); }
      const g = el("g", {
        class: classes.join(" "), transform: "translate(" + p.x + "," + p.y + ")", "data-id": node.id,
        role: "button", tabindex: node.id === this.focusId ? "0" : "-1", "aria-label": parts.join(", "),
        "aria-pressed": node.id === this.selected ? "true" : "false",
      });
      g.appendChild(el("title", {}, kindLabel(node) + ": " + name + (name !== node.id ? "\n" + node.id : "")));
      g.appendChild(el("rect", { class: "lnode-box", width: W, height: H, rx: 7 }));
      g.appendChild(el("rect", { class: "lnode-band", width: 7, height: H, rx: 3 }));
      g.appendChild(el("text", { class: "lnode-kind", x: 16, y: 18 }, kindLabel(node)));
      if (runs(node)) {
        const state = el("text", { class: "lnode-state", x: W - 10, y: 18, "text-anchor": "end" });
        state.appendChild(el("tspan", { class: "state-icon" }, stateIcon));
        state.appendChild(el("tspan", {}, " " + (stateKey === "none" ? "no run" : stateText)));
        g.appendChild(state);
      }
      g.appendChild(el("text", { class: "lnode-name", x: 16, y: 38 }, truncate(name, NAME_CHARS)));
      if (more.up || more.upUnknown) { g.appendChild(this.chip(-12, more.up)); }
      if (more.down || more.downUnknown) { g.appendChild(this.chip(W + 12, more.down)); }
      return g;
    }

    chip(x, count) {
      const chip = el("g", { class: "lnode-more", transform: "translate(" + x + ",10)", "aria-hidden": "true" }); // above the edges, which meet the box at mid-height
      chip.appendChild(el("rect", { x: -12, y: -9, width: 24, height: 18, rx: 9 }));
      chip.appendChild(el("text", { "text-anchor": "middle", y: 4 }, count ? "+" + (count > 99 ? "99" : count) : "+"));
      return chip;
    }

    applyScale() {
      this.svg.setAttribute("width", String(Math.round(this.size.width * this.scale)));
      this.svg.setAttribute("height", String(Math.round(this.size.height * this.scale)));
    }

    zoom(how) {
      if (!this.size) { return; }
      this.userZoomed = how !== "fit";
      if (how === "in") { this.scale = Math.min(2, this.scale * 1.25); }
      if (how === "out") { this.scale = Math.max(0.2, this.scale / 1.25); }
      if (how === "fit") {
        const fit = Math.min(this.canvas.clientWidth / this.size.width, this.canvas.clientHeight / this.size.height);
        this.scale = Math.max(0.2, Math.min(1, fit));
      }
      this.applyScale();
      this.reveal(this.focusId);
    }

    centreOn(id) {
      const p = this.pos.get(id);
      if (!p) { return; }
      this.canvas.scrollLeft = Math.max(0, (p.x + W / 2) * this.scale - this.canvas.clientWidth / 2);
      this.canvas.scrollTop = Math.max(0, (p.y + H / 2) * this.scale - this.canvas.clientHeight / 2);
    }

    reveal(id) {
      const p = this.pos.get(id);
      if (!p) { return; }
      const left = p.x * this.scale, top = p.y * this.scale, right = left + W * this.scale, bottom = top + H * this.scale;
      const c = this.canvas;
      if (left < c.scrollLeft || right > c.scrollLeft + c.clientWidth || top < c.scrollTop || bottom > c.scrollTop + c.clientHeight) {
        this.centreOn(id);
      }
    }

    // The smallest scale an automatic fit goes to: MIN_REVEAL_SCALE on a canvas wide enough to show a node
    // with a column on each side at that scale; on a narrower one (a phone) the scale that shows those three
    // columns, not below MIN_NARROW_SCALE — at 0.6 a phone's canvas holds one node and its edges run off it.
    minScale() {
      const three = 3 * W + 2 * COL_GAP + 2 * CHIP_OUT + 24;
      return Math.max(MIN_NARROW_SCALE, Math.min(MIN_REVEAL_SCALE, this.canvas.clientWidth / three));
    }

    // The first drawing: the whole graph when it fits at minScale or more, else the root with the
    // neighbours loaded with it, centred (zoomed out to minScale at most; the root alone, centred, when
    // even they do not fit).
    firstView() {
      if (this.fitWhole()) { this.centreOn(this.rootId); return; }
      const root = this.nodes.get(this.rootId);
      if (!root) { return; }
      const near = [...(this.direction === "downstream" ? [] : root.ins), ...(this.direction === "upstream" ? [] : root.outs)]
        .filter((id) => this.nodes.has(id));
      this.revealAround(this.rootId, near, true);
    }

    // Unless the reader zoomed by hand: the whole graph at the largest scale (up to 1) that shows all
    // of it, when that is not below MIN_REVEAL_SCALE — so the drawing zooms back in as well as out,
    // when a direction shows fewer nodes or the details panel closes. False: it does not fit.
    fitWhole() {
      if (this.userZoomed || !this.size) { return false; }
      const c = this.canvas;
      const fit = Math.min(c.clientWidth / this.size.width, c.clientHeight / this.size.height);
      if (fit < this.minScale()) { return false; }
      const scale = Math.min(1, fit);
      if (scale !== this.scale) { this.scale = scale; this.applyScale(); }
      return true;
    }

    // After an expansion: the whole graph when it fits (`fitWhole`), else the node and the neighbours
    // it brought in (with their "+" chips), scrolled into view as little as needed; zoomed out first
    // (not below MIN_REVEAL_SCALE) when they do not fit the canvas at this scale. A neighbourhood too
    // wide even then: the node alone (Fit shows everything).
    revealAround(id, ids, centre) {
      const boxes = [id].concat(ids).map((k) => this.pos.get(k)).filter(Boolean);
      if (!boxes.length) { return; }
      this.fitWhole();
      const c = this.canvas, pad = 12;
      const x0 = Math.max(0, Math.min(...boxes.map((p) => p.x)) - CHIP_OUT), y0 = Math.min(...boxes.map((p) => p.y));
      const x1 = Math.min(this.size.width, Math.max(...boxes.map((p) => p.x)) + W + CHIP_OUT);
      const y1 = Math.max(...boxes.map((p) => p.y)) + H;
      const fits = Math.min((c.clientWidth - 2 * pad) / (x1 - x0), (c.clientHeight - 2 * pad) / (y1 - y0));
      if (fits < this.minScale()) {
        if (centre && !this.userZoomed && this.scale > this.minScale()) { this.scale = this.minScale(); this.applyScale(); }
        if (centre) { this.centreOn(id); } else { this.reveal(id); }
        return;
      }
      if (fits < this.scale) { this.scale = fits; this.applyScale(); }
      const s = this.scale;
      if (centre) { // the neighbourhood's middle in the canvas' middle (as far as the scroll range allows)
        c.scrollLeft = Math.max(0, (x0 + x1) / 2 * s - c.clientWidth / 2);
        c.scrollTop = Math.max(0, (y0 + y1) / 2 * s - c.clientHeight / 2);
        return;
      }
      const left = x0 * s - pad, top = y0 * s - pad, right = x1 * s + pad, bottom = y1 * s + pad;
      if (left < c.scrollLeft) { c.scrollLeft = Math.max(0, left); } else if (right > c.scrollLeft + c.clientWidth) { c.scrollLeft = right - c.clientWidth; }
      if (top < c.scrollTop) { c.scrollTop = Math.max(0, top); } else if (bottom > c.scrollTop + c.clientHeight) { c.scrollTop = bottom - c.clientHeight; }
    }

    // --- interaction ----------------------------------------------------------------------------

    nodeEl(id) {
      return [...this.svg.querySelectorAll("[data-id]")].find((g) => g.dataset.id === id) || null;
    }

    setFocus(id, move) {
      if (!this.nodes.has(id)) { return; }
      this.svg.querySelectorAll("[data-id][tabindex='0']").forEach((g) => g.setAttribute("tabindex", "-1"));
      const g = this.nodeEl(id);
      this.focusId = id;
      if (!g) { return; }
      g.setAttribute("tabindex", "0");
      if (move) {
        this.reveal(id);
        g.focus({ preventScroll: true });
      }
    }

    activate(id) {
      this.selected = id;
      this.setFocus(id, false);
      const wanted = this.direction === "both" ? ["upstream", "downstream"] : [this.direction];
      const done = this.expanded.get(id) || new Set();
      this.openPanel(id);
      if (wanted.some((d) => !done.has(d))) {
        this.load(id, this.direction, false);
      } else {
        // Expanded before: show it with its neighbours as after its expansion (the details panel may
        // have just narrowed the canvas, and the reader may have scrolled away since).
        const node = this.nodes.get(id);
        const near = [...(this.direction === "downstream" ? [] : node.ins), ...(this.direction === "upstream" ? [] : node.outs)];
        this.render();
        this.revealAround(id, near);
        this.report();
      }
    }

    onKey(event) {
      const g = event.target.closest("[data-id]");
      if (!g) { return; }
      const id = g.dataset.id;
      const p = this.pos.get(id);
      let next = null;
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        this.activate(id);
        return;
      }
      if (event.key === "Escape") { event.preventDefault(); this.closePanel(true); return; }
      if (event.key === "+" || event.key === "=") { event.preventDefault(); this.zoom("in"); return; }
      if (event.key === "-") { event.preventDefault(); this.zoom("out"); return; }
      if (event.key === "Home") { next = this.rootId; }
      const node = this.nodes.get(id);
      const nearest = (ids) => ids.filter((n) => this.pos.has(n))
        .sort((a, b) => Math.abs(this.pos.get(a).y - p.y) - Math.abs(this.pos.get(b).y - p.y))[0] || null;
      if (event.key === "ArrowRight") { next = nearest([...node.outs]); }
      if (event.key === "ArrowLeft") { next = nearest([...node.ins]); }
      if (event.key === "ArrowUp" || event.key === "ArrowDown") {
        const column = this.layers.get(p.rank);
        next = column[p.row + (event.key === "ArrowUp" ? -1 : 1)] || null;
      }
      if (next !== null || event.key.startsWith("Arrow") || event.key === "Home") { event.preventDefault(); }
      if (next) { this.setFocus(next, true); }
    }

    label(id) {
      const node = this.nodes.get(id);
      return node ? nameOf(node) : id;
    }

    report() {
      if (this.pending > 0) { return; }
      const edges = this.drawnEdges().length;
      const n = this.nodes.size;
      let text = n + (n === 1 ? " node" : " nodes") + ", " + edges + (edges === 1 ? " edge" : " edges") + " shown";
      if (this.direction !== "both") { text += " (" + this.direction + " only)"; }
      text += ".";
      if (this.hidden) { text += " " + this.hiddenText(); }
      this.say(text);
    }

    say(text) {
      this.status.classList.remove("error-text");
      this.status.setAttribute("role", "status");
      this.status.textContent = text;
    }

    // --- the side panel -------------------------------------------------------------------------

    openPanel(id) {
      const node = this.nodes.get(id);
      if (!node) { return; }
      const data = node.data || {};
      const panel = this.panel;
      panel.replaceChildren();
      const head = html("div", { class: "lineage-panel-head" });
      const title = html("h3", { id: "lineage-panel-title" }, nameOf(node));
      head.appendChild(title);
      head.appendChild(html("button", { type: "button", class: "button small", "data-close": "", "aria-label": "Close the details" }, "✕"));
      panel.appendChild(head);
      const kind = html("p", { class: "lineage-panel-kind" });
      kind.appendChild(html("span", { class: "kind kind-" + kindOf(node) }, kindLabel(node)));
      if (data.lifecycle) { kind.appendChild(document.createTextNode(" ")); kind.appendChild(html("span", { class: "badge" }, data.lifecycle)); }
      panel.appendChild(kind);
      const facts = html("dl", { class: "lineage-facts" });
      const fact = (label, value) => {
        facts.appendChild(html("dt", {}, label));
        const dd = html("dd");
        if (value instanceof Node) { dd.appendChild(value); } else { dd.textContent = value === undefined || value === null || value === "" ? "—" : String(value); }
        facts.appendChild(dd);
      };
      fact("Id", html("code", {}, node.id));
      if (data.namespace) { fact("Namespace", data.namespace); }
      fact("Owner", data.owner || data.ownerTeam || data.team || "Unowned");
      const run = data.lastRun;
      if (run) {
        const [key, icon, text] = stateOf(node);
        const state = html("span", { class: "state-text state-" + key });
        state.appendChild(html("span", { class: "state-icon", "aria-hidden": "true" }, icon));
        state.appendChild(document.createTextNode(" " + text.charAt(0).toUpperCase() + text.slice(1)));
        fact("Last run", state);
        fact("Started", formatTime(run.startedAt));
        fact("Ended", formatTime(run.endedAt));
        fact("Duration", formatDuration(run.durationSeconds));
        if (run.errorMessage) { fact("Error", run.errorMessage); }
      } else if (node.type === "JOB" || node.type === "DATASET") {
        fact("Last run", "None recorded");
      }
      panel.appendChild(facts);
      const links = html("p", { class: "lineage-panel-links" });
      if (data.url) { links.appendChild(html("a", { href: data.url }, "Open the entity page")); }
      if (node.id !== this.rootId) {
        if (links.childNodes.length) { links.appendChild(document.createTextNode(" · ")); }
        links.appendChild(html("a", { href: this.page + "?nodeId=" + encodeURIComponent(node.id) }, "Lineage from here"));
      }
      if (links.childNodes.length) { panel.appendChild(links); }
      this.schemaSection(node);
      this.qualitySection(data.dataQualityMetrics);
      panel.hidden = false;
      this.root.classList.add("with-panel");
    }

    schemaSection(node) {
      const fields = (node.data || {}).schema || (node.data || {}).fields;
      if (!Array.isArray(fields) || !fields.length) { return; }
      const section = html("section", { class: "lineage-schema", "aria-labelledby": "lineage-schema-title" });
      section.appendChild(html("h4", { id: "lineage-schema-title" }, "Schema (" + fields.length + (fields.length === 1 ? " field)" : " fields)")));
      const withColumns = Boolean(node.data.hasColumnLineage) && node.type === "DATASET";
      if (withColumns) { section.appendChild(html("p", { class: "muted" }, "Column lineage is recorded: trace a column to see where it comes from and where it goes.")); }
      const table = html("table", { class: "table compact" });
      const head = html("tr");
      ["Field", "Type"].concat(withColumns ? ["Column lineage"] : []).forEach((t) => head.appendChild(html("th", { scope: "col" }, t)));
      table.appendChild(html("thead")).appendChild(head);
      const body = html("tbody");
      for (const field of fields.slice(0, 200)) {
        const row = html("tr");
        row.appendChild(html("td", {}, field.name));
        row.appendChild(html("td", {}, field.type || "—"));
        if (withColumns) {
          const cell = html("td");
          cell.appendChild(html("button", { type: "button", class: "button small", "data-column": field.name, "data-node": node.id,
            "aria-label": "Trace column " + field.name }, "Trace"));
          row.appendChild(cell);
        }
        body.appendChild(row);
      }
      table.appendChild(body);
      const wrap = html("div", { class: "table-scroll" });
      wrap.appendChild(table);
      section.appendChild(wrap);
      section.appendChild(html("div", { class: "lineage-columns", "data-lineage-columns": "", "aria-live": "polite" }));
      this.panel.appendChild(section);
    }

    qualitySection(metrics) {
      if (!metrics || typeof metrics !== "object" || !Object.keys(metrics).length) { return; }
      const section = html("section", { class: "lineage-quality", "aria-labelledby": "lineage-quality-title" });
      section.appendChild(html("h4", { id: "lineage-quality-title" }, "Quality metrics"));
      const facts = html("dl", { class: "lineage-facts" });
      const columns = metrics.columnMetrics;
      for (const [key, value] of Object.entries(metrics)) {
        if (key === "columnMetrics" || key.startsWith("_") || value === null || value === undefined || typeof value === "object") { continue; }
        facts.appendChild(html("dt", {}, key.replace(/([A-Z])/g, " $1").toLowerCase()));
        facts.appendChild(html("dd", {}, typeof value === "number" ? value.toLocaleString("en") : value));
      }
      if (facts.childNodes.length) { section.appendChild(facts); }
      if (columns && typeof columns === "object" && Object.keys(columns).length) {
        const table = html("table", { class: "table compact" });
        const head = html("tr");
        ["Column", "Nulls", "Distinct", "Min", "Max"].forEach((t) => head.appendChild(html("th", { scope: "col" }, t)));
        table.appendChild(html("thead")).appendChild(head);
        const body = html("tbody");
        for (const [column, m] of Object.entries(columns).slice(0, 100)) {
          const row = html("tr");
          row.appendChild(html("td", {}, column));
          for (const key of ["nullCount", "distinctCount", "min", "max"]) {
            const v = m && m[key];
            row.appendChild(html("td", { class: "num" }, v === undefined || v === null ? "—" : (typeof v === "number" ? v.toLocaleString("en") : v)));
          }
          body.appendChild(row);
        }
        table.appendChild(body);
        const wrap = html("div", { class: "table-scroll" });
        wrap.appendChild(table);
        section.appendChild(wrap);
      }
      this.panel.appendChild(section);
    }

    closePanel(returnFocus) {
      if (this.panel.hidden) { return; }
      this.panel.hidden = true;
      this.root.classList.remove("with-panel");
      const had = this.selected;
      this.selected = null;
      if (this.columnHits.size) { this.columnHits = new Map(); }
      if (this.nodes.size) {
        this.render();
        this.fitWhole(); // the canvas is wider now: the graph may fit at a larger scale
      }
      if (returnFocus && had) { this.setFocus(had, true); }
    }

    // --- column lineage -------------------------------------------------------------------------

    async pickColumn(nodeId, column, button) {
      const out = this.panel.querySelector("[data-lineage-columns]");
      out.replaceChildren(html("p", { class: "muted" }, "Tracing " + column + "…"));
      this.panel.querySelectorAll("[data-column]").forEach((b) => b.setAttribute("aria-pressed", b === button ? "true" : "false"));
      const query = new URLSearchParams({ nodeId: nodeId, column: column, direction: "both", depth: "10" });
      let body;
      try {
        const response = await fetch(this.columnsApi + "?" + query.toString(), {
          credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) {
          let detail = "";
          try { detail = errorText(await response.json()); } catch (error) { detail = ""; }
          out.replaceChildren(html("p", { class: "error-text", role: "alert" }, "Column lineage could not be loaded (" + response.status + (detail ? ": " + detail : "") + ")."));
          return;
        }
        body = await response.json();
      } catch (error) {
        out.replaceChildren(html("p", { class: "error-text", role: "alert" }, "Column lineage could not be loaded (network error)."));
        return;
      }
      const fields = new Map((body.graph || []).map((f) => [f.id, f]));
      const start = [...fields.values()].find((f) => { const p = fieldParts(f); return p.dataset === nodeId && p.field === column; });
      const walk = (key, edgeEnd) => {
        const seen = new Set();
        const queue = start ? [start] : [];
        const found = [];
        while (queue.length) {
          const f = queue.shift();
          for (const edge of f[key] || []) {
            const next = fields.get(edge[edgeEnd]);
            if (next && !seen.has(next.id) && next !== start) { seen.add(next.id); found.push(next); queue.push(next); }
          }
        }
        return found;
      };
      const upstream = walk("inEdges", "origin");
      const downstream = walk("outEdges", "destination");
      this.columnHits = new Map();
      const hit = (f) => {
        const p = fieldParts(f);
        if (!this.columnHits.has(p.dataset)) { this.columnHits.set(p.dataset, []); }
        this.columnHits.get(p.dataset).push(p.field);
      };
      [start, ...upstream, ...downstream].filter(Boolean).forEach(hit);
      out.replaceChildren();
      out.appendChild(html("h5", {}, "Column lineage of " + column));
      // A transformation is reported on the field it flows into, naming the field it comes `from`.
      const from = new Map(), into = new Map();
      for (const f of fields.values()) {
        for (const t of (f.data || {}).transformations || []) {
          const kind = [t.type, t.subtype].filter(Boolean).join("/") + (t.masking ? " (masked)" : "");
          if (!kind) { continue; }
          if (!from.has(t.from)) { from.set(t.from, []); }
          if (!from.get(t.from).includes(kind)) { from.get(t.from).push(kind); }
          if (!into.has(f.id)) { into.set(f.id, []); }
          if (!into.get(f.id).includes(kind)) { into.get(f.id).push(kind); }
        }
      }
      let upstreamSide = true;
      const list = (title, items) => {
        out.appendChild(html("p", { class: "lineage-columns-title" }, title + " (" + items.length + ")"));
        if (!items.length) { out.appendChild(html("p", { class: "muted" }, "None recorded.")); return; }
        const ul = html("ul", { class: "plain lineage-column-list" });
        for (const f of items) {
          const p = fieldParts(f);
          const li = html("li");
          const drawn = this.nodes.has(p.dataset);
          const name = (drawn ? nameOf(this.nodes.get(p.dataset)) : p.datasetName) + " . " + p.field;
          if (drawn) {
            li.appendChild(html("button", { type: "button", class: "linklike", "data-goto": p.dataset }, name));
          } else {
            li.appendChild(html("span", {}, name));
            li.appendChild(html("span", { class: "muted" }, " (not drawn: load its node to see it)"));
          }
          const kinds = (upstreamSide ? from.get(f.id) : into.get(f.id)) || [];
          if (kinds.length) { li.appendChild(html("span", { class: "badge", title: "Transformation" }, kinds.join(", "))); }
          ul.appendChild(li);
        }
        out.appendChild(ul);
      };
      list("← Upstream columns", upstream);
      upstreamSide = false;
      list("Downstream columns →", downstream);
      if (body.hidden) { out.appendChild(html("p", { class: "muted" }, this.hiddenText.call({ hidden: Number(body.hidden) }))); }
      this.render();
      this.report();
    }
  }

  function start() {
    document.querySelectorAll("[data-lineage]").forEach((root) => {
      if (!root.lineage) { root.lineage = new LineageGraph(root); }
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); } else { start(); }
})();
