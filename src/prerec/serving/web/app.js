// The PreRec page: plain JavaScript, no build step, everything from this service.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { history: [], timer: null };

function headers(json) {
  const h = json ? { "content-type": "application/json" } : {};
  const key = $("key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function api(method, path, body) {
  const r = await fetch(path, { method, headers: headers(body !== undefined),
                                body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data);
    throw new Error(`${r.status}: ${detail}`);
  }
  return data;
}

function say(text, bad) { $("status").textContent = text; $("status").style.color = bad ? "#ffb3b3" : "#fff"; }
function domain() { return $("domain").value; }
function today() {  // unix seconds at noon UTC of the chosen day
  const d = $("day").value ? new Date($("day").value + "T12:00:00Z") : new Date();
  return Math.floor(d.getTime() / 1000);
}
function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; if (cls) e.className = cls; return e; }
const fmt = (x) => x.toFixed(4);

async function loadDomains() {
  try {
    const data = await api("GET", "/domains");
    $("domain").replaceChildren(...data.domains.map((d) => { const o = el("option", `${d.name} (${d.n_items} items)`); o.value = d.name; return o; }));
    say("ready");
    refresh();
  } catch (e) { say(`cannot list domains (${e.message}); set the API key?`, true); }
}

async function search() {
  const q = $("q").value.trim();
  $("freetext").disabled = !q;
  if (!q || !domain()) { $("results").replaceChildren(); return; }
  try {
    const data = await api("GET", `/domains/${encodeURIComponent(domain())}/search?k=20&q=${encodeURIComponent(q)}`);
    $("results").replaceChildren(...data.items.map((it) => {
      const li = el("li");
      li.dataset.id = it.item_id;
      li.append(el("span", it.match, `tag ${it.match}`), el("code", it.item_id), document.createTextNode(" " + it.text));
      li.addEventListener("click", () => addEntry(it.item_id, it.text));
      return li;
    }));
    say(data.similarity ? `${data.items.length} found` : "word matches only (the text encoder is busy)");
  } catch (e) { say(e.message, true); }
}

function addEntry(id, text) { state.history.push(id === null ? { text } : { id, text }); showHistory(); refresh(); }

function showHistory() {
  $("history").replaceChildren(...state.history.map((h, n) => {
    const li = el("li");
    li.dataset.id = h.id === undefined ? "" : h.id;
    li.append(h.id === undefined ? el("em", "text: ") : el("code", h.id + " "), document.createTextNode(h.text + " "));
    const x = el("button", "remove", "small");
    x.addEventListener("click", () => { state.history.splice(n, 1); showHistory(); refresh(); });
    li.append(x);
    return li;
  }));
}

function refresh() { clearTimeout(state.timer); state.timer = setTimeout(() => { recommend(); popular(); }, 150); }

async function recommend() {
  if (!domain() || !state.history.length) { $("recs").replaceChildren(); $("rec").dataset.ready = "empty"; return; }
  const history = state.history.map((h) => (h.id === undefined ? { text: h.text } : h.id));
  $("rec").dataset.ready = "loading";
  try {
    const data = await api("POST", "/recommend", { domain: domain(), history, k: 10, explain: true, timestamp: today() });
    $("recs").replaceChildren(...data.items.map((it, n) => {
      const tr = el("tr");
      tr.dataset.id = it.item_id;
      tr.dataset.score = String(it.score);
      const rec = el("button", "view yesterday", "small record");
      rec.addEventListener("click", () => record(it.item_id));
      const add = el("button", "+ history", "small");
      add.addEventListener("click", () => addEntry(it.item_id, it.text));
      const cells = [el("td", String(n + 1)), el("td"), el("td", it.text), el("td", fmt(it.score), "num score"),
                     el("td", fmt(it.uv), "num uv"), el("td", fmt(it.popularity), "num pop"), el("td")];
      cells[1].append(el("code", it.item_id));
      cells[6].append(add, rec);
      tr.append(...cells);
      return tr;
    }));
    $("rec").dataset.ready = "yes";
  } catch (e) { say(e.message, true); $("rec").dataset.ready = "error"; }
}

async function popular() {
  if (!domain()) return;
  try {
    const data = await api("GET", `/domains/${encodeURIComponent(domain())}/popular?k=10&timestamp=${today()}`);
    $("popular").replaceChildren(...data.items.map((it) => {
      const li = el("li");
      li.dataset.id = it.item_id;
      li.append(el("code", it.item_id), document.createTextNode(` ${it.text} `), el("span", `g(F) ${fmt(it.popularity)}`, "tag"));
      return li;
    }));
  } catch (e) { say(e.message, true); }
}

async function record(itemId) {
  const ts = today() - 86400;
  const id = `web-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  try {
    await api("POST", "/events", { domain: domain(), events: [{ user_id: "web-page", item_id: itemId, timestamp: ts, event_id: id }] });
    say(`recorded a view of ${itemId} yesterday`);
    refresh();
  } catch (e) { say(e.message, true); }
}

$("day").value = new Date().toISOString().slice(0, 10);
$("key").value = sessionStorage.getItem("prerec-key") || "";
$("key").addEventListener("change", () => { sessionStorage.setItem("prerec-key", $("key").value.trim()); loadDomains(); });
$("domain").addEventListener("change", () => { state.history = []; showHistory(); refresh(); search(); });
$("day").addEventListener("change", refresh);
let typing = null;
$("q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(search, 250); });
$("freetext").addEventListener("click", () => { const q = $("q").value.trim(); if (q) addEntry(null, q); });
$("clear").addEventListener("click", () => { state.history = []; showHistory(); refresh(); });
loadDomains();
