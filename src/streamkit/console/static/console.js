// streamkit console: keeps server-rendered pages live by polling the JSON API (<= 1 s).
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const live = document.getElementById("live");

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }
  async function postJSON(url, body, method) {
    const response = await fetch(url, {
      method: method || "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    return answer;
  }
  // Run `task` every `ms`, never two at once; the header badge says whether the API answers.
  function every(ms, task) {
    let running = false;
    async function tick() {
      if (running) return;
      running = true;
      try { await task(); live.classList.remove("offline"); live.textContent = "live"; }
      catch (err) { live.classList.add("offline"); live.textContent = "offline: " + err.message; }
      finally { running = false; }
    }
    tick();
    return setInterval(tick, ms);
  }
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  const age = (ms) => (ms === null || ms === undefined ? "-" : Math.round(ms) + " ms");
  const enc = encodeURIComponent;

  // -- mapping rows (overview, mapping summary) ------------------------------------------
  const sparks = new Map();
  function sparkline(box, values) {
    const xs = values.map((_, i) => i);
    const data = [xs, values.map((v) => (v === null ? null : v))];
    let plot = sparks.get(box);
    if (!plot) {
      plot = new uPlot({
        width: 120, height: 28, legend: { show: false }, cursor: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: false }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        series: [{}, { stroke: "#1565c0", width: 1, fill: "rgba(21,101,192,0.15)", points: { show: false } }],
      }, data, box);
      sparks.set(box, plot);
    } else {
      plot.setData(data);
    }
  }
  function rowFor(m) {
    const tr = el("tr", { "data-uuid": m.uuid });
    const link = el("td"); link.appendChild(el("a", { href: "/mappings/" + enc(m.uuid) }, m.uuid.slice(0, 8)));
    const table = el("td"); table.appendChild(el("a", { href: "/tables/" + enc(m.table_name) }, m.table_name));
    tr.append(link, table, el("td", {}, m.function_name));
    tr.appendChild(el("td", { "data-f": "state" }));
    for (const f of ["iterator_age_ms", "records_per_s", "invocations", "errors", "throttles", "lanes"])
      tr.appendChild(el("td", { "data-f": f, class: "num" }));
    const spark = el("td", { class: "spark" }); spark.appendChild(el("div", { class: "sparkline" }));
    tr.append(spark, el("td", { "data-f": "last_error", class: "error" }));
    return tr;
  }
  function fillRow(tr, m) {
    tr.className = "state-" + m.state;
    const set = (f, v) => { const td = tr.querySelector(`[data-f="${f}"]`); if (td) td.textContent = v; };
    set("state", m.state); set("iterator_age_ms", age(m.iterator_age_ms));
    set("records_per_s", m.records_per_s); set("invocations", m.invocations);
    set("errors", m.errors); set("throttles", m.throttles); set("lanes", m.lanes);
    set("last_error", m.last_error || "");
    const box = tr.querySelector(".sparkline");
    if (box && m.sparkline && m.sparkline.length) sparkline(box, m.sparkline);
  }

  function overview() {
    const table = document.getElementById("mappings");
    const { offset, limit, query } = table.dataset;
    const url = `/api/mappings?offset=${enc(offset)}&limit=${enc(limit)}&q=${enc(query)}`;
    every(1000, async () => {
      const response = await fetch(url);
      if (!response.ok) throw new Error(response.statusText);
      const mappings = await response.json();
      const total = response.headers.get("X-Total-Count");
      const rows = Array.from(table.querySelectorAll("tr[data-uuid]"));
      const same = rows.length === mappings.length && rows.every((r, i) => r.dataset.uuid === mappings[i].uuid);
      if (!same) {
        table.querySelectorAll("tr[data-uuid], tr.empty").forEach((r) => r.remove());
        sparks.clear();
        for (const m of mappings) table.appendChild(rowFor(m));
      }
      const byUuid = new Map(mappings.map((m) => [m.uuid, m]));
      table.querySelectorAll("tr[data-uuid]").forEach((tr) => fillRow(tr, byUuid.get(tr.dataset.uuid)));
      const shown = document.getElementById("shown");
      const first = Number(offset) + 1;
      shown.textContent = mappings.length ? `${first}-${first + mappings.length - 1} of ${total}` : `0 of ${total}`;
      shown.dataset.total = total;
    });
  }

  // -- mapping detail ---------------------------------------------------------------------
  function chart(id, title, seriesNames, colors) {
    const box = document.getElementById(id);
    const series = [{}].concat(seriesNames.map((name, i) => ({ label: name, stroke: colors[i], width: 1.5 })));
    return new uPlot({ width: 420, height: 180, series, scales: { x: { time: true } } },
      [[], ...seriesNames.map(() => [])], box);
  }
  function failuresRows(table, failures, replay) {
    // Rebuild only when the records changed: buttons stay put between polls.
    const signature = JSON.stringify(failures.map((f) => [f.message_id, f.records, f.unavailable]));
    if (table.dataset.signature === signature) return;
    table.dataset.signature = signature;
    table.querySelectorAll("tr.failure, tr.empty").forEach((r) => r.remove());
    if (!failures.length) {
      const tr = el("tr", { class: "empty" });
      tr.appendChild(el("td", { colspan: replay ? 8 : 7 }, "(no failure records)"));
      table.appendChild(tr);
    }
    for (const f of failures) {
      const tr = el("tr", { class: "failure", "data-message": f.message_id });
      const keys = f.unavailable ? `(records unavailable: ${f.unavailable})`
        : f.records.map((r) => JSON.stringify(r.keys)).join(", ");
      tr.append(el("td", {}, f.timestamp), el("td", {}, f.condition), el("td", {}, f.function_error),
        el("td", {}, `${f.start_sequence_number}..${f.end_sequence_number}`),
        el("td", { class: "num" }, f.batch_size), el("td", { class: "num" }, f.approximate_invoke_count),
        el("td", { class: "keys" }, keys));
      if (replay) {
        const td = el("td");
        td.appendChild(el("button", { class: "replay-one", "data-message": f.message_id }, "Replay"));
        tr.appendChild(td);
      }
      table.appendChild(tr);
    }
  }
  function mapping() {
    const initial = JSON.parse(document.getElementById("initial").textContent);
    const uuid = initial.uuid;
    const rates = chart("chart-rates", "rates", ["records/s", "invocations/s", "errors/s"], ["#1565c0", "#2e7d32", "#b71c1c"]);
    const ages = chart("chart-age", "age", ["iterator age ms"], ["#6a1b9a"]);
    const batch = chart("chart-batch", "batch", ["records per invoke"], ["#ef6c00"]);
    const bucketLabels = initial.iterator_age_histogram.map((b) => (b.le_ms === null ? "more" : "≤" + b.le_ms));
    const hist = new uPlot({
      width: 420, height: 180, scales: { x: { time: false } },
      axes: [{ label: "iterator age, ms", values: (u, splits) => splits.map((i) => bucketLabels[i] || "") }, {}],
      series: [{ label: "bucket" }, { label: "samples", stroke: "#00838f", fill: "rgba(0,131,143,0.3)",
        paths: uPlot.paths.bars({ size: [0.8] }) }],
    }, [[], []], document.getElementById("chart-histogram"));
    const summary = document.querySelector("#summary tr[data-uuid]");
    every(1000, async () => {
      const d = await getJSON("/api/mappings/" + enc(uuid));
      fillRow(summary, d);
      for (const [name, value] of Object.entries(d.counters)) {
        const td = document.querySelector(`[data-c="${name}"]`); if (td) td.textContent = value;
      }
      document.getElementById("last-error").textContent = d.last_error || "-";
      const s = d.series;
      rates.setData([s.t, s.records_per_s, s.invocations_per_s, s.errors_per_s]);
      ages.setData([s.t, s.iterator_age_ms]);
      batch.setData([s.t, s.records_per_invoke]);
      const h = d.iterator_age_histogram;
      hist.setData([h.map((_, i) => i), h.map((b) => b.count)]);
    });
    const failures = document.getElementById("failures");
    if (failures) every(2000, async () => {
      const f = await getJSON(`/api/mappings/${enc(uuid)}/failures`);
      failuresRows(failures, f.failures, false);
      const conditions = Object.entries(f.by_condition || {}).sort().map(([k, v]) => `${k} ${v}`);
      document.getElementById("by-condition").textContent = conditions.join(", ") || "none";
    });
  }

  // -- stream tail --------------------------------------------------------------------------
  function stream() {
    const table = document.getElementById("tail");
    const status = document.getElementById("tail-status");
    const images = table.dataset.images === "1";
    let after = 0;
    every(250, async () => {
      const t = await getJSON(`/api/tables/${enc(table.dataset.table)}/tail?after=${after}&images=${images ? 1 : 0}`);
      status.textContent = t.error ? "stopped: " + t.error : t.ended ? "stream disabled" : t.ready ? "following" : "connecting";
      status.dataset.ready = t.ready ? "1" : "0";
      const header = table.querySelector("tr");
      for (const r of t.records) {
        const tr = el("tr", { class: "record fresh", "data-seq": r.sequence_number || "" });
        tr.append(el("td", {}, r.approximate_creation_time), el("td", {}, r.event_name + (r.ttl_delete ? " (TTL)" : "")),
          el("td", {}, r.sequence_number), el("td", { class: "keys" }, r.error ? "unreadable: " + r.error : JSON.stringify(r.keys)),
          el("td", {}, (r.changed_attributes || []).join(", ")));
        if (images) tr.append(el("td", { class: "keys" }, r.new_image ? JSON.stringify(r.new_image) : ""),
          el("td", { class: "keys" }, r.old_image ? JSON.stringify(r.old_image) : ""));
        header.after(tr);
      }
      after = t.next;
      const rows = table.querySelectorAll("tr.record");
      for (let i = 500; i < rows.length; i++) rows[i].remove();
    });
  }

  // -- destinations -------------------------------------------------------------------------
  function destination() {
    const box = document.getElementById("failures-box");
    const uuid = box.dataset.mapping;
    const result = document.getElementById("replay-result");
    const table = () => document.getElementById("failures");
    async function refresh() {
      const f = await getJSON(`/api/mappings/${enc(uuid)}/failures`);
      failuresRows(table(), f.failures, true);
      document.getElementById("counts").textContent = `${f.visible} message(s), ${f.in_flight} in flight`;
    }
    async function replay(body, question) {
      if (!window.confirm(question)) return;
      result.textContent = "replaying...";
      try {
        const r = await postJSON(`/api/destinations/${enc(uuid)}/replay`, Object.assign({ confirm: true }, body));
        result.textContent = r.log ? r.log.join(" | ") : `${r.status}${r.detail ? ": " + r.detail : ""}`;
        result.dataset.ok = r.ok ? "1" : "0";
      } catch (err) { result.textContent = "replay failed: " + err.message; result.dataset.ok = "0"; }
      await refresh();
    }
    box.addEventListener("click", (event) => {
      const button = event.target.closest("button.replay-one");
      if (button) replay({ message_id: button.dataset.message },
        "Replay this batch now? The function is invoked again; the message is deleted if it succeeds.");
    });
    document.getElementById("replay-all").addEventListener("click", () =>
      replay({ all: true }, "Replay every failure record in this queue now?"));
    every(1000, refresh);
  }

  function faults() {
    const rules = document.getElementById("rules");
    const result = document.getElementById("fault-result");
    const refresh = async () => { rules.textContent = JSON.stringify(await getJSON("/api/faults"), null, 2); };
    document.getElementById("fault-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try { await postJSON("/api/faults", JSON.parse(document.getElementById("fault-rule").value)); result.textContent = "added"; }
      catch (err) { result.textContent = "not added: " + err.message; }
      await refresh();
    });
    document.getElementById("faults-clear").addEventListener("click", async () => {
      if (!window.confirm("Clear every fault rule?")) return;
      try { await postJSON("/api/faults", null, "DELETE"); result.textContent = "cleared"; }
      catch (err) { result.textContent = "not cleared: " + err.message; }
      await refresh();
    });
    every(1000, refresh);
  }

  const pages = { overview, mapping, stream, destination, faults };
  if (pages[page]) pages[page]();
})();
