// Runs explorer/src/verify.js (the browser's checks) over test vectors that the Python side
// made (tests/service/test_explorer.py): reads a JSON list of cases from the file named on
// the command line, prints one JSON result per case: {ok, failed, detail}.
//   case: {doc, index, log_key, witnesses: [vkey], threshold}
import fs from "node:fs";
import { parseVkey, verifyEntry } from "../src/verify.js";

const cases = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const results = cases.map((c) => {
  const r = verifyEntry(c.doc, c.index, parseVkey(c.log_key), c.witnesses.map(parseVkey), c.threshold);
  const failed = r.checks.find((x) => !x.ok);
  return { ok: r.ok, failed: failed ? failed.name : null, detail: failed ? failed.detail : null };
});
console.log(JSON.stringify(results));
