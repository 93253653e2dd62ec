// The explorer's pages: log overview, search (index, digest, signer, predicate type, a
// dropped file), and the entry page, which verifies what it shows in the browser
// (./verify.js) before it shows a green badge. Routing is by URL hash (#/entry/3); the
// trusted keys come from the URL (?key=VKEY&witness=VKEY&k=N), a pin in this browser, or,
// least trusted, the server's own config (/explorer/config.json). Server data goes into the
// page as text nodes only.

import { sha256 } from "@noble/hashes/sha2.js";
import {
  NO_WITNESS,
  VerifyError,
  checkWitnesses,
  fromHex,
  noWitnessDetail,
  parseCheckpoint,
  parseNote,
  parseVkey,
  toHex,
  verifyConsistency,
  verifyEntry,
  verifyNoteKey,
} from "./verify.js";
import { anchorsSection, datasetPage, environmentPage, modelPage, registryPage } from "./registry.js";
import { feedPage, feedsPage } from "./oracle.js";
import { orgResults, txPage } from "./lookup.js";
import { badge, code, dl, entryLink, getJSON, getText, h, main, searchLink, section, setPage, settleBadge, short, table, txLink, whenIndexed } from "./ui.js";

const PIN_KEY = "ailedger.explorer.key";
/** The pages that read the service's registry index (or its oracle and chain lookups). */
const INDEXED = new Set(["model", "dataset", "env", "registry", "feeds", "feed", "tx", "search"]);
const RECENT = 10;
const SEEN = "ailedger.explorer.seen."; // + the trusted log vkey: the last checkpoint verified
const FILE_NAME = "ailedger.explorer.file."; // + digest: the name of a file hashed here
let serverConfig = null;
let renderToken = 0;

// --- trust -------------------------------------------------------------------------------

/** The keys the page trusts and where each came from. */
function trust() {
  const params = new URLSearchParams(location.search);
  const out = { logKey: null, keySource: "", keyPinned: false, witnesses: [], witnessSource: "", threshold: 0, error: null };
  // a vkey holds no spaces but "+" signs, which a query string decodes as spaces when the
  // key was pasted into the URL unescaped
  const param = (name) => params.getAll(name).map((v) => v.replace(/ /g, "+"));
  let vkey = param("key")[0];
  if (vkey) {
    out.keySource = "pinned in the page's URL (?key=)";
    out.keyPinned = true;
  } else if ((vkey = localStorage.getItem(PIN_KEY))) {
    out.keySource = "pinned in this browser";
    out.keyPinned = true;
  } else {
    vkey = serverConfig.log_key;
    out.keySource = "handed out by this server: not pinned, so you are trusting the server";
  }
  try {
    out.logKey = parseVkey(vkey);
  } catch (e) {
    out.error = `the trusted log key is not valid: ${e.message}`;
  }
  const pinnedWitnesses = param("witness");
  try {
    if (pinnedWitnesses.length) {
      out.witnesses = pinnedWitnesses.map(parseVkey);
      out.witnessSource = "pinned in the page's URL (?witness=)";
      out.threshold = params.has("k") ? Number(params.get("k")) : out.witnesses.length;
    } else {
      out.witnesses = serverConfig.witnesses.map(parseVkey);
      out.witnessSource = "as configured on this server";
      out.threshold = serverConfig.witness_threshold;
    }
    if (!Number.isInteger(out.threshold) || out.threshold < 0 || out.threshold > out.witnesses.length) {
      throw new VerifyError(`witness threshold ${out.threshold} is not between 0 and ${out.witnesses.length}`);
    }
    if (out.witnesses.some((w) => !w.kind.endsWith("cosignature"))) {
      throw new VerifyError("a witness key is not a cosignature key");
    }
  } catch (e) {
    out.error = `the trusted witnesses are not valid: ${e.message}`;
  }
  return out;
}

function trustPanel(t) {
  const differs = t.keyPinned && t.logKey && t.logKey.vkey !== serverConfig.log_key;
  return h(
    "aside",
    { class: `trust ${t.keyPinned ? "pinned" : "unpinned"}`, "aria-label": "Trusted keys" },
    h("p", {}, h("strong", {}, "Trusted log key: "), code(t.logKey ? t.logKey.vkey : "(none)"), " — ", t.keySource, "."),
    t.keyPinned ? null : h("p", {}, "Recommended: pin the key the log operator gave you out of band (", h("a", { href: "#/trust" }, "pin a key"), "); a key the server hands out proves only that the server signed its own data."),
    differs ? h("p", { class: "warn", role: "alert" }, "The server says its key is ", code(serverConfig.log_key), ": not the key you pinned. Entries are checked against your pinned key.") : null,
    h("p", {}, h("strong", {}, "Witnesses: "), t.witnesses.length ? `${t.witnesses.map((w) => w.name).join(", ")} (${t.threshold} required), ${t.witnessSource}.` : `none trusted, ${t.witnessSource}.`),
    t.error ? h("p", { class: "warn", role: "alert" }, t.error) : null,
  );
}

// --- consistency with what this browser saw before -------------------------------------

/** The "consistency" check: the checkpoint `cp` (its signature already verified) extends the
 * last one this browser verified under the same trusted key (RFC 9162 consistency proof from
 * the server, checked here against the remembered root). A smaller size is a rollback. */
async function consistencyCheck(t, cp) {
  const name = "consistency";
  let seen = null;
  try {
    seen = JSON.parse(localStorage.getItem(SEEN + t.logKey.vkey) ?? "null");
  } catch {
    seen = null;
  }
  if (!seen || !/^[1-9][0-9]*$/.test(String(seen.size)) || !/^[0-9a-f]{64}$/.test(String(seen.root))) {
    return { name, ok: true, detail: `the first checkpoint this browser verified for this key (size ${cp.size}): remembered for the next visit` };
  }
  try {
    const oldSize = BigInt(seen.size);
    if (oldSize > cp.size) {
      throw new VerifyError(`the server's checkpoint (size ${cp.size}) is older than one this browser verified (size ${seen.size}): a rollback`);
    }
    let proof = [];
    if (oldSize < cp.size) {
      const doc = await getJSON(`/v1/proof/consistency?old=${seen.size}&new=${cp.size}`);
      if (!doc || !Array.isArray(doc.hashes)) throw new VerifyError("the server sent no consistency proof");
      proof = doc.hashes.map(fromHex);
    }
    verifyConsistency(oldSize, cp.size, fromHex(seen.root), cp.root, proof);
    return { name, ok: true, detail: `RFC 9162: extends the checkpoint of size ${seen.size} this browser verified before` };
  } catch (e) {
    return { name, ok: false, detail: e instanceof VerifyError ? e.message : `${e.message ?? e}` };
  }
}

function remember(t, cp) {
  if (cp.size > 0n) localStorage.setItem(SEEN + t.logKey.vkey, JSON.stringify({ size: String(cp.size), root: toHex(cp.root) }));
}

// --- pages -------------------------------------------------------------------------------

/** The served checkpoint `noteText` checked against the trusted keys: its signature, the
 * witnesses' cosignatures and consistency with what this browser saw (remembered when all
 * pass). {checks, note, cp, cosigs, ok}. */
async function checkCheckpoint(t, noteText) {
  const checks = [];
  let note = null;
  let cp = null;
  let cosigs = [];
  try {
    if (t.error) throw new VerifyError(t.error);
    note = parseNote(noteText);
    cp = parseCheckpoint(note.text);
    if (cp.origin !== t.logKey.name) throw new VerifyError(`the checkpoint is for log ${cp.origin}, the trusted key for ${t.logKey.name}`);
    verifyNoteKey(note, t.logKey);
    checks.push({ name: "checkpoint signature", ok: true, detail: `signed by the trusted log key ${t.logKey.name} (${toHex(t.logKey.keyId)}, ${t.logKey.kind})` });
    cosigs = checkWitnesses(note, t.witnesses, t.threshold);
    const good = cosigs.filter((c) => c.ok).length;
    if (t.threshold === 0) checks.push({ name: NO_WITNESS, ok: true, info: true, detail: noWitnessDetail(good, t.witnesses.length) });
    else checks.push({ name: "witness cosignatures", ok: true, detail: `${good} of ${t.witnesses.length} trusted witnesses cosigned (${t.threshold} required)` });
  } catch (e) {
    checks.push({ name: checks.length ? "witness cosignatures" : "checkpoint signature", ok: false, detail: e.message });
  }
  if (checks.length === 2 && checks.every((c) => c.ok)) checks.push(await consistencyCheck(t, cp));
  const ok = checks.length === 3 && checks.every((c) => c.ok);
  if (ok) remember(t, cp);
  return { checks, note, cp, cosigs, ok };
}


async function overviewPage(token) {
  const t = trust();
  const b = badge();
  setPage("Log overview", trustPanel(t), searchForm(""), dropZone(), b, h("p", {}, "Loading the checkpoint…"));
  let noteText;
  let recent;
  try {
    noteText = await getText("/checkpoint");
  } catch (e) {
    if (token !== renderToken) return;
    settleBadge(b, false, [{ name: "fetch checkpoint", ok: false, detail: e.message }], "");
    return;
  }
  if (token !== renderToken) return;
  const { checks, note, cp, cosigs, ok } = await checkCheckpoint(t, noteText);
  if (token !== renderToken) return;
  settleBadge(b, ok, checks, "the latest checkpoint");
  const size = cp ? Number(cp.size) : 0;
  try {
    recent = size ? (await getJSON(`/v1/entries?start=${Math.max(0, size - RECENT)}&limit=${RECENT}`)).entries : [];
  } catch (e) {
    recent = null;
  }
  if (token !== renderToken) return;
  main.lastChild.replaceWith(
    section(
      "Latest checkpoint",
      cp ? dl([["Log", code(cp.origin)], ["Size", `${cp.size} entries`], ["Root hash", code(toHex(cp.root))]]) : null,
      note ? signaturesTable(note, t, cosigs, { log: checks[0]?.ok, witnesses: checks[1]?.ok }) : null,
      h("details", {}, h("summary", {}, "The signed note as served"), h("pre", { class: "note" }, noteText)),
    ),
    section(
      "Recent entries",
      h("p", { class: "hint" }, "As the server lists them: open an entry to verify it."),
      recent === null ? h("p", { class: "warn" }, "Could not load the recent entries.") : entriesTable([...recent].reverse()),
    ),
    await anchorsSection(ok ? cp : null),
  );
}

function signaturesTable(note, t, cosigs, checked) {
  const rows = note.signatures.map((s) => {
    const id = toHex(s.keyId);
    const isLog = t.logKey && s.name === t.logKey.name && id === toHex(t.logKey.keyId);
    const isWitness = t.witnesses.some((w) => w.name === s.name && toHex(w.keyId) === id);
    const c = cosigs.find((r) => r.witness.name === s.name && toHex(r.witness.keyId) === id);
    const role = isLog ? "log key (trusted)" : isWitness ? "witness (trusted)" : "unknown key";
    let status = "ignored (not a trusted key)";
    if (isLog) status = checked.log ? "✔ verified" : "✘ not verified";
    else if (isWitness) status = c && c.ok ? "✔ verified" : checked.witnesses ? "✘ not verified" : "not reached";
    const when = c && c.time !== undefined ? new Date(c.time * 1000).toISOString() : "";
    return [s.name, code(id), role, status, when];
  });
  return table(["Signer", "Key ID", "Role", "Checked", "Cosigned at"], rows, "Signatures on the checkpoint");
}

function entriesTable(entries) {
  if (!entries.length) return h("p", {}, "No entries.");
  const rows = entries.map((e) => [
    entryLink(e.index),
    e.predicate_type ?? e.payload_type ?? "",
    h("ul", { class: "plain" }, (e.subjects ?? []).map((s) => h("li", {}, s.name ? `${s.name} ` : "", searchLink(s.digest, short(s.digest))))),
    h("ul", { class: "plain" }, (e.signers ?? []).map((s) => h("li", {}, searchLink(`signer:${s}`, short(s))))),
    e.time ?? "",
  ]);
  return table(["Entry", "Predicate type", "Subjects", "Signers", "Appended"], rows);
}


async function entryPage(token, index) {
  const t = trust();
  const b = badge();
  setPage(`Entry ${index}`, trustPanel(t), b, h("p", {}, "Loading the entry…"));
  let doc;
  try {
    doc = await getJSON(`/v1/entries/${index}`);
  } catch (e) {
    if (token !== renderToken) return;
    settleBadge(b, false, [{ name: "fetch entry", ok: false, detail: e.message }], "");
    main.lastChild.replaceWith(h("p", {}, "The entry could not be loaded."));
    return;
  }
  if (token !== renderToken) return;
  const result = t.error
    ? { ok: false, checks: [{ name: "trusted keys", ok: false, detail: t.error }] }
    : verifyEntry(doc, index, t.logKey, t.witnesses, t.threshold, serverConfig.dsse_keys ?? []);
  if (result.ok) {
    result.checks.push(await consistencyCheck(t, result.checkpoint));
    if (token !== renderToken) return;
    result.ok = result.checks.every((c) => c.ok);
    if (result.ok) remember(t, result.checkpoint);
  }
  settleBadge(b, result.ok, result.checks, `entry ${index} is in the log, signed as shown`);
  main.lastChild.replaceWith(...entrySections(doc, result, t));
  const chain = await chainSection(index, result.ok ? result.statement : null);
  if (token !== renderToken) return;
  main.append(chain);
}

/** The anchor that covers entry `index` (the first anchored checkpoint larger than it) and
 * the transaction a verified statement names, linked to their transaction pages. */
async function chainSection(index, statement) {
  let anchors;
  try {
    anchors = (await getJSON("/v1/anchors")).anchors ?? [];
  } catch {
    anchors = null;
  }
  const covering = anchors ? anchors.filter((a) => a.size > index).sort((a, b) => a.size - b.size)[0] : null;
  const named = statement?.predicate?.transaction;
  return section(
    "On chain",
    dl([
      ["Anchor", covering ? h("span", {}, `#${covering.index} (size ${covering.size}) in transaction `, txLink(covering.transaction), `, block ${covering.block}`) : anchors === null ? "the anchors could not be loaded" : "not anchored yet"],
      typeof named === "string" && /^0x[0-9a-fA-F]{64}$/.test(named) ? ["Transaction the statement names", txLink(named)] : null,
    ]),
    h("p", { class: "hint" }, "As the server records it: the transaction page checks an anchor against the verified checkpoint."),
  );
}

const passed = (result, name) => result.checks.some((c) => c.name === name && c.ok);

function entrySections(doc, result, t) {
  const out = [];
  if (!result.ok) {
    out.push(h("p", { class: "warn", role: "alert" }, "What follows did not verify: it is shown as the server sent it. Do not rely on it."));
  }
  const st = result.statement;
  const env = result.envelope;
  if (st && typeof st === "object") {
    const subjects = Array.isArray(st.subject) ? st.subject : [];
    out.push(
      section(
        "Statement",
        dl([["Type", code(String(st._type ?? ""))], ["Predicate type", code(String(st.predicateType ?? ""))]]),
        table(
          ["Subject", "Digest"],
          subjects.map((s) => [
            String(s?.name ?? ""),
            h("ul", { class: "plain" }, Object.entries(s?.digest ?? {}).map(([alg, v]) => h("li", {}, searchLink(`${alg}:${v}`, `${alg}:${v}`)))),
          ]),
          "Subjects",
        ),
        h("h3", {}, "Predicate"),
        h("pre", { class: "json", tabindex: "0" }, JSON.stringify(st.predicate ?? null, null, 2)),
      ),
    );
  } else if (env) {
    out.push(section("Payload", dl([["Payload type", code(env.payloadType)], ["Size", `${env.payload.length} bytes`]])));
  }
  if (env) {
    const sigOk = result.checks.find((c) => c.name === "envelope signatures");
    out.push(
      section(
        "Signatures",
        table(
          ["Key ID", "Signature", "Checked"],
          env.signatures.map((s) => [s.keyid ? searchLink(`signer:${s.keyid}`, s.keyid) : "(no keyid)", code(short(toHex(s.sig))), sigOk ? (sigOk.ok ? "✔ verified (over PAE)" : "✘ see the badge") : "not reached"]),
        ),
      ),
    );
  }
  const cp = result.checkpoint;
  out.push(
    section(
      "Log position",
      dl([
        ["Index", String(doc.index)],
        cp ? ["Tree size", `${cp.size} (checkpoint)`] : null,
        ["Leaf hash", code(String(doc.leaf_hash ?? ""))],
        ["Appended", `${doc.time ?? "?"} (as the server says)`],
        ["Inclusion proof", h("ol", { class: "plain mono" }, (doc.inclusion_proof ?? []).map((x) => h("li", {}, String(x))))],
      ]),
    ),
  );
  if (result.note) {
    out.push(
      section(
        "Checkpoint",
        cp ? dl([["Log", code(cp.origin)], ["Size", String(cp.size)], ["Root hash", code(toHex(cp.root))]]) : null,
        h("pre", { class: "note", tabindex: "0" }, String(doc.checkpoint)),
      ),
      section(
        "Witnesses",
        signaturesTable(result.note, t, result.cosignatures ?? [], {
          log: passed(result, "checkpoint signature"),
          witnesses: passed(result, "witness cosignatures") || passed(result, NO_WITNESS),
        }),
      ),
    );
  }
  return out;
}

function searchForm(value) {
  const input = h("input", { id: "q", name: "q", type: "search", value, placeholder: "entry index, digest, 0x signer, transaction, organisation", autocomplete: "off", "aria-describedby": "q-help" });
  return h(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (ev) => {
        ev.preventDefault();
        const q = input.value.trim();
        if (q) location.hash = `#/search/${encodeURIComponent(q)}`;
      },
    },
    h("label", { for: "q" }, "Search the log"),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Search")),
    h("p", { id: "q-help", class: "hint" }, "An entry index (42), a digest (sha256:… or 64 hex digits), a signer (0x… or signer:KEYID), a transaction (0x and 64 hex digits), an organisation, NAME@VERSION, a predicate type (https://…), or drop a file below."),
  );
}

function dropZone() {
  const status = h("p", { class: "hint", id: "drop-status", "aria-live": "polite" }, "The file is hashed (SHA-256) in your browser; it is never uploaded.");
  const onFile = async (file) => {
    if (!file) return;
    status.textContent = `Hashing ${file.name} (${file.size} bytes)…`;
    const digest = await hashFile(file);
    status.textContent = `${file.name}: sha256:${digest}`;
    sessionStorage.setItem(`${FILE_NAME}sha256:${digest}`, file.name);
    location.hash = `#/search/${encodeURIComponent(`sha256:${digest}`)}`;
  };
  const input = h("input", { id: "file", type: "file", onchange: (ev) => onFile(ev.target.files[0]) });
  const zone = h(
    "div",
    {
      class: "drop",
      id: "drop",
      tabindex: "0",
      role: "button",
      "aria-describedby": "drop-status",
      ondragover: (ev) => {
        ev.preventDefault();
        zone.classList.add("over");
      },
      ondragleave: () => zone.classList.remove("over"),
      ondrop: (ev) => {
        ev.preventDefault();
        zone.classList.remove("over");
        onFile(ev.dataTransfer.files[0]);
      },
      onkeydown: (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          input.click();
        }
      },
      onclick: () => input.click(),
    },
    "Drop a file here to find every statement about it",
  );
  return h("div", { class: "drop-wrap" }, zone, h("label", { for: "file" }, "or choose a file: "), input, status);
}

/** SHA-256 of a File, streamed (@noble/hashes: works without a secure context too). */
async function hashFile(file) {
  const hasher = sha256.create();
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    hasher.update(value);
  }
  return toHex(hasher.digest());
}

/** What a search string asks for: an entry index, or a query of /v1/entries. */
function classify(q) {
  const s = q.trim();
  if (s.startsWith("signer:")) return { kind: "query", param: "signer", value: s.slice(7), what: "entries signed by" };
  if (/^#?\d+$/.test(s)) return { kind: "index", index: Number(s.replace("#", "")) };
  if (/^[0-9a-fA-F]{64}$/.test(s)) return { kind: "query", param: "subject", value: `sha256:${s.toLowerCase()}`, what: "statements about digest" };
  if (/^0x[0-9a-fA-F]{64}$/.test(s)) return { kind: "tx", tx: s.toLowerCase() };
  if (/^[a-z0-9-]+:[0-9a-fA-F]{16,}$/i.test(s)) return { kind: "query", param: "subject", value: s.toLowerCase(), what: "statements about digest" };
  if (/^0x[0-9a-fA-F]{40}$/.test(s)) return { kind: "query", param: "signer", value: s, what: "entries signed by" };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return { kind: "query", param: "predicate_type", value: s, what: "statements of predicate type" };
  if (/^[^\s@]+@[^\s@]+$/.test(s)) return { kind: "ref", ref: s };
  return { kind: "query", param: "signer", value: s, what: "entries signed by key", org: s };
}

async function searchPage(token, q) {
  const c = classify(q);
  if (c.kind === "index") {
    location.replace(`#/entry/${c.index}`);
    return;
  }
  const results = h("div", { id: "results", "aria-live": "polite" }, q.trim() ? "Searching…" : "");
  setPage("Search", searchForm(q), dropZone(), results);
  if (!q.trim()) return;
  if (c.kind === "tx") {
    // an entry digest (sha256 with 0x) or a transaction: ask for both
    const [entries, tx] = await Promise.all([
      getJSON(`/v1/entries?subject=${encodeURIComponent(`sha256:${c.tx.slice(2)}`)}`).then((d) => d.entries ?? []).catch(() => []),
      getJSON(`/v1/transactions/${c.tx}`).catch(() => null),
    ]);
    if (token !== renderToken) return;
    if (tx && !entries.length) {
      location.replace(`#/tx/${c.tx}`);
      return;
    }
    results.replaceChildren(
      tx ? h("p", {}, "Transaction ", txLink(c.tx), ": open it to see and verify what this service knows of it.") : "",
      entries.length ? [h("p", {}, `${entries.length} ${entries.length === 1 ? "statement" : "statements"} about digest `, code(`sha256:${c.tx.slice(2)}`), "."), entriesTable(entries)] : "",
      !tx && !entries.length ? h("p", {}, "No statement about this digest and no transaction known to this service.") : "",
    );
    return;
  }
  if (c.org && (await orgResults(ctx, token, c.org, results, entriesTable))) return;
  if (token !== renderToken) return;
  if (c.kind === "ref") {
    try {
      const doc = await getJSON(`/v1/registry/lookup?ref=${encodeURIComponent(c.ref)}`);
      if (token !== renderToken) return;
      results.replaceChildren(
        h("p", {}, `${doc.versions.length} registered ${doc.versions.length === 1 ? "version" : "versions"} named `, code(c.ref), " (as the server's registry index says: open it to verify)."),
        table(
          ["Kind", "Version", "Digest", "Registered"],
          doc.versions.map((v) => [v.kind, h("a", { href: `#/${v.kind}/${encodeURIComponent(v.name)}` }, v.ref), searchLink(v.digest, short(v.digest)), entryLink(v.log_index)]),
        ),
      );
    } catch (e) {
      if (token !== renderToken) return;
      results.replaceChildren(h("p", { class: "warn" }, `Search failed: ${e.message}`));
    }
    return;
  }
  try {
    const doc = await getJSON(`/v1/entries?${c.param}=${encodeURIComponent(c.value)}`);
    if (token !== renderToken) return;
    results.replaceChildren(
      h(
        "p",
        {},
        `${doc.entries.length} ${doc.entries.length === 1 ? c.what.replace("statements", "statement").replace("entries", "entry") : c.what} `,
        code(c.value),
        sessionStorage.getItem(FILE_NAME + c.value) ? ` (your file ${sessionStorage.getItem(FILE_NAME + c.value)}, hashed in this browser)` : "",
        doc.entries.length >= 100 ? " (the first 100)" : "",
        ".",
      ),
      h("p", { class: "hint" }, "As the server lists them: open an entry to verify it."),
      entriesTable(doc.entries),
    );
  } catch (e) {
    if (token !== renderToken) return;
    results.replaceChildren(h("p", { class: "warn" }, `Search failed: ${e.message}`));
  }
}

function trustPage() {
  const t = trust();
  const input = h("input", { id: "pin", type: "text", value: localStorage.getItem(PIN_KEY) ?? "", placeholder: "origin+keyid+base64", "aria-describedby": "pin-help", autocomplete: "off", spellcheck: "false" });
  const status = h("p", { role: "status" });
  const form = h(
    "form",
    {
      onsubmit: (ev) => {
        ev.preventDefault();
        const v = input.value.trim();
        if (!v) {
          localStorage.removeItem(PIN_KEY);
          status.textContent = "Pin removed: the page trusts the key the server hands out.";
          return;
        }
        try {
          parseVkey(v);
        } catch (e) {
          status.textContent = `Not a valid verifier key: ${e.message}`;
          return;
        }
        localStorage.setItem(PIN_KEY, v);
        status.textContent = "Pinned in this browser.";
        trustPage();
      },
    },
    h("label", { for: "pin" }, "Log verifier key to pin"),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Pin")),
    h("p", { id: "pin-help", class: "hint" }, "The vkey the log operator published (`ailedger serve` prints it). Leave empty and submit to remove the pin. Or link with ?key=VKEY (and ?witness=VKEY&k=N) in the URL."),
  );
  setPage("Trusted keys", trustPanel(t), dl([["The server's key", code(serverConfig.log_key)], ["The server's witnesses", serverConfig.witnesses.length ? h("ul", { class: "plain" }, serverConfig.witnesses.map((w) => h("li", {}, code(w)))) : "none"]]), form, status);
}

/** What the registry's pages (./registry.js) need from this module. */
const ctx = {
  trust: () => trust(),
  trustPanel: (t) => trustPanel(t),
  consistencyCheck: (t, cp) => consistencyCheck(t, cp),
  remember: (t, cp) => remember(t, cp),
  checkCheckpoint: (t, noteText) => checkCheckpoint(t, noteText),
  config: () => serverConfig,
  live: (token) => token === renderToken,
};

// --- router ------------------------------------------------------------------------------

async function route() {
  const token = ++renderToken;
  const hash = decodeURIComponent(location.hash.replace(/^#\/?/, ""));
  const [page, ...rest] = hash.split("/");
  const arg = rest.join("/");
  // The page being left, and its badge, go at once: nothing verified for another address may
  // stay under this one while the new page loads.
  main.setAttribute("aria-busy", "true");
  main.replaceChildren(h("p", { role: "status" }, "Loading\u2026"));
  try {
    if (serverConfig === null) serverConfig = await getJSON("/explorer/config.json");
    if (INDEXED.has(page)) await whenIndexed(() => token === renderToken);
    if (token !== renderToken) return;
    if (page === "entry" && /^\d+$/.test(arg)) await entryPage(token, Number(arg));
    else if (page === "model" && arg) await modelPage(ctx, token, arg);
    else if (page === "dataset" && arg) await datasetPage(ctx, token, arg);
    else if (page === "env" && arg) await environmentPage(ctx, token, arg);
    else if (page === "registry") await registryPage(ctx, token);
    else if (page === "feeds") await feedsPage(ctx, token);
    else if (page === "feed" && arg) await feedPage(ctx, token, arg);
    else if (page === "tx" && arg) await txPage(ctx, token, arg);
    else if (page === "search") await searchPage(token, arg);
    else if (page === "trust") trustPage();
    else await overviewPage(token);
  } catch (e) {
    setPage("Error", h("p", { class: "warn", role: "alert" }, String(e.message ?? e)));
  } finally {
    if (token === renderToken) main.removeAttribute("aria-busy");
  }
}

window.addEventListener("hashchange", route);
route();
