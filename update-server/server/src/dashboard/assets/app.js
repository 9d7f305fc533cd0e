// Skerry fleet dashboard: reads /api/v1 with the operator token taken from the URL
// fragment (#token=…) into sessionStorage. Builds the DOM with textContent only, so no
// value from the fleet is ever parsed as HTML.
"use strict";

const TOKEN_KEY = "skerry-operator-token";

function takeToken() {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    // `#token=…&go=PAGE` opens PAGE; drop the token from the address bar and history.
    const go = /&go=([^&]+)/.exec(location.hash);
    history.replaceState(null, "", location.pathname + "#" + (go ? decodeURIComponent(go[1]) : "overview"));
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new Error("no operator token: open /dashboard/#token=<DIR/keys/operator.token>");
  const r = await fetch("/api/v1/" + path, { headers: { Authorization: "Bearer " + token } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(path + ": " + (body.error || r.status));
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(tbody, cells) {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c === null || c === undefined ? "" : String(c);
    tr.appendChild(td);
  }
  tbody.appendChild(tr);
}

function when(secs) {
  return new Date(secs * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
}

function status(text, error) {
  const s = document.getElementById("status");
  s.textContent = text || "";
  s.className = error ? "error" : "";
}

function show(id) {
  for (const s of document.querySelectorAll("main section")) s.hidden = s.id !== id;
}

async function overview() {
  const o = await api("overview");
  document.getElementById("device-count").textContent = o.devices + " devices";
  for (const [table, list] of [["versions", o.versions], ["health", o.health]]) {
    const tbody = document.querySelector("#" + table + " tbody");
    tbody.replaceChildren();
    for (const v of list) row(tbody, [v.name, v.devices]);
  }
  show("overview");
}

function progress(w) {
  const bar = el("span", null, "bar");
  const total = Math.max(w.started, 1);
  const ok = el("span", null, "ok"); ok.style.width = (100 * w.committed / total) + "%";
  const bad = el("span", null, "bad"); bad.style.width = (100 * (w.failed + w.rolled_back) / total) + "%";
  const busy = el("span", null, "busy");
  busy.style.width = (100 * Math.max(0, w.started - w.committed - w.failed - w.rolled_back) / total) + "%";
  bar.append(ok, bad, busy);
  return bar;
}

async function rollouts() {
  const list = (await api("rollouts")).rollouts;
  const box = document.getElementById("rollout-list");
  box.replaceChildren();
  if (list.length === 0) box.appendChild(el("p", "No rollouts."));
  for (const r of list) {
    const div = el("div", null, "rollout");
    div.id = "rollout-" + r.id;
    div.appendChild(el("h3", r.id + ": " + r.release.board + " " + r.release.version + " (" + r.release.channel + ")"));
    div.appendChild(el("p", r.state, "state state-" + r.state));
    if (r.pause_reason) div.appendChild(el("p", r.pause_reason, "pause-reason"));
    const table = el("table");
    table.appendChild(el("thead")).appendChild(el("tr")).append(
      ...["wave", "share", "started", "committed", "failed", "rolled back", "progress"].map((h) => el("th", h)));
    const tbody = table.appendChild(el("tbody"));
    for (const w of r.waves) row(tbody, [w.wave, w.percent + " %", w.started, w.committed, w.failed, w.rolled_back, progress(w)]);
    div.appendChild(table);
    box.appendChild(div);
  }
  show("rollouts");
}

let nextAfter = null;
async function devices(more) {
  const tbody = document.querySelector("#device-table tbody");
  if (!more) { tbody.replaceChildren(); nextAfter = null; }
  const page = await api("devices?limit=100" + (nextAfter ? "&after=" + encodeURIComponent(nextAfter) : ""));
  for (const d of page.devices) {
    const a = el("a", d.id);
    a.href = "#device/" + encodeURIComponent(d.id);
    row(tbody, [a, d.board, d.version, d.health, when(d.last_seen), d.pin]);
  }
  nextAfter = page.next_after;
  document.getElementById("more").hidden = !nextAfter;
  show("devices");
}

async function device(id) {
  const d = await api("devices/" + encodeURIComponent(id));
  document.getElementById("device-title").textContent = "Device " + d.id;
  document.getElementById("device-facts").textContent =
    d.board + ", " + d.version + " (" + d.channel + "), " + d.health + ", last seen " + when(d.last_seen) +
    (d.pin ? ", pinned to " + d.pin.version : "");
  const tbody = document.querySelector("#timeline tbody");
  tbody.replaceChildren();
  for (const t of d.timeline) row(tbody, [t.seq, when(t.at), t.kind, t.version, t.detail]);
  show("device");
}

async function route() {
  const hash = location.hash.replace(/^#/, "") || "overview";
  try {
    status("");
    if (hash === "rollouts") await rollouts();
    else if (hash === "devices") await devices(false);
    else if (hash.startsWith("device/")) await device(decodeURIComponent(hash.slice(7)));
    else await overview();
    document.body.dataset.loaded = hash;
  } catch (e) {
    status(e.message, true);
    document.body.dataset.loaded = "error";
  }
}

window.addEventListener("hashchange", () => { if (!/token=/.test(location.hash)) route(); });
document.addEventListener("DOMContentLoaded", () => {
  takeToken();
  document.getElementById("more").addEventListener("click", () => devices(true).catch((e) => status(e.message, true)));
  route();
});
