// Oracle feeds: the feeds list and a feed's page with its rounds. The service's
// /v1/oracle/... answers are only its summary: the feed page fetches every round's report and
// observation entries, verifies each one here (./registry.js verifyEntries: inclusion, the
// checkpoint's signature and cosignatures, the envelope's signatures), then checks that the
// verified statements say what the summary claims: the report names this feed, epoch, stored
// median and transaction; the median is the contract's (the sorted observations' element at
// n / 2); each observation entry is one the report lists (SHA-256 of its canonical envelope),
// signed by the oracle it names, for this feed, epoch, input and model, with the value the
// report gives that oracle. Payouts are the chain's events as the service read them: shown as
// such, and each must name the verified round's answer.

import { sha256 } from "@noble/hashes/sha2.js";
import { VerifyError, jcs, toHex, utf8 } from "./verify.js";
import { check, verifyEntries } from "./registry.js";
import { badge, code, dl, entryLink, ether, getJSON, h, main, searchLink, section, setPage, settleBadge, short, table, txLink } from "./ui.js";

const REPORT = "https://ailedger.dev/predicates/oracle-report/v1";
const OBSERVATION = "https://ailedger.dev/predicates/oracle-observation/v1";
const enc = encodeURIComponent;

const addr = (a) => { const s = String(a ?? ""); return s.length > 14 ? `${s.slice(0, 8)}…${s.slice(-4)}` : s; };
const feedLink = (f) => h("a", { href: `#/feed/${enc(f.feed_id)}` }, String(f.feed ?? f.feed_id));

export async function feedsPage(ctx, token) {
  setPage("Oracle feeds", h("p", {}, "Loading…"));
  let doc;
  try {
    doc = await getJSON("/v1/oracle/feeds");
  } catch (e) {
    if (!ctx.live(token)) return;
    main.lastChild.replaceWith(h("p", { class: "warn" }, `Could not load the feeds: ${e.message}`));
    return;
  }
  if (!ctx.live(token)) return;
  const feeds = doc.feeds ?? [];
  main.lastChild.replaceWith(
    h("p", { class: "hint" }, "As the server lists them from the oracle reports in the log: open a feed to verify its rounds."),
    feeds.length
      ? table(
          ["Feed", "Feed id", "Rounds", "Latest epoch", "Latest median", "Latest report"],
          feeds.map((f) => [feedLink(f), code(short(f.feed_id)), String(f.rounds), String(f.latest_epoch), String(f.latest_answer), entryLink(f.latest_log_index)]),
          "Oracle feeds",
        )
      : h("p", {}, "No oracle reports in the log."),
  );
}

/** The checks of one round against its verified entries (throws VerifyError). */
function checkRound(feedId, r, entries) {
  const st = entries.get(r.report_log_index)?.statement;
  const p = st?.predicate ?? {};
  const at = `report entry ${r.report_log_index}`;
  if (st?.predicateType !== REPORT) throw new VerifyError(`${at} is not an oracle report`);
  if (String(p.feed_id).toLowerCase() !== feedId) throw new VerifyError(`${at} is about feed ${p.feed_id}, not ${feedId}`);
  for (const k of ["epoch", "answer", "transaction", "block"]) {
    if (p[k] !== r[k]) throw new VerifyError(`${at} gives ${k} ${p[k]}, the server ${r[k]}`);
  }
  for (const k of ["observations", "observers", "signers"]) {
    if (JSON.stringify(p[k]) !== JSON.stringify(r[k])) throw new VerifyError(`${at} gives other ${k} than the server shows`);
  }
  const obs = Array.isArray(p.observations) ? p.observations : [];
  const observers = Array.isArray(p.observers) ? p.observers : [];
  if (!obs.length || obs.length !== observers.length) throw new VerifyError(`${at} lists ${obs.length} observations by ${observers.length} oracles`);
  if (obs.some((v, i) => !Number.isInteger(v) || (i && obs[i - 1] > v))) throw new VerifyError(`${at}: the observations are not sorted integers`);
  const median = obs[Math.floor(obs.length / 2)];
  if (p.answer !== median) throw new VerifyError(`${at} stores ${p.answer}, not the median ${median} of its observations`);
  const hashes = (Array.isArray(p.observation_envelopes) ? p.observation_envelopes : []).map((x) => String(x).toLowerCase());
  const pairs = observers.map((o, i) => `${String(o).toLowerCase()}=${obs[i]}`);
  const seen = new Set();
  for (const o of r.observation_entries) {
    const e = entries.get(o.log_index);
    const ost = e?.statement;
    const op = ost?.predicate ?? {};
    const where = `observation entry ${o.log_index}`;
    if (ost?.predicateType !== OBSERVATION) throw new VerifyError(`${where} is not an oracle observation`);
    const hash = toHex(sha256(utf8(jcs(e.envelope))));
    if (!hashes.includes(hash) || seen.has(hash)) throw new VerifyError(`${where} is not one of the observations ${at} lists`);
    seen.add(hash);
    if (op.feed !== p.feed || op.epoch !== p.epoch || op.input_root !== p.input_root || op.model_digest !== p.model_digest) {
      throw new VerifyError(`${where} observes another feed, epoch, input or model than ${at}`);
    }
    const oracle = String(op.oracle).toLowerCase();
    if (String(o.oracle).toLowerCase() !== oracle || o.value !== op.value) throw new VerifyError(`${where} is ${op.oracle}: ${op.value}, not ${o.oracle}: ${o.value} as the server shows`);
    const keyids = (e.envelope.signatures ?? []).map((s) => String(s.keyid).toLowerCase());
    if (!keyids.includes(oracle)) throw new VerifyError(`${where} is not signed by the oracle it names (${op.oracle})`);
    const k = pairs.indexOf(`${oracle}=${op.value}`);
    if (k < 0) throw new VerifyError(`${where}: ${op.oracle} observed ${op.value}, which ${at} does not list for it`);
    pairs.splice(k, 1);
  }
  if (seen.size !== hashes.length) throw new VerifyError(`${at} lists ${hashes.length} observations, ${seen.size} are in the log as the server says`);
  for (const pay of r.payouts ?? []) {
    if (pay.answer !== p.answer) throw new VerifyError(`a payout of round ${p.epoch} names answer ${pay.answer}, the verified report ${p.answer}`);
  }
  return obs.length;
}

function payoutCell(r, chain) {
  if (!chain.read) return "not read (no chain)";
  if (!r.payouts?.length) return "none";
  return h("ul", { class: "plain" }, r.payouts.map((p) => h("li", {}, `${ether(p.payout_wei)} to `, searchLink(p.holder, addr(p.holder)), ` (policy #${p.policy_id}) `, txLink(p.transaction))));
}

export async function feedPage(ctx, token, feedId) {
  const t = ctx.trust();
  const b = badge();
  const id = String(feedId).toLowerCase();
  setPage("Oracle feed", ctx.trustPanel(t), b, h("p", {}, "Loading the rounds…"));
  let doc;
  try {
    doc = await getJSON(`/v1/oracle/feeds/${enc(id)}`);
  } catch (e) {
    if (!ctx.live(token)) return;
    settleBadge(b, false, [{ name: "fetch feed", ok: false, detail: e.message }], "");
    main.lastChild.replaceWith(h("p", {}, "The feed could not be loaded."));
    return;
  }
  if (!ctx.live(token)) return;
  const rounds = doc.rounds ?? [];
  const chain = doc.chain ?? { read: false, detail: "the server says nothing about a chain" };
  main.querySelector("h1").textContent = `Oracle feed ${doc.feed}`;
  document.title = `Oracle feed ${doc.feed} · ailedger explorer`;
  main.lastChild.replaceWith(
    section(
      "Feed",
      dl([
        ["Feed id", code(doc.feed_id)],
        ["OracleFeeds contract", code(String(doc.contract))],
        ["Chain id", String(doc.chain_id)],
        ["Chain", chain.read ? `${chain.detail} (the server's reading: not verified in your browser)` : `No chain read: ${chain.detail}. Payouts are not shown.`],
      ]),
    ),
    section(
      "Rounds",
      table(
        ["Epoch", "Stored median", "Observations (oracle: value)", "Co-signers", "Report", "Transaction", "On chain", "Payouts"],
        rounds.map((r) => [
          String(r.epoch),
          String(r.answer),
          h("ul", { class: "plain" }, r.observation_entries.map((o) => h("li", {}, entryLink(o.log_index), " ", searchLink(o.oracle, addr(o.oracle)), `: ${o.value}`))),
          h("ul", { class: "plain" }, (r.signers ?? []).map((x) => h("li", {}, searchLink(x, addr(x))))),
          entryLink(r.report_log_index),
          txLink(r.transaction),
          r.on_chain === true ? "accepted (ReportAccepted)" : r.on_chain === false ? "✘ not found as reported" : "not checked",
          payoutCell(r, chain),
        ]),
        "Rounds (as the server lists them; verified above)",
      ),
    ),
  );
  const v = await verifyEntries(ctx, t, rounds.flatMap((r) => [r.report_log_index, ...r.observation_entries.map((o) => o.log_index)]));
  if (!ctx.live(token)) return;
  if (v.ok) {
    check(v.checks, "rounds", () => {
      let n = 0;
      for (const r of rounds) n += checkRound(id, r, v.entries);
      return `${rounds.length} reports of feed ${doc.feed}: each stores the median of its observations, and the ${n} observation entries are signed by the oracles the reports name, with those values (the co-signers' EIP-712 signatures over each report are the contract's to check, not this page's)`;
    });
    if (rounds.some((r) => r.on_chain === false)) v.checks.push({ name: "on chain", ok: false, detail: "the server found a report that the chain did not accept as logged" });
  }
  const ok = v.checks.every((c) => c.ok);
  settleBadge(b, ok, v.checks, `${rounds.length} rounds of ${doc.feed}, their observations and signers`);
}
