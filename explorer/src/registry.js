// The registry's pages: models, datasets, environments ("which model served at T"), the
// log's anchors. The service's /v1/registry/... answers are only its summary: every page
// fetches the log entries they name, verifies each one here (./verify.js: inclusion, the
// checkpoint's signature and cosignatures, the envelope's signatures) and then checks that
// what the verified statements say is what the summary claims (subject digests, environments,
// the links between events, the signed times). A badge turns green only after all of it.

import { VerifyError, envelopeLeafHash, fromHex, toHex, verifyConsistency, verifyEntry } from "./verify.js";
import { badge, code, entryLink, getJSON, h, main, section, setPage, settleBadge, short, table, txLink } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const DEPLOYMENT = "https://ailedger.dev/predicates/deployment/v1";
const EVALUATION = "https://ailedger.dev/predicates/evaluation/v1";

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

const enc = encodeURIComponent;
const modelLink = (ref) => h("a", { href: `#/model/${enc(String(ref).split("@")[0])}` }, String(ref));

// --- verification of the entries a page names --------------------------------------------

/** Fetch and verify the log entries `indices`; then the newest checkpoint seen must extend
 * what this browser verified before. {ok, checks, entries: Map(index -> {statement, leaf})}. */
export async function verifyEntries(ctx, t, indices) {
  const entries = new Map();
  const checks = [];
  const wanted = [...new Set(indices)].sort((a, b) => a - b);
  if (t.error) return { ok: false, checks: [{ name: "trusted keys", ok: false, detail: t.error }], entries };
  let newest = null;
  for (const i of wanted) {
    let doc;
    try {
      doc = await getJSON(`/v1/entries/${i}`);
    } catch (e) {
      checks.push({ name: `entry ${i}`, ok: false, detail: e.message });
      return { ok: false, checks, entries };
    }
    const r = verifyEntry(doc, i, t.logKey, t.witnesses, t.threshold, ctx.config().dsse_keys ?? []);
    if (!r.ok) {
      const f = r.checks.find((c) => !c.ok);
      checks.push({ name: `entry ${i}`, ok: false, detail: f ? `${f.name}: ${f.detail}` : "not verified" });
      return { ok: false, checks, entries };
    }
    entries.set(i, { statement: r.statement, leaf: toHex(envelopeLeafHash(doc.envelope)), envelope: doc.envelope });
    if (newest === null || r.checkpoint.size > newest.size) newest = r.checkpoint;
  }
  checks.push({
    name: "log entries",
    ok: true,
    detail: wanted.length
      ? `${wanted.length} entries (${wanted.map((i) => `#${i}`).join(", ")}): RFC 9162 inclusion under the checkpoint signed by the trusted log key, ${t.threshold ? `witness cosignatures (${t.threshold} required)` : "no witness trusted"}, DSSE signatures`
      : "none named",
  });
  if (newest !== null) {
    const c = await ctx.consistencyCheck(t, newest);
    checks.push(c);
    if (c.ok) ctx.remember(t, newest);
  }
  return { ok: checks.every((c) => c.ok), checks, entries };
}

/** Run `fn` (which throws VerifyError) as a named check. */
export function check(checks, name, fn) {
  try {
    checks.push({ name, ok: true, detail: fn() });
    return true;
  } catch (e) {
    checks.push({ name, ok: false, detail: e instanceof VerifyError ? e.message : `unexpected: ${e}` });
    return false;
  }
}

const digestOf = (st) => {
  const sub = Array.isArray(st?.subject) ? st.subject[0] : null;
  const d = sub?.digest?.sha256;
  return { name: sub?.name, digest: typeof d === "string" ? `sha256:${d}` : null };
};

function expectSubject(v, entries, index, ref, digest) {
  const st = entries.get(index)?.statement;
  const sub = digestOf(st);
  if (sub.name !== ref || sub.digest !== digest) {
    throw new VerifyError(`entry ${index} is about ${sub.name} (${sub.digest}), not ${ref} (${digest}) as the server says`);
  }
  return st;
}

// --- the registry overview ---------------------------------------------------------------

export async function registryPage(ctx, token) {
  setPage("Registry", h("p", {}, "Loading…"));
  const [models, datasets, envs] = await Promise.all([
    getJSON("/v1/registry/models"),
    getJSON("/v1/registry/datasets"),
    getJSON("/v1/registry/environments"),
  ]);
  if (!ctx.live(token)) return;
  main.lastChild.replaceWith(
    h("p", { class: "hint" }, "As the server's registry index lists them: open a model, dataset or environment to verify its entries."),
    section("Models", table(["Model", "Versions"], models.models.map((m) => [modelLink(m.name), m.versions.map((v) => v.version).join(", ")]))),
    section("Datasets", table(["Dataset", "Versions"], datasets.datasets.map((d) => [h("a", { href: `#/dataset/${enc(d.name)}` }, d.name), d.versions.map((v) => v.version).join(", ")]))),
    section("Environments", table(["Environment"], envs.environments.map((e) => [h("a", { href: `#/env/${enc(e.name)}` }, e.name)]))),
  );
}

// --- environment: timeline and "which model served at T" ---------------------------------

/** An SVG timeline of deploy/rollback events (x: log time), rollbacks marked. */
export function timeline(events, highlight) {
  const W = 640;
  const H = 90;
  if (!events.length) return h("p", {}, "No events.");
  const t0 = events[0].time_ms;
  const t1 = events[events.length - 1].time_ms;
  const x = (t) => 90 + (t1 === t0 ? 0.5 : (t - t0) / (t1 - t0)) * (W - 180);
  const svg = s(
    "svg",
    { viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img", "aria-label": `Timeline: ${events.map((e) => `${e.action} ${e.ref}`).join(", ")}`, class: "timeline" },
    s("line", { x1: 20, y1: 45, x2: W - 20, y2: 45, stroke: "currentColor", "stroke-width": 1 }),
    events.map((e, i) => {
      const rollback = e.action === "rollback";
      const mine = !highlight || String(e.ref).startsWith(`${highlight}@`);
      const cx = x(e.time_ms);
      return s(
        "g",
        {},
        rollback
          ? s("path", { d: `M${cx - 7} ${45 - 7} L${cx + 7} ${45 - 7} L${cx} ${45 + 7} Z`, fill: "#a40e26" })
          : s("circle", { cx, cy: 45, r: 6, fill: mine ? "#116329" : "#8c959f" }),
        s("text", { x: cx, y: i % 2 ? 78 : 24, "text-anchor": "middle", "font-size": 11, fill: "currentColor" }, `${rollback ? "↩ " : ""}${e.ref}`),
        s("title", {}, `#${e.log_index} ${e.action} ${e.ref} at ${e.time}`),
      );
    }),
  );
  return h("figure", { class: "chart" }, svg, h("figcaption", { class: "hint" }, "● deploy  ▼ rollback (red); x: the time the log took each event."));
}

function eventRows(events) {
  return events.map((e) => [entryLink(e.log_index), e.action === "rollback" ? "↩ rollback" : e.action, modelLink(e.ref), e.time, h("ul", { class: "plain" }, e.signers.map((x) => h("li", {}, code(short(x)))))]);
}

/** The verified history of an environment: each event's statement is a deploy/rollback of
 * `env` about the version the server names, and names the previous event (index and leaf
 * hash), the first one none. */
function checkHistory(env, events, entries, checks) {
  return check(checks, "environment history", () => {
    let prev = null;
    for (const e of events) {
      const st = expectSubject(null, entries, e.log_index, e.ref, e.digest);
      const p = st.predicate ?? {};
      if (st.predicateType !== DEPLOYMENT || p.environment !== env || p.action !== e.action) {
        throw new VerifyError(`entry ${e.log_index} is not a ${e.action} of ${env}`);
      }
      checkLink(p, prev, entries, e.log_index);
      prev = e.log_index;
    }
    return `${events.length} events, each naming the one before it (index and leaf hash), the first none`;
  });
}

function checkLink(predicate, prevIndex, entries, index) {
  if (!("previous" in predicate)) throw new VerifyError(`entry ${index} names no previous event (an unlinked statement)`);
  const link = predicate.previous;
  if (prevIndex === null) {
    if (link !== null) throw new VerifyError(`entry ${index} names entry ${link?.log_index} as previous, but the server shows it as the first event`);
    return;
  }
  const leaf = entries.get(prevIndex).leaf;
  if (!link || link.log_index !== prevIndex || String(link.leaf_hash).toLowerCase() !== leaf) {
    throw new VerifyError(`entry ${index} does not name entry ${prevIndex} (leaf ${leaf.slice(0, 16)}…) as its previous event`);
  }
}

export async function environmentPage(ctx, token, env) {
  const t = ctx.trust();
  const b = badge();
  const input = h("input", { id: "at", name: "at", type: "datetime-local", step: "0.001", required: true, "aria-describedby": "at-help" });
  const answer = h("div", { id: "answer", "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "search",
      onsubmit: (ev) => {
        ev.preventDefault();
        if (input.value) servedAt(ctx, token, env, `${input.value}Z`, answer);
      },
    },
    h("label", { for: "at" }, "Which model served at (UTC)"),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Ask")),
    h("p", { id: "at-help", class: "hint" }, "The answer is the deploy or rollback signed as of that time or before it and the next event after it, signed later, both verified in your browser, and the link between them. Times are those the statements are signed as of, not when the log took them."),
  );
  setPage(`Environment ${env}`, ctx.trustPanel(t), b, section("Which model served at a time", form, answer), h("p", {}, "Loading the events…"));
  let doc;
  try {
    doc = await getJSON(`/v1/registry/environments/${enc(env)}`);
  } catch (e) {
    if (!ctx.live(token)) return;
    settleBadge(b, false, [{ name: "fetch events", ok: false, detail: e.message }], "");
    return;
  }
  if (!ctx.live(token)) return;
  const events = doc.events ?? [];
  main.lastChild.replaceWith(
    section("Deployments", timeline(events), table(["Entry", "Action", "Version", "Logged", "Signers"], eventRows(events), "Events in log order (as the server lists them; verified above)")),
    doc.rejected?.length
      ? section("Rejected statements", h("p", { class: "hint" }, "Deploy or rollback statements in the log that the registry did not take as events (their signer may not deploy, or they fork the history)."), table(["Entry", "Action", "Version", "Verdict"], doc.rejected.map((r) => [entryLink(r.log_index), r.action, String(r.ref), r.verdict])))
      : "",
  );
  const v = await verifyEntries(ctx, t, events.map((e) => e.log_index));
  if (!ctx.live(token)) return;
  if (v.ok) checkHistory(env, events, v.entries, v.checks);
  const ok = v.checks.every((c) => c.ok);
  settleBadge(b, ok, v.checks, `the ${events.length} events of ${env}, in order`);
}

async function servedAt(ctx, token, env, when, box) {
  const t = ctx.trust();
  const b = badge("at-badge");
  box.replaceChildren(b);
  const T = Date.parse(when);
  let doc;
  try {
    if (Number.isNaN(T)) throw new Error(`not a time: ${when}`);
    doc = await getJSON(`/v1/registry/environments/${enc(env)}/at?time=${enc(new Date(T).toISOString())}`);
  } catch (e) {
    settleBadge(b, false, [{ name: "fetch the answer", ok: false, detail: e.message }], "");
    return;
  }
  if (!ctx.live(token)) return;
  const ev = doc.event;
  const next = doc.next;
  const v = await verifyEntries(ctx, t, [ev, next].filter(Boolean).map((e) => e.log_index));
  if (!ctx.live(token)) return;
  const checks = v.checks;
  let served = null;
  if (v.ok) {
    const signedTime = (st) => Date.parse(st?.predicate?.time);
    if (ev) {
      check(checks, "the event before T", () => {
        const st = expectSubject(null, v.entries, ev.log_index, ev.ref, ev.digest);
        const p = st.predicate ?? {};
        if (st.predicateType !== DEPLOYMENT || p.environment !== env || !["deploy", "rollback"].includes(p.action)) throw new VerifyError(`entry ${ev.log_index} is not a deploy or rollback of ${env}`);
        if (!(signedTime(st) <= T)) throw new VerifyError(`entry ${ev.log_index} is signed as of ${p.time}: not before ${new Date(T).toISOString()}`);
        served = st.subject[0].name;
        return `entry ${ev.log_index}: ${p.action} of ${served} to ${env}, signed as of ${p.time}`;
      });
    }
    if (next) {
      check(checks, "the next event", () => {
        const st = v.entries.get(next.log_index).statement;
        const p = st?.predicate ?? {};
        if (st?.predicateType !== DEPLOYMENT || p.environment !== env) throw new VerifyError(`entry ${next.log_index} is not an event of ${env}`);
        checkLink(p, ev ? ev.log_index : null, v.entries, next.log_index);
        if (!(signedTime(st) > T)) throw new VerifyError(`entry ${next.log_index} is signed as of ${p.time}: not after ${new Date(T).toISOString()}`);
        return ev
          ? `entry ${next.log_index} (${p.action} of ${st.subject?.[0]?.name}, signed as of ${p.time}) names entry ${ev.log_index} and its leaf hash as the previous event: nothing happened to ${env} in between`
          : `entry ${next.log_index} is the first event of ${env} (it names none before it), signed as of ${p.time}: nothing served before it`;
      });
    } else {
      checks.push({ name: "the next event", ok: true, detail: "none in the log as the server says (a later event would name this one: its absence is the server's word)" });
    }
  }
  const ok = checks.every((c) => c.ok);
  const what = served ? `${served} served ${env} at ${new Date(T).toISOString()}` : `nothing served ${env} at ${new Date(T).toISOString()}`;
  settleBadge(b, ok, checks, what);
  box.append(
    table(
      ["", "Entry", "Action", "Version", "Signed as of", "Logged"],
      [ev ? ["before T", entryLink(ev.log_index), ev.action, modelLink(ev.ref), ev.signed_time ?? "?", ev.time] : ["before T", "none", "", "", "", ""], next ? ["next", entryLink(next.log_index), next.action, modelLink(next.ref), next.signed_time ?? "?", next.time] : ["next", "none", "", "", "", ""]],
      ok ? `Answer: ${what}` : "The server's answer (not verified: do not rely on it)",
    ),
  );
}

// --- model -------------------------------------------------------------------------------

/** One SVG chart per metric: its value in each version's evaluations (verified statements). */
function metricCharts(points) {
  const byMetric = new Map();
  for (const p of points) for (const [k, val] of Object.entries(p.metrics)) if (typeof val === "number") (byMetric.get(k) ?? byMetric.set(k, []).get(k)).push({ version: p.version, value: val });
  const versions = [...new Set(points.map((p) => p.version))];
  return [...byMetric.entries()].map(([metric, vals]) => {
    const W = 320;
    const H = 140;
    const max = Math.max(...vals.map((q) => q.value), 0);
    const min = Math.min(...vals.map((q) => q.value), 0);
    const y = (val) => 110 - (max === min ? 0.5 : (val - min) / (max - min)) * 90;
    const x = (ver) => 40 + (versions.length === 1 ? 0.5 : versions.indexOf(ver) / (versions.length - 1)) * (W - 80);
    const path = vals.map((q, i) => `${i ? "L" : "M"}${x(q.version)} ${y(q.value)}`).join(" ");
    return h(
      "figure",
      { class: "chart" },
      s(
        "svg",
        { viewBox: `0 0 ${W} ${H}`, width: W, role: "img", "aria-label": `${metric}: ${vals.map((q) => `v${q.version} ${q.value}`).join(", ")}` },
        s("path", { d: path, fill: "none", stroke: "#0a58ca", "stroke-width": 2 }),
        vals.map((q) => [
          s("circle", { cx: x(q.version), cy: y(q.value), r: 4, fill: "#0a58ca" }),
          s("text", { x: x(q.version), y: y(q.value) - 8, "text-anchor": "middle", "font-size": 11, fill: "currentColor" }, q.value.toFixed(3)),
          s("text", { x: x(q.version), y: 132, "text-anchor": "middle", "font-size": 11, fill: "currentColor" }, `v${q.version}`),
        ]),
      ),
      h("figcaption", {}, metric),
    );
  });
}

export async function modelPage(ctx, token, name) {
  const t = ctx.trust();
  const b = badge();
  setPage(`Model ${name}`, ctx.trustPanel(t), b, h("p", {}, "Loading…"));
  let doc;
  try {
    doc = await getJSON(`/v1/registry/models/${enc(name)}`);
  } catch (e) {
    if (!ctx.live(token)) return;
    settleBadge(b, false, [{ name: "fetch model", ok: false, detail: e.message }], "");
    main.lastChild.replaceWith(h("p", {}, "The model could not be loaded."));
    return;
  }
  if (!ctx.live(token)) return;
  const versions = doc.versions ?? [];
  const items = (v) => [...v.evaluations, ...v.approvals, ...v.deployments];
  const envNames = [...new Set(versions.flatMap((v) => v.deployments.map((d) => d.environment).filter((e) => e && e !== "*")))].sort();
  const envs = await Promise.all(envNames.map((e) => getJSON(`/v1/registry/environments/${enc(e)}`).catch(() => ({ environment: e, events: [] }))));
  if (!ctx.live(token)) return;
  const metricsBox = h("div", { class: "charts" }, h("p", { class: "hint" }, "Drawn once the evaluations are verified."));
  main.lastChild.replaceWith(
    section(
      "Versions",
      table(
        ["Version", "Digest", "Registered", "Evaluations", "Approvals (organisation: the operator's word)", "Status"],
        versions.map((v) => [
          v.version,
          code(short(v.digest)),
          entryLink(v.log_index),
          h("ul", { class: "plain" }, v.evaluations.map((e) => h("li", {}, entryLink(e.log_index), ` ${e.summary}`))),
          h("ul", { class: "plain" }, v.approvals.map((a) => h("li", {}, entryLink(a.log_index), ` ${a.decision} as ${a.role} by ${a.orgs?.[0] ?? "?"} (${short(a.signers[0] ?? "")})`))),
          v.deprecated ? "deprecated" : "",
        ]),
      ),
    ),
    section("Metrics across versions", metricsBox),
    section("Deployments", envs.length ? envs.map((e) => [h("h3", {}, h("a", { href: `#/env/${enc(e.environment)}` }, e.environment)), timeline(e.events ?? [], name)]) : h("p", {}, "Never deployed.")),
  );
  const envEvents = envs.flatMap((e) => e.events ?? []);
  const v = await verifyEntries(ctx, t, [...versions.flatMap((x) => [x.log_index, ...items(x).map((i) => i.log_index)]), ...envEvents.map((e) => e.log_index)]);
  if (!ctx.live(token)) return;
  const points = [];
  if (v.ok) {
    check(v.checks, "statements about each version", () => {
      let n = 0;
      for (const ver of versions) {
        for (const i of [ver.log_index, ...items(ver).map((x) => x.log_index)]) {
          expectSubject(null, v.entries, i, ver.ref, ver.digest);
          n += 1;
        }
        for (const e of ver.evaluations) {
          const st = v.entries.get(e.log_index).statement;
          if (st.predicateType !== EVALUATION) throw new VerifyError(`entry ${e.log_index} is not an evaluation`);
          points.push({ version: ver.version, metrics: st.predicate?.metrics ?? {} });
        }
      }
      return `${n} statements name the version and digest the server shows`;
    });
    for (const e of envs) checkHistory(e.environment, e.events ?? [], v.entries, v.checks);
  }
  const ok = v.checks.every((c) => c.ok);
  settleBadge(b, ok, v.checks, `${versions.length} versions of ${name}, their evaluations, approvals and deployments`);
  if (ok) metricsBox.replaceChildren(...(points.length ? metricCharts(points) : [h("p", {}, "No evaluations.")]));
  else metricsBox.replaceChildren(h("p", { class: "warn" }, "Not drawn: the evaluations did not verify."));
}

// --- dataset -----------------------------------------------------------------------------

export async function datasetPage(ctx, token, name) {
  const t = ctx.trust();
  const b = badge();
  setPage(`Dataset ${name}`, ctx.trustPanel(t), b, h("p", {}, "Loading…"));
  let doc;
  try {
    doc = await getJSON(`/v1/registry/datasets/${enc(name)}`);
  } catch (e) {
    if (!ctx.live(token)) return;
    settleBadge(b, false, [{ name: "fetch dataset", ok: false, detail: e.message }], "");
    return;
  }
  if (!ctx.live(token)) return;
  const versions = doc.versions ?? [];
  main.lastChild.replaceWith(
    section(
      "Versions",
      table(
        ["Version", "Merkle root", "Registered", "Models trained on it"],
        versions.map((v) => [v.version, code(short(v.root ?? "")), entryLink(v.log_index), h("ul", { class: "plain" }, v.models.map((m) => h("li", {}, modelLink(m.ref), " ", entryLink(m.log_index))))]),
      ),
    ),
  );
  const v = await verifyEntries(ctx, t, versions.flatMap((x) => [x.log_index, ...x.models.map((m) => m.log_index)]));
  if (!ctx.live(token)) return;
  if (v.ok) {
    check(v.checks, "datasets and the models trained on them", () => {
      for (const ver of versions) {
        const st = expectSubject(null, v.entries, ver.log_index, ver.ref, ver.digest);
        const root = st.predicate?.root;
        if (root !== ver.root) throw new VerifyError(`entry ${ver.log_index} gives root ${root}, not ${ver.root}`);
        for (const m of ver.models) {
          const ms = expectSubject(null, v.entries, m.log_index, m.ref, m.digest);
          const roots = ms.predicate?.training?.dataset_roots ?? [];
          if (!roots.includes(root)) throw new VerifyError(`${m.ref} (entry ${m.log_index}) does not name root ${short(root)} in its training data`);
        }
      }
      return "each model's signed training metadata names the dataset's Merkle root";
    });
  }
  settleBadge(b, v.checks.every((c) => c.ok), v.checks, `${versions.length} versions of ${name} and the models trained on them`);
}

// --- anchors (on the log page) -----------------------------------------------------------

/** The anchored checkpoints, each checked against `cp` (a verified checkpoint): the server's
 * RFC 9162 consistency proof from the anchored (size, root) to it must verify here. */
export async function anchorsSection(cp) {
  const b = badge("anchors-badge");
  const box = section("On-chain anchors", b);
  (async () => {
    let doc;
    try {
      doc = await getJSON("/v1/anchors");
    } catch (e) {
      settleBadge(b, false, [{ name: "fetch anchors", ok: false, detail: e.message }], "");
      return;
    }
    const checks = [];
    const rows = [];
    for (const a of doc.anchors ?? []) {
      let status = "";
      const ok = await (async () => {
        try {
          if (!cp) throw new VerifyError("no verified checkpoint to check it against");
          if (a.on_chain === false) throw new VerifyError(`the server did not find anchor #${a.index} on chain as recorded`);
          const size = BigInt(a.size);
          if (size > cp.size) throw new VerifyError(`anchor #${a.index} covers ${a.size} entries, more than the verified checkpoint (${cp.size})`);
          let proof = [];
          if (size < cp.size && size > 0n) proof = (await getJSON(`/v1/proof/consistency?old=${a.size}&new=${cp.size}`)).hashes.map(fromHex);
          verifyConsistency(size, cp.size, fromHex(a.root), cp.root, proof);
          status = "✔ consistent with the verified checkpoint";
          return true;
        } catch (e) {
          status = `✘ ${e.message}`;
          return false;
        }
      })();
      checks.push({ name: `anchor #${a.index}`, ok, detail: ok ? `root ${short(a.root)} of size ${a.size} is a checkpoint of this log, which the verified checkpoint (size ${cp.size}) extends (RFC 9162 consistency)` : status.slice(2) });
      rows.push([`#${a.index}`, String(a.size), code(short(a.root)), txLink(a.transaction), String(a.block), a.on_chain === true ? "read back from LogAnchors (the server's word)" : a.on_chain === false ? "✘ not on chain as recorded" : "not checked", status]);
    }
    if (!checks.length) checks.push({ name: "anchors", ok: true, detail: "this log has no anchors yet" });
    settleBadge(b, checks.every((c) => c.ok), checks, `${rows.length} anchored checkpoints are consistent with the log`);
    box.append(table(["Anchor", "Size", "Root", "Transaction", "Block", "On chain", "Checked here"], rows));
  })();
  return box;
}
