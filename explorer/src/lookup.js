// The transaction page and the organisation search. /v1/transactions/{hash} and
// /v1/organisations/{name} are the server's word: on the transaction page each anchor it names
// is checked here by an RFC 9162 consistency proof from the anchored root to the latest
// checkpoint (verified: signature, witnesses, consistency with what this browser saw), and
// each oracle report is a verified log entry that names this transaction. The receipt and
// payouts are the chain as the server read it, and shown as such.

import { VerifyError, fromHex, verifyConsistency } from "./verify.js";
import { check, verifyEntries } from "./registry.js";
import { badge, code, dl, entryLink, ether, getJSON, getText, h, main, searchLink, section, setPage, settleBadge, short, table, txLink } from "./ui.js";

const enc = encodeURIComponent;

/** Each anchor's (size, root) is a prefix of the verified checkpoint `cp`. */
async function checkAnchors(anchors, cp, checks) {
  for (const a of anchors) {
    try {
      if (a.on_chain === false) throw new VerifyError(`the server did not find anchor #${a.index} on chain as recorded`);
      const size = BigInt(a.size);
      if (size > cp.size) throw new VerifyError(`anchor #${a.index} covers ${a.size} entries, more than the verified checkpoint (${cp.size})`);
      let proof = [];
      if (size < cp.size && size > 0n) proof = (await getJSON(`/v1/proof/consistency?old=${a.size}&new=${cp.size}`)).hashes.map(fromHex);
      verifyConsistency(size, cp.size, fromHex(a.root), cp.root, proof);
      checks.push({ name: `anchor #${a.index}`, ok: true, detail: `the anchored checkpoint (size ${a.size}, root ${short(a.root)}) is a prefix of the verified checkpoint of size ${cp.size} (RFC 9162 consistency)` });
    } catch (e) {
      checks.push({ name: `anchor #${a.index}`, ok: false, detail: e.message });
    }
  }
}

export async function txPage(ctx, token, tx) {
  const t = ctx.trust();
  const b = badge();
  const hash = String(tx).toLowerCase();
  setPage("Transaction", ctx.trustPanel(t), b, h("p", {}, "Loading…"));
  let doc;
  try {
    if (!/^0x[0-9a-f]{64}$/.test(hash)) throw new Error(`${tx} is not a transaction hash (0x and 64 hex digits)`);
    doc = await getJSON(`/v1/transactions/${enc(hash)}`);
  } catch (e) {
    if (!ctx.live(token)) return;
    settleBadge(b, false, [{ name: "fetch transaction", ok: false, detail: e.message }], "");
    main.lastChild.replaceWith(h("p", {}, "This service knows nothing of this transaction."));
    return;
  }
  if (!ctx.live(token)) return;
  const r = doc.receipt;
  const anchors = doc.anchors ?? [];
  const reports = doc.oracle_reports ?? [];
  const payouts = doc.payouts ?? [];
  main.lastChild.replaceWith(
    section(
      "Transaction",
      dl([
        ["Hash", code(hash)],
        ["Chain", doc.chain?.read ? `${doc.chain.detail} (the server's reading: not verified in your browser)` : `No chain read: ${doc.chain?.detail ?? "unknown"}`],
        r ? ["Block", String(r.block)] : null,
        r ? ["From", searchLink(r.from, r.from)] : null,
        r ? ["To", h("span", {}, code(String(r.to)), r.contract ? ` (${r.contract})` : "")] : null,
        r ? ["Status", r.status === 1 ? "succeeded" : "reverted"] : null,
      ]),
    ),
    anchors.length
      ? section("Log anchors in this transaction", table(["Anchor", "Size", "Root", "Block", "Contract", "On chain"], anchors.map((a) => [`#${a.index}`, String(a.size), code(short(a.root)), String(a.block), code(short(a.contract)), a.on_chain === true ? "read back from LogAnchors (the server's word)" : a.on_chain === false ? "✘ not on chain as recorded" : "not checked"])))
      : "",
    reports.length
      ? section("Oracle reports transmitted", table(["Feed", "Epoch", "Stored median", "Report entry"], reports.map((x) => [h("a", { href: `#/feed/${enc(x.feed_id)}` }, String(x.feed)), String(x.epoch), String(x.answer), entryLink(x.report_log_index)])))
      : "",
    payouts.length
      ? section("Payouts", h("p", { class: "hint" }, "ParametricEscrow PolicyTriggered events as the server read them from the chain."), table(["Amount", "To", "Policy", "Feed", "Epoch", "Answer"], payouts.map((p) => [ether(p.payout_wei), searchLink(p.holder, p.holder), `#${p.policy_id}`, h("a", { href: `#/feed/${enc(p.feed_id)}` }, short(p.feed_id)), String(p.epoch), String(p.answer)])))
      : "",
  );
  if (!anchors.length && !reports.length) {
    b.replaceWith(h("p", { class: "warn", id: "badge", "data-state": "unverifiable", role: "status" }, "Nothing in the log names this transaction: what is shown is the chain as the server read it, which this page cannot check."));
    return;
  }
  const checks = [];
  if (anchors.length) {
    let noteText;
    try {
      noteText = await getText("/checkpoint");
    } catch (e) {
      settleBadge(b, false, [{ name: "fetch checkpoint", ok: false, detail: e.message }], "");
      return;
    }
    const c = await ctx.checkCheckpoint(t, noteText);
    if (!ctx.live(token)) return;
    checks.push(...c.checks);
    if (c.ok) await checkAnchors(anchors, c.cp, checks);
  }
  if (reports.length && checks.every((c) => c.ok)) {
    const v = await verifyEntries(ctx, t, reports.map((x) => x.report_log_index));
    checks.push(...v.checks);
    if (v.ok) {
      check(checks, "oracle reports", () => {
        for (const x of reports) {
          const p = v.entries.get(x.report_log_index).statement?.predicate ?? {};
          if (String(p.transaction).toLowerCase() !== hash) throw new VerifyError(`entry ${x.report_log_index} names transaction ${p.transaction}, not this one`);
          if (String(p.feed_id).toLowerCase() !== String(x.feed_id).toLowerCase() || p.epoch !== x.epoch || p.answer !== x.answer) {
            throw new VerifyError(`entry ${x.report_log_index} reports feed ${p.feed} epoch ${p.epoch} answer ${p.answer}, not what the server says`);
          }
        }
        return `${reports.length} signed report${reports.length === 1 ? "" : "s"} in the log name${reports.length === 1 ? "s" : ""} this transaction`;
      });
    }
  }
  if (!ctx.live(token)) return;
  const parts = [anchors.length ? `${anchors.length} anchored checkpoint${anchors.length === 1 ? "" : "s"}` : "", reports.length ? `${reports.length} oracle report${reports.length === 1 ? "" : "s"}` : ""].filter(Boolean);
  settleBadge(b, checks.every((c) => c.ok), checks, `${parts.join(" and ")} of this transaction`);
}

/** The organisation `name` as the server knows it (null: it knows none), with its signers'
 * entries: rendered into `results`. */
export async function orgResults(ctx, token, name, results, entriesTable) {
  let doc;
  try {
    doc = await getJSON(`/v1/organisations/${enc(name)}`);
  } catch {
    return false;
  }
  if (!ctx.live(token)) return true;
  const signers = doc.signers ?? [];
  const lists = await Promise.all(signers.map((s) => getJSON(`/v1/entries?signer=${enc(s.address)}`).then((d) => d.entries ?? []).catch(() => [])));
  if (!ctx.live(token)) return true;
  const byIndex = new Map();
  for (const e of lists.flat()) byIndex.set(e.index, e);
  const entries = [...byIndex.values()].sort((a, b) => a.index - b.index);
  results.replaceChildren(
    h("p", {}, `Organisation `, code(doc.organisation), `: ${signers.length} ${signers.length === 1 ? "signer" : "signers"} known to the operator, ${entries.length} ${entries.length === 1 ? "entry" : "entries"} signed by them.`),
    doc.chain_error ? h("p", { class: "warn" }, doc.chain_error) : "",
    table(["Signer", "Roles", "Known from"], signers.map((s) => [searchLink(`signer:${s.address}`, s.address), s.roles.join(", ") || "—", s.sources.join(", ")]), "Signers (the operator's word)"),
    h("p", { class: "hint" }, "As the server lists them: open an entry to verify it."),
    entriesTable(entries),
  );
  return true;
}
