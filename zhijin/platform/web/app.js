// zhijin web app: one page, no build step, no third-party code.
//
// Every value from the server reaches the page as a text node (never innerHTML).  Money is
// integer minor units: amounts are parsed from decimal strings with BigInt, never floats, and
// JSON integers beyond 2^53 keep their exact digits where the browser can read them
// (JSON.parse source text access).
"use strict";

const API = "/api/v1";
const $ = (id) => document.getElementById(id);
const text = (value) => document.createTextNode(String(value ?? ""));
const state = {
  user: null, accounts: [], statement: null, pendingTransfer: null,
  events: null, listeningAs: undefined, received: [],
};

// -- JSON with exact big integers --------------------------------------------------------------
function parseJson(body) {
  return JSON.parse(body, (key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && context.source
        && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

function integerJson(value) {
  if (typeof value !== "bigint") return value;
  if (value <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(value);
  if (typeof JSON.rawJSON === "function") return JSON.rawJSON(value.toString());
  throw new Error("this browser cannot send an amount that large exactly");
}

// -- HTTP -----------------------------------------------------------------------------------------
class Problem extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.title)) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "http_" + status;
    this.body = body;
  }
}

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "__Host-zhijin_csrf" || name === "zhijin_csrf") return decodeURIComponent(rest.join("="));
  }
  return "";
}

async function call(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body, (k, v) => integerJson(v)),
  });
  const raw = await response.text();
  const data = raw ? parseJson(raw) : null;
  if (!response.ok) {
    const problem = new Problem(response.status, data);
    if (problem.code === "session_invalid" && state.user) {
      // Expired, revoked or signed out elsewhere: back to the sign-in form.
      setUser(null);
      show("signin");
    }
    throw problem;
  }
  return data;
}

function flash(message, bad = false) {
  const p = document.createElement("p");
  if (bad) p.className = "bad";
  p.appendChild(text(message));
  $("flash").replaceChildren(p);
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => $("flash").replaceChildren(), 8000);
}

function problemMessage(error) {
  return error instanceof Problem ? `${error.message} (${error.code})` : String(error.message || error);
}

async function busy(form, work) {
  const buttons = form.querySelectorAll("button");
  buttons.forEach((b) => { b.disabled = true; });
  try { await work(); } catch (error) { flash(problemMessage(error), true); } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// -- money ----------------------------------------------------------------------------------------
function formatMinor(amount, exponent, currency) {
  if (amount === null || amount === undefined) return "—";
  let digits = BigInt(amount);
  const negative = digits < 0n;
  if (negative) digits = -digits;
  let whole = digits.toString();
  let fraction = "";
  if (exponent > 0) {
    whole = whole.padStart(exponent + 1, "0");
    fraction = "." + whole.slice(-exponent);
    whole = whole.slice(0, -exponent);
  }
  whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${negative ? "-" : ""}${whole}${fraction} ${currency}`;
}

function parseMinor(input, exponent) {
  const match = /^(\d{1,19})(?:\.(\d+))?$/.exec(input.trim());
  if (!match) throw new Error("enter the amount as digits, with a decimal point if needed");
  const fraction = match[2] || "";
  if (fraction.length > exponent) throw new Error(`at most ${exponent} decimal places for this currency`);
  const minor = BigInt(match[1] + fraction.padEnd(exponent, "0"));
  if (minor <= 0n) throw new Error("the amount must be more than zero");
  return minor;
}

// -- views ----------------------------------------------------------------------------------------
function show(view) {
  if (!state.user && view !== "explorer") view = "signin";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-" + view;
  for (const button of document.querySelectorAll("nav button")) {
    button.classList.toggle("active", button.dataset.view === view);
  }
  if (view === "money") loadAccounts();
  if (view === "security") loadSecurity();
  if (view === "explorer") refreshExplorer();
  show.current = view;
}

function setUser(user) {
  state.user = user;
  listen(user);
  for (const element of document.querySelectorAll(".needs-user")) element.hidden = !user;
  $("who").replaceChildren(text(user ? `${user.login} · ${user.roles.join(", ")}` : ""));
  $("my-did").replaceChildren(text(user && user.did ? user.did : ""));
  // Bodies shown to the last reader are theirs, not the next one's: a change of user clears them.
  $("block-txs").replaceChildren();
  $("block-txs-card").hidden = true;
}

function cell(row, value, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.appendChild(text(value));
  row.appendChild(td);
  return td;
}

async function loadAccounts() {
  try {
    const page = await call("GET", "/accounts?limit=100");
    state.accounts = page.accounts;
  } catch (error) {
    flash(problemMessage(error), true);
    return;
  }
  const body = $("accounts");
  body.replaceChildren();
  const select = document.querySelector("#transfer-form select[name=debit]");
  select.replaceChildren();
  for (const account of state.accounts) {
    const tr = document.createElement("tr");
    tr.className = "clickable";
    cell(tr, account.id, "mono");
    cell(tr, account.currency);
    cell(tr, account.kind);
    cell(tr, formatMinor(account.balance_posted, account.exponent, account.currency), "num");
    cell(tr, formatMinor(account.available, account.exponent, account.currency), "num");
    cell(tr, account.status);
    tr.addEventListener("click", () => loadStatement(account, true));
    body.appendChild(tr);
    if (account.status === "open") {
      const option = document.createElement("option");
      option.value = account.id;
      option.appendChild(text(`${account.id} (${formatMinor(account.available ?? account.balance_posted, account.exponent, account.currency)})`));
      select.appendChild(option);
    }
  }
  $("accounts-empty").hidden = state.accounts.length > 0;
  if (state.accounts.length && !state.statement) loadStatement(state.accounts[0], true);
}

async function loadStatement(account, fresh) {
  const after = fresh || !state.statement ? 0 : state.statement.next;
  let page;
  try {
    page = await call("GET", `/accounts/${encodeURIComponent(account.id)}/statement?after_entry=${after}&limit=50`);
  } catch (error) {
    flash(problemMessage(error), true);
    return;
  }
  state.statement = { account, next: page.next_after_entry };
  $("statement-title").replaceChildren(text(account.id));
  const body = $("statement");
  if (fresh) body.replaceChildren();
  for (const entry of page.entries) {
    const tr = document.createElement("tr");
    const signed = entry.direction === "debit" ? -BigInt(entry.amount) : BigInt(entry.amount);
    cell(tr, entry.entry_no);
    cell(tr, new Date(Number(entry.time_ms)).toLocaleString());
    cell(tr, entry.reference ? `${entry.transfer_id} · ${entry.reference}` : entry.transfer_id, "mono");
    cell(tr, formatMinor(signed, account.exponent, account.currency), "num " + (signed < 0n ? "bad" : "ok"));
    cell(tr, formatMinor(entry.balance, account.exponent, account.currency), "num");
    body.appendChild(tr);
  }
  $("statement-more").hidden = page.next_after_entry === null;
}

async function submitTransfer(request) {
  try {
    const result = await call("POST", "/transfers", request);
    state.pendingTransfer = null;
    $("stepup-form").hidden = true;
    $("transfer-form").reset();
    // A 202 (committed_not_yet_visible): it is paid; the balances below may not show it yet.
    flash(result && result.code === "committed_not_yet_visible"
      ? `Paid: transfer ${request.id} committed; your balances will show it in a moment.`
      : `Paid: transfer ${result.id || request.id} committed.`);
    state.statement = null;
    await loadAccounts();
  } catch (error) {
    if (error instanceof Problem && error.code === "step_up_required") {
      // Keep the same request (and id): the retry after step-up is idempotent.
      state.pendingTransfer = request;
      $("stepup-form").hidden = false;
      $("stepup-form").querySelector("input").focus();
      return;
    }
    throw error;
  }
}

async function loadSecurity() {
  const user = state.user;
  $("totp-state").replaceChildren(text(user.totp_enabled
    ? "An authenticator is set up: sign-in and large payments ask for its code."
    : "No authenticator yet: set one up to protect sign-in and payments."));
  $("totp-begin").hidden = Boolean(user.totp_enabled);
  try {
    const page = await call("GET", "/identity/tokens?limit=50");
    const body = $("tokens");
    body.replaceChildren();
    for (const token of page.items.filter((t) => t.live)) {
      const tr = document.createElement("tr");
      cell(tr, token.name);
      cell(tr, new Date(Number(token.created_ms)).toLocaleDateString());
      cell(tr, new Date(Number(token.expires_ms)).toLocaleDateString());
      const td = cell(tr, "");
      const revoke = document.createElement("button");
      revoke.className = "link";
      revoke.type = "button";
      revoke.appendChild(text("Revoke"));
      revoke.addEventListener("click", async () => {
        try { await call("DELETE", `/identity/tokens/${encodeURIComponent(token.id)}`); loadSecurity(); }
        catch (error) { flash(problemMessage(error), true); }
      });
      td.appendChild(revoke);
      body.appendChild(tr);
    }
  } catch (error) {
    flash(problemMessage(error), true);
  }
}

// -- live notifications ---------------------------------------------------------------------------
// One server-sent event stream (GET /api/v1/events), reopened when the user changes: the session
// cookie decides what it carries (blocks for anyone; payments on the user's own accounts).
function listen(user) {
  const who = user ? user.user_id : null;
  if (state.events && state.events.readyState !== EventSource.CLOSED && state.listeningAs === who) return;
  if (state.events) state.events.close();
  state.listeningAs = who;
  state.received = [];
  const source = new EventSource(API + "/events");
  state.events = source;
  source.addEventListener("block", () => { if (show.current === "explorer") soon("explorer", refreshExplorer); });
  source.addEventListener("payments", (message) => onPayment(parseJson(message.data)));
  source.addEventListener("reset", () => soon("money", refreshMoney));
  source.addEventListener("session_invalid", () => {
    source.close();
    if (state.user) {
      setUser(null);
      show("signin");
      flash("Your session ended: sign in again (session_invalid)", true);
    }
  });
}

function soon(key, work) {
  // Coalesce a burst of events into one refresh.
  soon.timers = soon.timers || {};
  if (soon.timers[key]) return;
  soon.timers[key] = setTimeout(() => { soon.timers[key] = null; work(); }, 250);
}

async function refreshMoney() {
  if (!state.user || show.current !== "money") return;
  const current = state.statement;
  await loadAccounts();
  if (current) loadStatement(current.account, true);
  // Payments in from someone else, told once the accounts they went to are loaded.
  const mine = new Set(state.accounts.map((a) => a.id));
  for (const attrs of state.received.splice(0)) {
    const account = state.accounts.find((a) => a.id === attrs.credit_account_id);
    if (account && !mine.has(attrs.debit_account_id)) {
      flash(`Received ${formatMinor(attrs.amount, account.exponent, account.currency)} in ${account.id}.`);
    }
  }
}

const RECEIVED_TOLD_MAX = 20; // payments in, waiting to be told while another view is shown

function onPayment(notice) {
  if (!state.user) return;
  const attrs = notice.attrs;
  const flags = Array.isArray(attrs.flags) ? attrs.flags : [];
  // A hold moves nothing yet and a void gives nothing back to the payee; a posted hold does.
  const moved = !flags.includes("pending") && !flags.includes("void_pending_transfer");
  if (notice.type === "transfer_created" && moved && state.received.length < RECEIVED_TOLD_MAX) {
    state.received.push(attrs);
  }
  soon("money", refreshMoney);
}

// -- explorer -------------------------------------------------------------------------------------
async function refreshExplorer() {
  try {
    const head = await call("GET", "/chain/head");
    const dl = $("head");
    dl.replaceChildren();
    for (const key of ["chain_id", "height", "block_hash", "state_root", "log_size", "mempool", "ordering", "member"]) {
      const dt = document.createElement("dt"); dt.appendChild(text(key));
      const dd = document.createElement("dd"); dd.appendChild(text(head[key]));
      dl.append(dt, dd);
    }
    const body = $("blocks");
    const rows = [];
    for (let h = Number(head.height); h >= Math.max(0, Number(head.height) - 9); h--) {
      const block = await call("GET", `/chain/blocks/${h}`);
      const tr = document.createElement("tr");
      cell(tr, h);
      cell(tr, new Date(Number(block.header.time_ms)).toISOString());
      cell(tr, block.header.tx_count);
      cell(tr, block.hash.slice(0, 24) + "…", "mono");
      cell(tr, block.header.log_size);
      if (block.txs.length) {
        tr.className = "clickable";
        tr.addEventListener("click", () => showBlockTxs(h, block.txs));
      }
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  } catch (error) {
    flash(problemMessage(error), true);
  }
}

// A block's transactions.  Hashes and positions are public; a body and its result come back only
// for those the chain's read policy lets see them (members' staff, auditors, the regulator, the
// customers a transaction names); anyone else gets "visibility": "redacted".
const BLOCK_TXS_SHOWN_MAX = 20;

async function showBlockTxs(height, hashes) {
  const out = $("block-txs");
  $("block-txs-height").replaceChildren(text(`#${height}`));
  const items = [];
  let redacted = false;
  for (const hash of hashes.slice(0, BLOCK_TXS_SHOWN_MAX)) {
    const tx = await call("GET", `/chain/txs/${hash}`);
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.appendChild(text(`${tx.position}: ${hash}`));
    li.appendChild(code);
    if (tx.visibility === "full") {
      const body = tx.envelope.body;
      const pre = document.createElement("pre");
      pre.appendChild(text(`${body.contract}.${body.method} · ${tx.result.status}\n`
        + `sender ${body.sender}\n${JSON.stringify(body.args, null, 1)}`));
      li.appendChild(pre);
    } else {
      redacted = true;
    }
    items.push(li);
  }
  if (hashes.length > BLOCK_TXS_SHOWN_MAX) {
    const li = document.createElement("li");
    li.appendChild(text(`… ${hashes.length - BLOCK_TXS_SHOWN_MAX} more`));
    items.push(li);
  }
  out.replaceChildren(...items);
  $("block-txs-note").hidden = !redacted;
  $("block-txs-card").hidden = false;
}

async function checkDocument(event) {
  const out = $("check");
  const file = event.target.files[0];
  if (!file) return;
  out.replaceChildren(text("hashing…"));
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const p = document.createElement("p");
  try {
    const record = await call("GET", `/notary/anchors/${hex}`);
    p.className = "ok";
    const when = `Anchored at height ${record.height} on ${new Date(Number(record.anchored_at)).toISOString()}`;
    if (record.visibility === "full") {
      // The title and owner, and the receipt (it carries the anchoring transaction whole), are
      // the owner's and the members'.
      p.appendChild(text(`${when} by ${record.owner.slice(0, 24)}…: "${record.title}" (${record.status}). `));
      const link = document.createElement("a");
      link.href = `${API}/notary/anchors/${hex}/receipt`;
      link.download = `${hex}.receipt.json`;
      link.appendChild(text("Download receipt"));
      p.appendChild(link);
    } else {
      p.appendChild(text(`${when} (${record.status}). 标题、所有者与存证回执仅对其所有者及联盟成员可见。`
        + " The title, owner and receipt are for its owner and consortium members."));
    }
  } catch (error) {
    p.className = "bad";
    p.appendChild(text(error instanceof Problem && error.status === 404 ? `Not anchored: ${hex}` : problemMessage(error)));
  }
  out.replaceChildren(p);
}

// -- wiring ---------------------------------------------------------------------------------------
function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

function wire() {
  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => show(button.dataset.view));
  }

  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      const values = formValues(form);
      const body = { login: values.login, password: values.password };
      const code = (values.code || "").trim();
      if (code) body[/^\d{6,8}$/.test(code) ? "totp_code" : "recovery_code"] = code;
      try {
        const result = await call("POST", "/identity/login", body);
        form.reset();
        $("login-totp").hidden = true;
        setUser(result.user);
        show("money");
      } catch (error) {
        if (error instanceof Problem && error.code === "mfa_required") {
          $("login-totp").hidden = false;
          $("login-totp").querySelector("input").focus();
          flash("Enter the code from your authenticator.");
          return;
        }
        throw error;
      }
    });
  });

  $("register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      await call("POST", "/identity/register", formValues(form));
      form.reset();
      flash("Registered. Sign in with your new login.");
    });
  });

  $("logout").addEventListener("click", async () => {
    try { await call("POST", "/identity/logout"); } catch (error) { /* the session is gone either way */ }
    setUser(null);
    state.accounts = [];
    state.statement = null;
    show("signin");
  });

  $("transfer-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      const values = formValues(form);
      const account = state.accounts.find((a) => a.id === values.debit);
      if (!account) throw new Error("choose the account to pay from");
      const request = {
        id: "web-" + crypto.randomUUID(),
        debit_account_id: account.id,
        credit_account_id: values.credit.trim(),
        amount: parseMinor(values.amount, account.exponent),
        currency: account.currency,
      };
      if (values.reference.trim()) request.reference = values.reference.trim();
      await submitTransfer(request);
    });
  });

  $("stepup-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      await call("POST", "/identity/step-up", { totp_code: formValues(form).code.trim() });
      form.reset();
      if (state.pendingTransfer) await submitTransfer(state.pendingTransfer);
    });
  });
  $("stepup-cancel").addEventListener("click", () => {
    state.pendingTransfer = null;
    $("stepup-form").hidden = true;
  });

  $("statement-more").addEventListener("click", () => {
    if (state.statement) loadStatement(state.statement.account, false);
  });

  $("totp-begin").addEventListener("click", async () => {
    try {
      const enrolment = await call("POST", "/identity/totp/enrol");
      $("totp-qr").src = enrolment.qr_svg;
      $("totp-enrol").hidden = false;
    } catch (error) { flash(problemMessage(error), true); }
  });
  $("totp-confirm").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      const result = await call("POST", "/identity/totp/confirm", { code: formValues(form).code.trim() });
      form.reset();
      $("totp-enrol").hidden = true;
      $("recovery-codes").replaceChildren(text(result.recovery_codes.join("\n")));
      $("recovery").hidden = false;
      setUser(await call("GET", "/identity/me"));
      loadSecurity();
    });
  });

  $("keys-export").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      await call("POST", "/identity/step-up", { totp_code: formValues(form).code.trim() });
      const exported = await call("POST", "/identity/keys/export");
      form.reset();
      // Offered as a file to save, never written into the page.
      const link = $("keys-download");
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(
        new Blob([JSON.stringify(exported, null, 2)], { type: "application/json" }));
      link.hidden = false;
      flash("Your keys are ready: save the file somewhere safe.");
    });
  });

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    busy(form, async () => {
      const token = await call("POST", "/identity/tokens", { name: formValues(form).name });
      form.reset();
      $("token-new").replaceChildren(text(`Copy this token now; it is not shown again:\n${token.token}`));
      $("token-new").hidden = false;
      loadSecurity();
    });
  });
  $("revoke-others").addEventListener("click", async () => {
    try {
      const result = await call("POST", "/identity/sessions/revoke-others");
      flash(`${result.revoked} other session(s) signed out.`);
    } catch (error) { flash(problemMessage(error), true); }
  });

  $("file").addEventListener("change", checkDocument);
  // The stream refreshes the explorer; poll only while it is down for good (refused, say).
  setInterval(() => {
    if (show.current === "explorer" && state.events && state.events.readyState === EventSource.CLOSED) refreshExplorer();
  }, 5000);
}

async function start() {
  wire();
  try {
    setUser(await call("GET", "/identity/me"));
    show("money");
  } catch (error) {
    setUser(null);
    show("signin");
  }
}

document.addEventListener("DOMContentLoaded", start);
