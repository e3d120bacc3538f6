// Hashes a chosen file in the browser (WebCrypto SHA-256): only the hash is sent.  A file
// input with data-hash-into="<id>" writes the lowercase hex digest into that (hidden) input and
// enables the form's submit button once it is there (and shows it in the element marked
// data-hash-shown-for="<id>", if the page has one).
"use strict";

async function sha256Hex(file) {
  const digest = await crypto.subtle.digest("SHA-256", await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

document.addEventListener("change", async (event) => {
  const input = event.target;
  if (!(input instanceof HTMLInputElement) || !input.dataset.hashInto) return;
  const into = document.getElementById(input.dataset.hashInto);
  const submit = input.form ? input.form.querySelector("button[type=submit]") : null;
  into.value = "";
  if (submit) submit.disabled = true;
  const file = input.files && input.files[0];
  if (!file) return;
  into.value = await sha256Hex(file);
  const shown = document.querySelector(`[data-hash-shown-for="${into.id}"]`);
  if (shown) shown.textContent = `SHA-256: ${into.value}`;
  if (submit) submit.disabled = false;
});
