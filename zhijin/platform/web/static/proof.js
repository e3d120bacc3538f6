// "Verify this proof in your browser" (explorer, a transaction's page): fetch the signed tree
// head and the tx's RFC 6962 inclusion proof from the API, and recompute the root here with
// WebCrypto SHA-256, so the reader need not trust the server's word that the tx is in the log.
//
//   leaf = SHA-256(0x00 || tx_hash), node = SHA-256(0x01 || left || right)
//   the audit path is walked as RFC 9162 section 2.1.3.2 says.
//
// The tree head's member signatures (Ed25519 over canonical JSON of chain_id, tree_size, root,
// height, block_hash; the signer a did:key) are checked here too, with WebCrypto's Ed25519.
//
// The section carries the texts (data-t-*, rendered from the catalog) and the tx hash; every
// value reaches the page as text, never as markup.
"use strict";

const HEX = /^[0-9a-f]{64}$/;

function fromHex(hex) {
  if (typeof hex !== "string" || !HEX.test(hex)) throw new Error("not a SHA-256 hex digest");
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function toHex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(...parts) {
  const length = parts.reduce((n, p) => n + p.length, 0);
  const joined = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await crypto.subtle.digest("SHA-256", joined));
}

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

// RFC 9162 2.1.3.2: the root an audit path gives, and the steps taken (side: the sibling's).
async function rootFromPath(leafIndex, treeSize, leafHash, path) {
  if (!(Number.isSafeInteger(leafIndex) && Number.isSafeInteger(treeSize))) return null;
  if (leafIndex < 0 || leafIndex >= treeSize) return null;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  const steps = [];
  for (const hex of path) {
    const p = fromHex(hex);
    if (sn === 0) return null; // a longer path than the tree is deep
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(NODE, p, r);
      steps.push({ side: "left", sibling: hex, result: toHex(r) });
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(NODE, r, p);
      steps.push({ side: "right", sibling: hex, result: toHex(r) });
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return null; // a shorter path than the tree is deep
  return { root: toHex(r), steps };
}

function fill(template, values) {
  return template.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

function base58(text) {
  const bytes = [0];
  for (const char of text) {
    let carry = BASE58.indexOf(char);
    if (carry < 0) throw new Error("not base58");
    for (let i = 0; i < bytes.length; i++) {
      carry += bytes[i] * 58;
      bytes[i] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  for (const char of text) {
    if (char !== "1") break;
    bytes.push(0);
  }
  return Uint8Array.from(bytes.reverse());
}

// did:key:z<base58btc(0xed 0x01 || 32-byte Ed25519 public key)>
function ed25519Key(did) {
  if (typeof did !== "string" || !did.startsWith("did:key:z")) throw new Error("not a did:key");
  const raw = base58(did.slice("did:key:z".length));
  const key = raw.slice(raw.length - 34);
  if (raw.length < 34 || key[0] !== 0xed || key[1] !== 0x01) throw new Error("not Ed25519");
  return key.slice(2);
}

// RFC 8785 of the tree head's signed fields: sorted keys, no spaces (strings and integers).
function signedTreeHead(chainId, sth) {
  const body = { block_hash: sth.block_hash, chain_id: chainId, height: sth.height,
    root: sth.root, tree_size: sth.tree_size };
  return new TextEncoder().encode(JSON.stringify(body, Object.keys(body).sort()));
}

function fromHexAny(hex) {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})+$/.test(hex)) throw new Error("not hex");
  return Uint8Array.from(hex.match(/../g), (b) => parseInt(b, 16));
}

// Each signature: true (valid), false (invalid); null when the browser has no Ed25519.
async function checkSignature(message, signature) {
  let key;
  try {
    key = await crypto.subtle.importKey("raw", ed25519Key(signature.signer), { name: "Ed25519" },
      false, ["verify"]);
  } catch (error) {
    if (error && error.name === "NotSupportedError") return null;
    return false;
  }
  try {
    return await crypto.subtle.verify({ name: "Ed25519" }, key, fromHexAny(signature.signature),
      message);
  } catch {
    return false;
  }
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function verify(section) {
  const t = section.dataset;
  const list = section.querySelector(".proof-steps");
  const verdict = section.querySelector(".proof-verdict");
  const step = (text, ok) => {
    const li = document.createElement("li");
    li.textContent = text;
    if (ok === false) li.className = "bad";
    list.appendChild(li);
  };
  const judge = (ok, why) => {
    verdict.textContent = ok ? t.tPass : `${t.tFail} ${why || ""}`.trim();
    verdict.className = `proof-verdict notice ${ok ? "ok" : "bad"}`;
    verdict.dataset.result = ok ? "pass" : "fail";
    verdict.focus();
  };
  list.replaceChildren();
  verdict.textContent = t.tWorking;
  verdict.className = "proof-verdict notice";
  delete verdict.dataset.result;
  try {
    const head = await fetchJson("/api/v1/chain/head");
    const sth = head.tree_head;
    if (!sth) return judge(false, t.tNoHead);
    const signatures = sth.signatures || [];
    step(fill(t.tSth, { size: sth.tree_size, root: sth.root, height: sth.height,
      count: signatures.length }));
    if (!signatures.length) return judge(false, t.tNoSigs);
    const message = signedTreeHead(head.chain_id, sth);
    for (const signature of signatures) {
      const valid = await checkSignature(message, signature);
      if (valid === null) {
        step(t.tSigUnsupported, false);
        return judge(false, t.tSigUnsupported);
      }
      step(fill(valid ? t.tSigOk : t.tSigBad, { signer: signature.signer }), valid);
      if (!valid) return judge(false, t.tSigMismatch);
    }
    const proof = await fetchJson(
      `/api/v1/chain/proofs/inclusion/${t.tx}?size=${encodeURIComponent(sth.tree_size)}`);
    const txHash = fromHex(t.tx);
    const leaf = await sha256(LEAF, txHash);
    const leafOk = toHex(leaf) === proof.leaf_hash;
    step(fill(t.tLeaf, { leaf: toHex(leaf) }), leafOk);
    if (!leafOk) return judge(false, t.tLeafMismatch);
    const walked = await rootFromPath(proof.leaf_index, proof.tree_size, leaf, proof.proof || []);
    if (walked === null) return judge(false, t.tBadPath);
    for (const s of walked.steps) {
      step(fill(s.side === "left" ? t.tLeft : t.tRight, { sibling: s.sibling, result: s.result }));
    }
    const sameSize = proof.tree_size === sth.tree_size;
    const rootOk = sameSize && walked.root === sth.root;
    step(fill(t.tRoot, { root: walked.root, size: proof.tree_size }), rootOk);
    return judge(rootOk, rootOk ? "" : t.tRootMismatch);
  } catch (error) {
    step(String(error && error.message ? error.message : error), false);
    return judge(false, t.tUnreadable);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-verify-proof]") : null;
  if (!button) return;
  const section = document.getElementById(button.dataset.verifyProof);
  if (!section) return;
  button.disabled = true;
  verify(section).finally(() => { button.disabled = false; });
});
