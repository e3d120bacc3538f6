// zhijin web shell: the few behaviours htmx does not have.  No inline script anywhere (the CSP
// forbids it); every value reaches the page as text, never as markup built here.
"use strict";

// Every htmx request carries the session's CSRF token (identity checks it on unsafe methods).
document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
});

function say(message) {
  const flash = document.getElementById("flash");
  if (!flash) return;
  const p = document.createElement("p");
  p.className = "notice bad";
  p.appendChild(document.createTextNode(message));
  flash.replaceChildren(p);
}

// The server could not be reached, or failed: tell the user in their language (the texts are
// on <body>, rendered from the catalog).
document.addEventListener("htmx:sendError", () => say(document.body.dataset.networkError));
document.addEventListener("htmx:responseError", () => say(document.body.dataset.serverError));

// After a swap, move the focus where the new content asks for it (a step-up code field, a
// result), so keyboard and screen-reader users land on what changed.
document.addEventListener("htmx:afterSettle", (event) => {
  const target = event.detail.elt && event.detail.elt.querySelector
    ? event.detail.elt.querySelector("[data-focus]") : null;
  if (target) target.focus();
});

// Live parts: an element with data-live="payments block" is fetched again (by htmx, the
// element alone) when the live stream (GET /api/v1/events) announces one of those events, so a
// payment received or a new block shows without a reload.  A burst of events is one refresh.
const LIVE_REFRESH_MS = 300;

function listen(live) {
  const source = new EventSource("/api/v1/events");
  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      window.htmx.ajax("GET", window.location.pathname + window.location.search,
        { target: `#${live.id}`, select: `#${live.id}`, swap: "outerHTML" });
    }, LIVE_REFRESH_MS);
  };
  for (const kind of live.dataset.live.split(" ")) source.addEventListener(kind, refresh);
  source.addEventListener("reset", refresh);
  source.addEventListener("session_invalid", () => source.close());
  window.addEventListener("pagehide", () => source.close());
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.querySelector("[data-live][id]");
  if (live && window.EventSource && window.htmx) listen(live);
});
