// pos-edge admin console: a thin client of the /admin API, no build step, no CDN.
// The admin token lives in sessionStorage and goes in Authorization: Bearer; no cookie is
// ever set, so another site cannot make the browser act (CSRF). Text from the API is only
// ever put in the page with textContent, never as HTML.
"use strict";

const WRITERS = ["operator", "company_admin", "store_manager"];
const STORE_READERS = ["operator", "company_admin", "viewer"];
const AUDIT_READERS = ["operator", "company_admin"];
const $ = (id) => document.getElementById(id);

function session() {
  const raw = sessionStorage.getItem("pos-edge-admin");
  return raw ? JSON.parse(raw) : null;
}

function say(text, error = false) {
  const box = $("message");
  box.textContent = text;
  box.className = error ? "error" : "";
  box.hidden = !text;
}

async function api(method, path, body) {
  const s = session();
  const headers = {};
  if (s) headers.Authorization = "Bearer " + s.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (r.status === 401 && s) {  // the token ran out (or was refused): back to the login
    sessionStorage.removeItem("pos-edge-admin");
    show();
  }
  if (!r.ok) throw new Error((data && (data.detail || data.title)) || ("HTTP " + r.status));
  return data;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  // its column's heading, shown beside it on a phone (where the table's head is hidden)
  const head = row.parentTable;  // set by the caller: the row is not in the page yet
  const th = head ? head.querySelectorAll("thead th")[row.children.length] : null;
  if (th) td.dataset.label = th.textContent;
  row.appendChild(td);
  return td;
}

function button(label, id, onClick, className) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.id = id;
  if (className) b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

async function loadStores() {
  const s = session();
  const options = [$("store-filter"), $("provision-store")];
  let stores = s.branches.map((b) => ({ branch_id: b }));
  if (STORE_READERS.includes(s.role)) {
    $("stores-view").hidden = false;
    stores = (await api("GET", "/admin/stores")).stores;
    const body = $("stores");
    body.replaceChildren();
    for (const st of stores) {
      const row = document.createElement("tr");
      row.parentTable = body.closest("table");
      cell(row, st.branch_id);
      cell(row, st.pos_profile);
      cell(row, st.warehouse);
      cell(row, st.terminals.total);
      cell(row, st.terminals.blocked);
      cell(row, st.last_sale || "never");
      cell(row, st.sync.depth + (st.sync.failed ? " (" + st.sync.failed + " failed)" : ""));
      body.appendChild(row);
    }
  }
  for (const select of options) {
    const keep = select.id === "store-filter" ? [select.options[0]] : [];
    select.replaceChildren(...keep);
    for (const st of stores) {
      const o = document.createElement("option");
      o.value = o.textContent = st.branch_id;
      select.appendChild(o);
    }
  }
}

async function loadTerminals() {
  const s = session();
  const store = $("store-filter").value;
  const data = await api("GET", "/admin/terminals" + (store ? "?branch_id=" + encodeURIComponent(store) : ""));
  const body = $("terminals");
  body.replaceChildren();
  for (const t of data.terminals) {
    const row = document.createElement("tr");
    row.parentTable = body.closest("table");
    row.id = "terminal:" + t.device_id;  // ":" never in the page's own ids: no device id clashes with them
    cell(row, t.device_id);
    cell(row, t.device_name);
    cell(row, t.branch_id);
    cell(row, t.status, "status-" + t.status);
    cell(row, t.last_seen || "never");
    cell(row, t.jobs.queued + (t.jobs.failed ? " (" + t.jobs.failed + " failed)" : ""));
    const actions = cell(row, "", "actions");
    if (WRITERS.includes(s.role)) {
      if (t.status === "blocked") {
        actions.appendChild(button("Unblock", "unblock:" + t.device_id, () => act(t, "unblock"), "quiet"));
      } else {
        actions.appendChild(button("Block", "block:" + t.device_id, () => act(t, "block"), "danger"));
      }
      actions.appendChild(button("Reset", "reset:" + t.device_id, () => act(t, "reset"), "quiet"));
      actions.appendChild(button("Move", "move:" + t.device_id, () => move(t), "quiet"));
      actions.appendChild(button("Delete", "delete:" + t.device_id, () => remove(t), "quiet"));
    }
    actions.appendChild(button("Jobs", "jobs:" + t.device_id, () => jobs(t), "quiet"));
    body.appendChild(row);
  }
}

async function act(t, action) {
  const question = {
    block: "Block " + t.device_id + "? Its next request is refused.",
    unblock: "Unblock " + t.device_id + "?",
    reset: "Reset " + t.device_id + "? Its tokens stop working; it registers again with a new code.",
  }[action];
  if (!window.confirm(question)) return;
  try {
    const done = await api("POST", "/admin/terminals/" + encodeURIComponent(t.device_id) + "/" + action);
    if (done && done.enrollment_code) showCode(t.device_id, done);
    say(t.device_id + ": " + (action === "reset" ? "reset" : action + "ed"));
    await refresh();
  } catch (e) { say(e.message, true); }
}

async function move(t) {
  const stores = Array.from($("provision-store").options).map((o) => o.value).filter((b) => b !== t.branch_id);
  const to = window.prompt("Move " + t.device_id + " to which store? (" + stores.join(", ") + ")", stores[0] || "");
  if (!to) return;
  try {
    const done = await api("POST", "/admin/terminals/" + encodeURIComponent(t.device_id) + "/move", { branch_id: to });
    showCode(t.device_id, done);
    say(t.device_id + ": moved to " + to + "; its till registers again with the code");
    await refresh();
  } catch (e) { say(e.message, true); }
}

async function remove(t) {
  const registered = t.registered ? " It is a registered till: its id could then enrol again without proof." : "";
  if (!window.confirm("Delete " + t.device_id + "?" + registered)) return;
  try {
    await api("DELETE", "/admin/terminals/" + encodeURIComponent(t.device_id) + (t.registered ? "?force=true" : ""));
    say(t.device_id + ": deleted");
    await refresh();
  } catch (e) { say(e.message, true); }
}

function showCode(device, done) {
  $("code-device").textContent = device;
  $("code-value").textContent = done.enrollment_code;
  $("code-until").textContent = done.code_expires_at || "";
  $("code").hidden = false;
}

let jobsOf = null;

async function jobs(t) {
  try {
    const data = await api("GET", "/admin/terminals/" + encodeURIComponent(t.device_id) + "/jobs");
    jobsOf = t.device_id;
    $("jobs-device").textContent = t.device_id;
    const list = $("jobs");
    list.replaceChildren();
    for (const j of data.failed) {
      const li = document.createElement("li");
      li.textContent = j.client_txn_id + " (" + j.type + ", " + j.attempts + " tries): " + (j.last_error || "");
      list.appendChild(li);
    }
    if (!data.failed.length) list.textContent = "none";
    $("jobs-retry").hidden = !data.failed.length || !WRITERS.includes(session().role);
    $("jobs-view").hidden = false;
  } catch (e) { say(e.message, true); }
}

async function loadAudit() {
  if (!AUDIT_READERS.includes(session().role)) return;
  $("audit-view").hidden = false;
  const data = await api("GET", "/admin/audit?limit=50");
  const body = $("audit");
  body.replaceChildren();
  for (const e of data.entries) {
    const row = document.createElement("tr");
    row.parentTable = body.closest("table");
    cell(row, e.at);
    cell(row, e.actor + " (" + e.role + ")");
    cell(row, e.action);
    cell(row, e.target);
    cell(row, e.address);
    body.appendChild(row);
  }
}

async function refresh() {
  try {
    await loadStores();
    await loadTerminals();
    await loadAudit();
  } catch (e) { say(e.message, true); }
}

function show() {
  const s = session();
  $("login-view").hidden = !!s;
  $("main-view").hidden = !s;
  $("who").hidden = !s;
  $("tenant").textContent = location.hostname.split(".")[0];
  if (!s) return;
  $("whoami").textContent = s.name + " (" + s.role + (s.branches.length ? ": " + s.branches.join(", ") : "") + ")";
  for (const el of document.querySelectorAll(".write")) el.hidden = !WRITERS.includes(s.role);
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const secret = $("login-secret").value;
    const body = { name: $("login-name").value };
    body[$("login-is-key").checked ? "key" : "password"] = secret;
    try {
      const s = await api("POST", "/admin/login", body);
      sessionStorage.setItem("pos-edge-admin", JSON.stringify(s));
      $("login-secret").value = "";
      say("");
      show();
    } catch (e) { say(e.message, true); }
  });
  $("logout").addEventListener("click", () => { sessionStorage.removeItem("pos-edge-admin"); say(""); show(); });
  $("store-filter").addEventListener("change", () => loadTerminals().catch((e) => say(e.message, true)));
  $("jobs-retry").addEventListener("click", async () => {
    try {
      const done = await api("POST", "/admin/terminals/" + encodeURIComponent(jobsOf) + "/jobs/retry");
      say(done.requeued + " job(s) queued again");
      await jobs({ device_id: jobsOf });
    } catch (e) { say(e.message, true); }
  });
  $("provision-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const device = $("provision-id").value;
    try {
      const done = await api("POST", "/admin/terminals",
        { device_id: device, device_name: $("provision-name").value, branch_id: $("provision-store").value });
      showCode(device, done);
      say(device + ": made; give its till the code");
      await refresh();
    } catch (e) { say(e.message, true); }
  });
  show();
});
