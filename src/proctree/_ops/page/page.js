// The live page of a proctree program: draws the tree documents (schema
// proctree.tree/1) that the server pushes on "events". Everything is drawn
// from the document; nothing is fetched from anywhere else.
"use strict";
(function () {
  const treeBox = document.getElementById("tree");
  const statusBox = document.getElementById("status");
  const summaryBox = document.getElementById("summary");
  const programBox = document.getElementById("program");
  const filterBox = document.getElementById("filter");
  const PAGE = 200; // children shown under one process before "show more"
  const OPEN_DEPTH = 8; // opened by default down to this depth...
  const OPEN_WIDTH = 100; // ...when a process has at most this many children

  let current = null; // {nodes, orphans, doc}
  let receivedAt = 0;
  const keyIds = new Map(); // "parentKey/name#n" -> small int, stable across documents
  const opened = new Map(); // key -> true/false, what the user chose
  const shown = new Map(); // key -> how many children are shown
  let filterText = "";
  const stats = { documents: 0, renders: [], lastRenderMs: 0 };
  window.proctreePage = stats;

  function keyOf(text) {
    let id = keyIds.get(text);
    if (id === undefined) {
      id = keyIds.size + 1;
      keyIds.set(text, id);
    }
    return id;
  }

  function build(doc) {
    const ps = doc.processes;
    const nodes = new Array(ps.length);
    for (let i = 0; i < ps.length; i++) {
      const p = ps[i];
      const node = { p: p, kids: [], closed: [], key: 0, depth: 0, seen: null, byName: null };
      nodes[i] = node;
      if (p.parent === null) {
        node.key = keyOf("/" + p.name);
      } else {
        const up = nodes[p.parent];
        node.depth = up.depth + 1;
        if (up.seen === null) up.seen = new Map();
        const n = (up.seen.get(p.name) || 0) + 1;
        up.seen.set(p.name, n);
        node.key = keyOf(up.key + "/" + p.name + "#" + n);
        up.kids.push(node);
      }
    }
    const orphans = [];
    for (const c of doc.recently_closed || []) {
      const up = findParent(nodes[0], c.path);
      if (up) up.closed.push(c);
      else orphans.push(c);
    }
    return { nodes: nodes, orphans: orphans, doc: doc };
  }

  function findParent(top, path) {
    const parts = path.split("/");
    if (parts.length < 2 || parts[0] !== top.p.name) return null;
    let node = top;
    for (let i = 1; i < parts.length - 1; i++) {
      if (node.byName === null) {
        node.byName = new Map();
        for (const k of node.kids) if (!node.byName.has(k.p.name)) node.byName.set(k.p.name, k);
      }
      node = node.byName.get(parts[i]);
      if (!node) return null;
    }
    return node;
  }

  function esc(text) {
    return String(text).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  function age(seconds) {
    if (seconds < 60) return seconds.toFixed(1) + "s";
    if (seconds < 3600) return Math.floor(seconds / 60) + "m" + String(Math.floor(seconds % 60)).padStart(2, "0") + "s";
    return Math.floor(seconds / 3600) + "h" + String(Math.floor((seconds % 3600) / 60)).padStart(2, "0") + "m";
  }

  function isOpen(node) {
    const chosen = opened.get(node.key);
    if (chosen !== undefined) return chosen;
    return node.depth < OPEN_DEPTH && node.kids.length + node.closed.length <= OPEN_WIDTH;
  }

  function text(node) {
    const p = node.p;
    return [p.name, p.state, p.kind, p.key || "", p.close_reason || "", p.error || ""].join(" ").toLowerCase();
  }

  function matches() {
    // Which processes to show under a filter: those that match and their ancestors.
    const keep = new Uint8Array(current.nodes.length);
    const ps = current.doc.processes;
    for (let i = current.nodes.length - 1; i >= 0; i--) {
      if (keep[i] || text(current.nodes[i]).indexOf(filterText) >= 0) {
        keep[i] = 1;
        const up = ps[i].parent;
        if (up !== null) keep[up] = 1;
      }
    }
    return keep;
  }

  function liveRow(node, open, hidden) {
    const p = node.p;
    const n = node.kids.length + node.closed.length;
    const toggle = n === 0 ? '<span class="toggle leaf"> </span>'
      : '<span class="toggle" data-key="' + node.key + '">' + (open ? "\u25be" : "\u25b8") + "</span>";
    let html = '<div class="row' + (p.error ? " failed" : "") + '" role="treeitem" data-name="' + esc(p.name)
      + '" data-state="' + p.state + '" style="padding-left:' + (node.depth * 1.4) + 'em">' + toggle
      + '<span class="name">' + esc(p.name) + '</span><span class="state ' + p.state + '">' + p.state + "</span>"
      + '<span class="fact kind">' + esc(p.kind) + "</span>"
      + '<span class="fact up" data-up="' + p.uptime + '">up ' + age(p.uptime) + "</span>";
    if (p.key !== null && p.key !== p.name) html += '<span class="fact key">key ' + esc(p.key) + "</span>";
    if (p.restarts) html += '<span class="fact restarts">restarts ' + p.restarts + "</span>";
    if (p.close_reason) html += '<span class="fact reason">closing: ' + esc(p.close_reason) + "</span>";
    if (p.overran_grace) html += '<span class="fact overrun">forced after its grace</span>';
    if (p.error) html += '<span class="fact error">' + esc(p.error) + "</span>";
    if (!open && n) html += '<span class="count">(' + n + (hidden ? ", " + hidden + " hidden" : "") + " below)</span>";
    return html + "</div>";
  }

  function closedRow(c, depth) {
    let html = '<div class="row closed' + (c.error ? " failed" : "") + '" role="treeitem" data-name="' + esc(c.name)
      + '" data-state="CLOSED" style="padding-left:' + (depth * 1.4) + 'em"><span class="toggle leaf"> </span>'
      + '<span class="name">' + esc(c.name) + '</span><span class="state CLOSED">CLOSED</span>'
      + '<span class="fact">' + age(c.closed_ago) + " ago, lived " + age(c.lifetime) + "</span>";
    if (c.close_reason) html += '<span class="fact reason">' + esc(c.close_reason) + "</span>";
    if (c.overran_grace) html += '<span class="fact overrun">forced after its grace</span>';
    if (c.error) html += '<span class="fact error">' + esc(c.error) + "</span>";
    return html + "</div>";
  }

  function render() {
    if (current === null) return;
    const t0 = performance.now();
    const keep = filterText ? matches() : null;
    const out = [];
    const index = new Map();
    current.nodes.forEach(function (n, i) { index.set(n, i); });
    // An explicit stack: trees may be deeper than the JavaScript call stack.
    const stack = [current.nodes[0]];
    while (stack.length) {
      const item = stack.pop();
      if (item.more !== undefined) {
        out.push('<div class="row" style="padding-left:' + (item.depth * 1.4) + 'em"><span class="toggle leaf"> </span>'
          + '<span class="more" data-more="' + item.key + '">\u2026 ' + item.more + " more: show " + Math.min(PAGE, item.more) + " more</span></div>");
        continue;
      }
      if (item.closedEntry !== undefined) {
        out.push(closedRow(item.closedEntry, item.depth));
        continue;
      }
      const node = item;
      let kids = node.kids;
      let hidden = 0;
      if (keep !== null) {
        const all = kids.length;
        kids = kids.filter(function (k) { return keep[index.get(k)]; });
        hidden = all - kids.length;
      }
      const open = keep !== null ? kids.length > 0 && opened.get(node.key) !== false : isOpen(node);
      out.push(liveRow(node, open, hidden));
      if (!open) continue;
      const limit = shown.get(node.key) || PAGE;
      const later = [];
      for (let i = 0; i < kids.length && i < limit; i++) later.push(kids[i]);
      if (keep === null) {
        for (const c of node.closed) later.push({ closedEntry: c, depth: node.depth + 1 });
      }
      if (kids.length > limit) later.push({ more: kids.length - limit, key: node.key, depth: node.depth + 1 });
      for (let i = later.length - 1; i >= 0; i--) stack.push(later[i]);
    }
    for (const c of current.orphans) out.push(closedRow(c, 1));
    treeBox.innerHTML = out.join("");
    const ms = performance.now() - t0;
    stats.lastRenderMs = ms;
    stats.renders.push(ms);
    if (stats.renders.length > 100) stats.renders.shift();
  }

  function summarise(doc) {
    const counts = {};
    for (const p of doc.processes) counts[p.state] = (counts[p.state] || 0) + 1;
    const parts = Object.keys(counts).sort().map(function (s) { return counts[s] + " " + s.toLowerCase(); });
    summaryBox.textContent = doc.processes.length + " processes: " + parts.join(", ")
      + "; " + (doc.recently_closed || []).length + " closed lately; updated " + new Date().toLocaleTimeString();
    const prog = doc.program || {};
    programBox.textContent = (prog.target || "") + (prog.pid ? " (pid " + prog.pid + ")" : "");
  }

  function show(doc) {
    current = build(doc);
    receivedAt = performance.now();
    stats.documents += 1;
    summarise(doc);
    render();
  }

  function setStatus(kind, textValue) {
    statusBox.className = "status " + kind;
    statusBox.textContent = textValue;
  }

  treeBox.addEventListener("click", function (event) {
    const target = event.target;
    if (!(target instanceof HTMLElement)) return;
    if (target.dataset.key !== undefined) {
      const key = Number(target.dataset.key);
      const node = current.nodes.find(function (n) { return n.key === key; });
      opened.set(key, !(node && (filterText ? opened.get(key) !== false : isOpen(node))));
      render();
    } else if (target.dataset.more !== undefined) {
      const key = Number(target.dataset.more);
      shown.set(key, (shown.get(key) || PAGE) + PAGE);
      render();
    }
  });
  document.getElementById("expand-all").addEventListener("click", function () {
    if (current === null) return;
    for (const n of current.nodes) if (n.kids.length) opened.set(n.key, true);
    render();
  });
  document.getElementById("collapse-all").addEventListener("click", function () {
    if (current === null) return;
    for (const n of current.nodes) if (n.kids.length && n.depth > 0) opened.set(n.key, false);
    render();
  });
  let pending = 0;
  filterBox.addEventListener("input", function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      filterText = filterBox.value.trim().toLowerCase();
      render();
    }, 150);
  });

  // Uptimes move on between documents: count them up here.
  setInterval(function () {
    if (current === null) return;
    const extra = (performance.now() - receivedAt) / 1000;
    for (const el of treeBox.querySelectorAll(".up")) {
      el.textContent = "up " + age(Number(el.dataset.up) + extra);
    }
  }, 1000);

  const events = new EventSource("events");
  events.onopen = function () { setStatus("live", "live"); };
  events.onerror = function () { setStatus("connecting", "disconnected, retrying"); };
  events.addEventListener("tree", function (event) {
    setStatus("live", "live");
    show(JSON.parse(event.data));
  });
  events.addEventListener("gone", function (event) {
    setStatus("gone", "program gone: " + JSON.parse(event.data).error);
  });
})();
