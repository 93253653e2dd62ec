// Runs explorer/src/verify.js (the browser's checks) over test vectors that the Python side
// made (tests/service/test_explorer.py): reads a JSON list of cases from the file named on
// the command line, prints one JSON result per case: {ok, failed, detail} (entries: and the names of
// the checks that passed, `checked`, and of those that only inform, `info`).
//   entry case:       {doc, index, log_key, witnesses: [vkey], threshold, dsse_keys?}
//   consistency case: {consistency: {old_size, new_size, old_root, new_root, hashes}}
import fs from "node:fs";
import { fromHex, parseVkey, verifyConsistency, verifyEntry } from "../src/verify.js";

function entry(c) {
  const witnesses = c.witnesses.map(parseVkey);
  const r = verifyEntry(c.doc, c.index, parseVkey(c.log_key), witnesses, c.threshold, c.dsse_keys ?? []);
  const failed = r.checks.find((x) => !x.ok);
  const checked = r.checks.filter((x) => x.ok && !x.info).map((x) => x.name);
  const info = r.checks.filter((x) => x.ok && x.info).map((x) => x.name);
  return { ok: r.ok, failed: failed ? failed.name : null, detail: failed ? failed.detail : null, checked, info };
}

function consistency({ old_size, new_size, old_root, new_root, hashes }) {
  try {
    verifyConsistency(old_size, new_size, fromHex(old_root), fromHex(new_root), hashes.map(fromHex));
    return { ok: true, failed: null, detail: null };
  } catch (e) {
    return { ok: false, failed: "consistency", detail: e.message };
  }
}

const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
console.log(JSON.stringify(cases.map((c) => (c.consistency ? consistency(c.consistency) : entry(c)))));
