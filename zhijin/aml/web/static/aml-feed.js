// The regulator's live feed: committed transactions and alerts from GET /api/v1/aml/feed
// (server-sent events, id = the block height), resumed after the height the page was rendered
// at, so nothing is missed between the page and the stream; the browser's EventSource sends
// Last-Event-ID when it reconnects, so nothing is repeated either.  Rows are built from text
// nodes only, the words (typologies, directions, channels) come from the catalog through the
// page (data-words): no English word on a zh-CN page.  No inline script (the CSP).
"use strict";

const ROWS_KEPT = 100;

function groupDigits(text) {
  const negative = text.startsWith("-");
  const [whole, fraction] = (negative ? text.slice(1) : text).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (negative ? "-" : "") + grouped + (fraction ? `.${fraction}` : "");
}

function short(party) {
  return party.length <= 20 ? party : `${party.slice(0, 8)}…${party.slice(-6)}`;
}

function cell(row, label, text, className) {
  const td = document.createElement("td");
  td.dataset.label = label;
  if (className) td.className = className;
  td.appendChild(document.createTextNode(text));
  row.appendChild(td);
  return td;
}

function labelsOf(tbody) {
  return Array.from(tbody.closest("table").querySelectorAll("thead th")).map((th) => th.textContent);
}

function prepend(tbody, row) {
  tbody.insertBefore(row, tbody.firstChild);
  while (tbody.children.length > ROWS_KEPT) tbody.removeChild(tbody.lastChild);
}

function start(feed) {
  const words = JSON.parse(feed.dataset.words);
  const locale = feed.dataset.locale === "zh_CN" ? "zh-CN" : "en";
  const time = new Intl.DateTimeFormat(locale, { timeZone: "Asia/Shanghai", dateStyle: "medium", timeStyle: "medium" });
  const state = document.getElementById("feed-state");
  const moves = document.getElementById("feed-transactions");
  const alerts = document.getElementById("feed-alerts");
  const amount = (value, currency) => {
    const pattern = words.money[currency];
    return pattern ? pattern.replace(/[0-9][0-9.,]*/, groupDigits(value)) : `${groupDigits(value)} ${currency}`;
  };
  const source = new EventSource(`/api/v1/aml/feed?after=${encodeURIComponent(feed.dataset.after)}`);
  source.addEventListener("open", () => { state.textContent = state.dataset.liveText; });
  source.addEventListener("error", () => { state.textContent = state.dataset.lostText; });
  source.addEventListener("transaction", (event) => {
    const m = JSON.parse(event.data);
    if (moves.querySelector(`tr[data-transfer="${CSS.escape(m.transfer_id)}"]`)) return;
    const labels = labelsOf(moves);
    const row = document.createElement("tr");
    row.dataset.transfer = m.transfer_id;
    row.className = "fresh";
    cell(row, labels[0], time.format(new Date(m.time_ms)));
    cell(row, labels[1], short(m.payer), "mono");
    cell(row, labels[2], short(m.payee), "mono");
    cell(row, labels[3], words.channel[m.channel] || "");
    cell(row, labels[4], amount(m.amount, m.currency), "num");
    prepend(moves, row);
  });
  source.addEventListener("alert", (event) => {
    const a = JSON.parse(event.data);
    const existing = alerts.querySelector(`tr[data-alert="${CSS.escape(a.alert_id)}"]`);
    if (existing) existing.remove(); // an alert that grew: shown again at the top
    const labels = labelsOf(alerts);
    const row = document.createElement("tr");
    row.dataset.alert = a.alert_id;
    row.className = "fresh";
    cell(row, labels[0], a.day);
    cell(row, labels[1], `${words.typology[a.typology] || ""} · ${words.direction[a.direction] || ""}`);
    cell(row, labels[2], short(a.member), "mono");
    cell(row, labels[3], short(a.customer), "mono");
    cell(row, labels[4], amount(a.amount, a.currency), "num");
    prepend(alerts, row);
  });
  window.addEventListener("pagehide", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  const feed = document.getElementById("feed");
  if (feed && window.EventSource) start(feed);
});
