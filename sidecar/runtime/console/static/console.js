// The live page: poll /live.json every 2 seconds and redraw the two tables. Rates are
// differences between two polls (any worker may answer: every one sums all workers).
// Values are set as text (never as HTML).
"use strict";
(function () {
  const sourcesTable = document.getElementById("live-sources");
  if (!sourcesTable) return;
  const reasonsTable = document.getElementById("live-reasons");
  const status = document.getElementById("live-status");
  let previous = null;

  function row(cells) {
    const tr = document.createElement("tr");
    cells.forEach(function (cell) {
      const td = document.createElement("td");
      td.textContent = cell.text;
      if (cell.num) td.className = "num";
      if (cell.cls) td.className += " " + cell.cls;
      tr.appendChild(td);
    });
    return tr;
  }

  function percent(part, whole) {
    return whole > 0 ? (100 * part / whole).toFixed(1) + " %" : "–";
  }

  function redraw(now) {
    const seconds = previous ? now.at - previous.at : 0;
    const before = previous ? previous.sources : {};
    const sourceRows = [];
    const reasonRows = [];
    Object.keys(now.sources).sort().forEach(function (name) {
      const counts = now.sources[name];
      const old = before[name] || { total: 0, denied: 0, would_deny: 0, reasons: [] };
      const rejected = counts.denied + counts.would_deny;
      const deltaTotal = counts.total - old.total;
      const deltaRejected = rejected - (old.denied + old.would_deny);
      const tr = row([
        { text: name },
        { text: counts.total.toFixed(0), num: true, cls: "total" },
        { text: rejected.toFixed(0), num: true },
        { text: percent(rejected, counts.total), num: true },
        { text: seconds > 0 ? (deltaTotal / seconds).toFixed(1) : "–", num: true, cls: "rate" },
        { text: seconds > 0 ? percent(deltaRejected, deltaTotal) : "–", num: true },
      ]);
      tr.dataset.source = name;
      sourceRows.push(tr);
      const oldReasons = {};
      old.reasons.forEach(function (r) { oldReasons[r[0] + "/" + r[1]] = r[2]; });
      counts.reasons.forEach(function (r) {
        const delta = r[2] - (oldReasons[r[0] + "/" + r[1]] || 0);
        reasonRows.push(row([
          { text: name }, { text: r[0] }, { text: r[1] },
          { text: r[2].toFixed(0), num: true },
          { text: seconds > 0 ? (delta / seconds).toFixed(1) : "–", num: true },
        ]));
      });
    });
    sourcesTable.tBodies[0].replaceChildren.apply(sourcesTable.tBodies[0], sourceRows);
    reasonsTable.tBodies[0].replaceChildren.apply(reasonsTable.tBodies[0], reasonRows);
  }

  async function poll() {
    try {
      const response = await fetch("/live.json", { cache: "no-store", credentials: "same-origin" });
      if (response.status === 401) { window.location.assign("/login"); return; }
      const now = await response.json();
      redraw(now);
      previous = now;
      status.textContent = "Updated " + new Date().toLocaleTimeString() + " (worker " + now.pid + ").";
    } catch (error) {
      status.textContent = "Update failed; retrying.";
    }
  }

  poll();
  window.setInterval(poll, 2000);
})();

// The live page's charts: fetched again (with this page's filter) just after each sample
// the server takes (it says when: X-Next-Sample-In, in seconds) and swapped in, without
// a reload. The fragment is parsed as an inert document (nothing in it runs) and its
// nodes adopted.
(function () {
  const charts = document.getElementById("charts");
  if (!charts) return;
  const status = document.getElementById("charts-status");

  function later(seconds) {
    const wait = Number.isFinite(seconds) ? Math.min(Math.max(seconds + 0.5, 1), 10) : 5;
    window.setTimeout(refresh, wait * 1000);
  }

  async function refresh() {
    let next = NaN;
    try {
      const response = await fetch("/live/charts" + window.location.search,
        { cache: "no-store", credentials: "same-origin" });
      if (response.redirected && new URL(response.url).pathname === "/login") {
        window.location.assign("/login");
        return;
      }
      if (!response.ok) throw new Error(String(response.status));
      next = parseFloat(response.headers.get("X-Next-Sample-In") || "");
      const parsed = new DOMParser().parseFromString(await response.text(), "text/html");
      charts.replaceChildren.apply(charts, Array.from(parsed.body.childNodes).map(function (node) {
        return document.adoptNode(node);
      }));
      status.textContent = "Charts updated " + new Date().toLocaleTimeString() + ".";
    } catch (error) {
      status.textContent = "Chart update failed; retrying.";
    }
    later(next);
  }

  refresh();
})();
