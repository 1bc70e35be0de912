// 在线填写: the official tables in the browser. The keyboard moves like a spreadsheet, a block copied
// from Excel/WPS/LibreOffice pastes over the inputs, and every change goes to the server, which checks
// it with the same code as `nianbao check` and keeps it as a draft; this script only shows what the
// server answers (no rule is repeated here). Without script the form still posts and is checked then.
// Plain script, no modules and no build step: only what Chrome/Edge/360 (Chromium mode) have had for years.
(function () {
  "use strict";
  var form = document.getElementById("nb-form");
  if (!form) { return; }
  var checkUrl = form.getAttribute("data-check-url");
  var csrfField = form.querySelector('input[name="csrf"]');
  var editable = !!checkUrl && !document.querySelector(".nb-locked") && !!form.querySelector(".nb-in:not([disabled])");
  var DEBOUNCE_MS = 60; // a pause shorter than between two keystrokes (3–5 a second): one check per change, shown within 0.3 s
  var RETRY_MS = [2000, 5000, 10000, 30000];

  var tables = Array.prototype.slice.call(form.querySelectorAll("table.nb-table"));
  var grids = tables.map(buildGrid);
  var inputs = {}, totals = {}, selfs = {}, hints = {};
  each(form.querySelectorAll(".nb-in"), function (el) { inputs[el.getAttribute("data-cell")] = el; });
  each(form.querySelectorAll(".nb-total"), function (el) { totals[el.getAttribute("data-cell")] = el; });
  each(form.querySelectorAll(".nb-self"), function (el) { selfs[el.getAttribute("data-cell")] = el; });
  each(form.querySelectorAll(".nb-hint"), function (el, i) {
    var id = el.getAttribute("data-for");
    hints[id] = el;
    if (!el.id) { el.id = "nb-hint-" + i; }
    if (inputs[id]) { inputs[id].setAttribute("aria-describedby", el.id); }
  });
  tables.forEach(function (table) {  // a phone-width screen scrolls each table inside its own box
    var parent = table.parentNode;
    if (parent.classList && parent.classList.contains("nb-scroll")) { return; }
    var box = document.createElement("div");
    box.className = "nb-scroll";
    parent.insertBefore(box, table);
    box.appendChild(table);
  });
  var status = document.getElementById("nb-status");
  if (!status) {
    status = document.createElement("div");
    status.id = "nb-status";
    status.className = "nb-status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    form.appendChild(status);
  }

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  // ------------------------------------------------------------------ the grid of each table
  // Two views of a table: its inputs by (data-row, data-col) for moving, and every cell by its place
  // on screen (rows and merged cells counted as the browser lays them out) for pasting a block, so a
  // block copied from the official workbook lands cell for cell and skips the totals in it.
  function buildGrid(table) {
    var g = { table: table, list: [], byRow: {}, rows: [], at: {}, place: new Map() };
    each(table.querySelectorAll(".nb-in"), function (el) {
      var r = +el.getAttribute("data-row"), c = +el.getAttribute("data-col");
      if (!g.byRow[r]) { g.byRow[r] = []; g.rows.push(r); }
      g.byRow[r].push({ col: c, el: el });
      g.list.push(el);
    });
    g.rows.sort(function (a, b) { return a - b; });
    g.rows.forEach(function (r) { g.byRow[r].sort(function (a, b) { return a.col - b.col; }); });
    var taken = {};
    each(table.rows, function (tr, r) {
      var c = 0;
      each(tr.cells, function (td) {
        while (taken[r + ":" + c]) { c++; }
        for (var i = 0; i < td.rowSpan; i++) {
          for (var j = 0; j < td.colSpan; j++) { taken[(r + i) + ":" + (c + j)] = true; }
        }
        var el = td.querySelector(".nb-in, .nb-total, .nb-self");
        g.at[r + ":" + c] = el || td;
        if (el) { g.place.set(el, { r: r, c: c }); }
        c += td.colSpan;
      });
    });
    return g;
  }

  function gridOf(el) {
    for (var i = 0; i < grids.length; i++) { if (grids[i].table.contains(el)) { return i; } }
    return -1;
  }

  function nearest(g, row, col) {  // the input of that row in the column, or the nearest before/after it
    var cells = g.byRow[row];
    if (!cells || !cells.length) { return null; }
    var best = cells[0];
    cells.forEach(function (x) { if (x.col <= col) { best = x; } });
    return best.el;
  }

  function usable(el) { return el && !el.disabled; }

  // ------------------------------------------------------------------ moving
  function vertical(el, dir, wrapColumns) {
    var gi = gridOf(el), g = grids[gi];
    var row = +el.getAttribute("data-row"), col = +el.getAttribute("data-col");
    var k = g.rows.indexOf(row) + dir;
    if (k >= 0 && k < g.rows.length) { return nearest(g, g.rows[k], col); }
    if (wrapColumns) {  // Enter at the foot of a column: the top of the next one (表三, 表四 fill column by column)
      var next = columnEnd(g, col + dir, dir);
      if (next) { return next; }
    }
    var other = grids[gi + dir];
    if (!other || !other.rows.length) { return null; }
    return nearest(other, other.rows[dir > 0 ? 0 : other.rows.length - 1], dir > 0 ? 0 : Infinity);
  }

  function columnEnd(g, col, dir) {  // the first (dir 1) or last (dir -1) input of that column
    var rows = dir > 0 ? g.rows : g.rows.slice().reverse();
    for (var i = 0; i < rows.length; i++) {
      var hit = g.byRow[rows[i]].filter(function (x) { return x.col === col; })[0];
      if (hit) { return hit.el; }
    }
    return null;
  }

  function sideways(el, dir) {
    var g = grids[gridOf(el)];
    var cells = g.byRow[+el.getAttribute("data-row")], col = +el.getAttribute("data-col");
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].col === col) { return cells[i + dir] ? cells[i + dir].el : null; }
    }
    return null;
  }

  function atEdge(el, dir) {  // Left/Right move only once the caret cannot go further (or all is selected)
    var s = el.selectionStart, e = el.selectionEnd, n = el.value.length;
    if (s === null || s === undefined) { return true; }
    if (s === 0 && e === n) { return true; }
    return s === e && (dir < 0 ? s === 0 : s === n);
  }

  function go(el) {
    if (!usable(el)) { return false; }
    el.focus();
    try { el.select(); } catch (err) { /* not a text input */ }
    return true;
  }

  function fields() {  // cover fields and inputs in page order: what Enter walks through outside the tables
    return Array.prototype.slice.call(form.querySelectorAll(".nb-cover, .nb-in")).filter(usable);
  }

  function coverKey(e, el) {
    if (e.key !== "Enter" || el.tagName === "TEXTAREA") { return; }
    e.preventDefault();  // Enter in a text field would send the whole form: move on instead
    var list = fields(), i = list.indexOf(el);
    go(list[i + (e.shiftKey ? -1 : 1)]);
  }

  form.addEventListener("keydown", function (e) {
    var el = e.target;
    if (e.isComposing || e.keyCode === 229 || e.altKey || e.ctrlKey || e.metaKey) { return; }
    if (el.classList.contains("nb-cover")) { coverKey(e, el); return; }
    if (!el.classList.contains("nb-in")) { return; }
    var to = null, moved = true;
    if (e.key === "Enter") { to = vertical(el, e.shiftKey ? -1 : 1, true); }
    else if (e.key === "ArrowDown") { to = vertical(el, 1, false); }
    else if (e.key === "ArrowUp") { to = vertical(el, -1, false); }
    else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && !e.shiftKey) {
      var dir = e.key === "ArrowLeft" ? -1 : 1;
      if (!atEdge(el, dir)) { return; }
      to = sideways(el, dir);
    } else { moved = false; }
    if (!moved) { return; }
    e.preventDefault();
    if (!to && e.key === "Enter") { to = form.querySelector("#nb-submit"); if (to) { to.focus(); } return; }
    go(to);
  });

  // ------------------------------------------------------------------ pasting a block
  function parseBlock(text) {  // Excel/WPS/LibreOffice text/plain: rows by newline, cells by tab, "..." quoted
    var rows = [], row = [], cell = "", i = 0, n = text.length, quoted = false;
    while (i < n) {
      var ch = text.charAt(i);
      if (quoted) {
        if (ch === '"' && text.charAt(i + 1) === '"') { cell += '"'; i += 2; continue; }
        if (ch === '"') { quoted = false; i++; continue; }
        cell += ch; i++; continue;
      }
      if (ch === '"' && cell === "") { quoted = true; i++; continue; }
      if (ch === "\t") { row.push(cell); cell = ""; i++; continue; }
      if (ch === "\r" || ch === "\n") {
        row.push(cell); rows.push(row); row = []; cell = "";
        i += ch === "\r" && text.charAt(i + 1) === "\n" ? 2 : 1;
        continue;
      }
      cell += ch; i++;
    }
    if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
    return rows;
  }

  function fillBlock(el, rows) {
    var g = grids[gridOf(el)], start = g.place.get(el), filled = 0, skipped = 0;
    rows.forEach(function (values, i) {
      values.forEach(function (value, j) {
        var target = g.at[(start.r + i) + ":" + (start.c + j)];
        if (target && target.classList && target.classList.contains("nb-in") && usable(target)) {
          target.value = value;
          filled++;
        } else if (value.trim() !== "") {
          skipped++;  // a total, a label or outside the table: never written
        }
      });
    });
    return { filled: filled, skipped: skipped };
  }

  form.addEventListener("paste", function (e) {
    var el = e.target;
    if (!el.classList || !el.classList.contains("nb-in") || !e.clipboardData) { return; }
    var text = e.clipboardData.getData("text/plain");
    if (!text) { return; }
    var rows = parseBlock(text);
    if (!rows.length) { return; }
    e.preventDefault();
    if (rows.length === 1 && rows[0].length === 1) {  // one value: pasted where the caret is, as typed
      var s = el.selectionStart, t = el.selectionEnd;
      if (s === null || s === undefined) { el.value = rows[0][0]; } else { el.setRangeText(rows[0][0], s, t, "end"); }
      changed();
      return;
    }
    var done = fillBlock(el, rows);
    changed();
    pasteNote = "已粘贴 " + done.filled + " 个格子";
    if (done.skipped) { pasteNote += "；" + done.skipped + " 个数落在总计、标签或表格以外，没有填入（总计自动计算）"; }
    show(pasteNote + "。正在保存…", "");
  });

  // ------------------------------------------------------------------ checking and saving
  var timer = null, inFlight = false, dirty = false, submitting = false, failures = 0;
  var pasteNote = "";  // what the last paste did, shown with the next 已保存 until the clerk types again

  function collect() {
    var body = { cover: {}, values: {} };
    each(form.querySelectorAll(".nb-cover"), function (el) {
      var name = el.getAttribute("name") || "";
      if (name.indexOf("cover:") === 0 && el.value !== "") { body.cover[name.slice(6)] = el.value; }
    });
    Object.keys(inputs).forEach(function (id) { if (inputs[id].value !== "") { body.values[id] = inputs[id].value; } });
    return body;
  }

  function changed() {
    if (!editable || submitting) { return; }
    dirty = true;
    show("正在保存…", "");
    clearTimeout(timer);
    timer = setTimeout(send, DEBOUNCE_MS);
  }

  function request(body, keepalive) {
    return fetch(checkUrl, {
      method: "POST",
      credentials: "same-origin",
      keepalive: !!keepalive,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfField ? csrfField.value : "" },
      body: JSON.stringify(body)
    });
  }

  function send() {
    timer = null;
    if (inFlight || submitting || !dirty) { return; }  // one request at a time; the answer sends the latest state
    dirty = false;
    inFlight = true;
    request(collect()).then(function (r) {
      return r.json().then(function (data) { return { status: r.status, data: data }; },
        function () { return { status: r.status, data: null }; });
    }).then(answered, function () { failed(null, null); });
  }

  function answered(res) {
    inFlight = false;
    if (res.status !== 200 || !res.data || res.data.error) { failed(res.status, res.data); return; }
    failures = 0;
    render(res.data);
    if (dirty) {  // changed meanwhile: send at once unless a pause is still being waited for
      if (!timer) { send(); }
      return;
    }
    show("已保存 " + (res.data.saved_at || "") + (pasteNote ? "。" + pasteNote + "。" : ""), "nb-saved");
  }

  function failed(code, data) {
    inFlight = false;
    dirty = true;  // this state is not saved: the next change or the retry sends it again
    var why = data && data.error;
    var retry = code === null || code === 429 || code >= 500;
    var text;
    if (code === null) { text = "连不上服务器，草稿没有保存。请检查网络；连上后会自动保存，已填的内容仍在本页上，请不要关闭。"; }
    else if (why) { text = "草稿没有保存：" + why; }
    else { text = "服务器出错（" + code + "），草稿没有保存。请稍后再试；已填的内容仍在本页上，请不要关闭。"; }
    show(text, "nb-status-error");
    if (retry && !submitting) {
      clearTimeout(timer);
      timer = setTimeout(send, RETRY_MS[Math.min(failures, RETRY_MS.length - 1)]);
      failures++;
    }
  }

  function show(text, cls) {  // data-nb-state on the form: saving | saved | error (what tests wait for)
    status.textContent = text;
    status.className = "nb-status" + (cls ? " " + cls : "");
    form.setAttribute("data-nb-state", cls === "nb-saved" ? "saved" : cls ? "error" : "saving");
  }

  function number(v) {
    if (v === null || v === undefined || v === "") { return ""; }
    if (typeof v !== "number") { return String(v); }
    return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
  }

  function render(data) {
    var t = data.totals || {}, s = data.selfcheck || {}, h = data.hints || {};
    Object.keys(t).forEach(function (id) { if (totals[id]) { totals[id].textContent = number(t[id]); } });
    Object.keys(s).forEach(function (id) {
      var el = selfs[id];
      if (!el) { return; }
      el.textContent = s[id];
      el.classList.toggle("nb-bad", !!s[id] && s[id].indexOf("相符") !== 0);
    });
    var sums = data.selfsums || {};
    each(form.querySelectorAll(".nb-selfsum"), function (el) {
      var pair = sums[el.getAttribute("data-cell")];
      if (pair) { el.textContent = number(pair[el.getAttribute("data-side") === "right" ? 1 : 0]); }
    });
    Object.keys(hints).forEach(function (id) { setHint(id, ""); });
    Object.keys(h).forEach(function (id) { setHint(id, h[id]); });
    renderFindings(data.findings || []);
  }

  function coverField(id) {
    return form.querySelector('.nb-cover[name="cover:' + id.replace(/^cover[.:]/, "").replace(/["\\]/g, "") + '"]');
  }

  function setHint(id, text) {
    var span = hints[id];
    if (!span && text) {  // a cover field's hint: placed after the field the first time one comes
      var field = coverField(id);
      if (!field) { return; }
      span = document.createElement("span");
      span.className = "nb-hint";
      span.setAttribute("data-for", id);
      span.id = "nb-hint-cover-" + id.replace(/[^A-Za-z0-9_-]/g, "_");
      field.parentNode.insertBefore(span, field.nextSibling);
      field.setAttribute("aria-describedby", span.id);
      hints[id] = span;
    }
    if (!span) { return; }
    span.textContent = text;
    var target = inputs[id] || totals[id] || coverField(id);
    if (target) {
      target.classList.toggle("nb-bad", !!text);
      if (target.tagName !== "OUTPUT") { target.setAttribute("aria-invalid", text ? "true" : "false"); }
    }
  }

  function renderFindings(findings) {  // the same list the page was rendered with (form.html)
    var list = document.getElementById("nb-findings");
    if (!list) { return; }
    list.textContent = "";
    var clean = document.querySelector(".nb-clean");
    if (clean) { clean.hidden = findings.length > 0; }
    findings.forEach(function (f) {
      var li = document.createElement("li");
      li.className = "nb-level";
      li.setAttribute("data-level", f.level || "");
      li.setAttribute("data-cells", (f.cells || []).join(" "));
      var level = document.createElement("strong");
      level.textContent = f.level || "";
      li.appendChild(level);
      li.appendChild(document.createTextNode(" " + (f.where ? f.where + "：" : "") + (f.message || "") + " "));
      if (f.instruction) {
        var how = document.createElement("small");
        how.textContent = f.instruction;
        li.appendChild(how);
      }
      list.appendChild(li);
    });
    if (!findings.length && !clean) {
      var ok = document.createElement("li");
      ok.className = "nb-none";
      ok.textContent = "没有发现问题。";
      list.appendChild(ok);
    }
    markClickable(list);
  }

  function markClickable(list) {  // a finding with cells takes the caret there: a link for mouse and keyboard
    each(list.querySelectorAll("li[data-cells]"), function (li) {
      if (!li.getAttribute("data-cells")) { return; }
      li.setAttribute("tabindex", "0");
      li.setAttribute("role", "link");
      li.title = "点击转到这个格子";
    });
  }

  function focusCells(cells) {  // the first of the finding's cells that can take the caret; else show the first
    for (var i = 0; i < cells.length; i++) {
      var el = inputs[cells[i]] || coverField(cells[i]);
      if (usable(el)) { el.scrollIntoView({ block: "center", inline: "center" }); go(el); return; }
    }
    var shown = cells.length && (totals[cells[0]] || selfs[cells[0]]);
    if (shown) {
      shown.scrollIntoView({ block: "center", inline: "center" });
      shown.classList.add("nb-flash");
      setTimeout(function () { shown.classList.remove("nb-flash"); }, 1500);
    }
  }

  var findingsList = document.getElementById("nb-findings");
  if (findingsList) {
    markClickable(findingsList);
    var open = function (e) {
      var li = e.target.closest ? e.target.closest("li[data-cells]") : null;
      if (!li || !li.getAttribute("data-cells")) { return; }
      if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") { return; }
      e.preventDefault();
      focusCells(li.getAttribute("data-cells").split(" "));
    };
    findingsList.addEventListener("click", open);
    findingsList.addEventListener("keydown", open);
  }

  if (!editable) { return; }
  form.addEventListener("input", function (e) {
    if (e.target.classList.contains("nb-in") || e.target.classList.contains("nb-cover")) { pasteNote = ""; changed(); }
  });
  form.addEventListener("submit", function () {
    submitting = true;  // no draft is saved after this: the server drops it once the return is stored
    clearTimeout(timer);
    var button = form.querySelector("#nb-submit");
    if (button) { setTimeout(function () { button.disabled = true; button.textContent = "正在提交…"; }, 0); }
  });
  window.addEventListener("pagehide", function () {  // closing the tab within the debounce still saves
    if (dirty && !submitting) {
      try { request(collect(), true); } catch (err) { /* the page is going away */ }
    }
  });
  window.addEventListener("pageshow", function (e) {  // back from the result page: the button works again
    if (e.persisted) {
      submitting = false;
      var button = form.querySelector("#nb-submit");
      if (button) { button.disabled = false; button.textContent = "提交"; }
    }
  });
})();
