// Verification of what the log service serves, in the reader's browser. Pure functions over
// bytes and parsed JSON; the formats are those of the Python side (src/ailedger/log/):
//
// - leaf = SHA-256(0x00 || JCS(envelope)) (RFC 9162 leaf over the RFC 8785 envelope bytes,
//   log/_envelope.py canonical_envelope), inclusion proofs per RFC 9162 section 2.1.3.2;
// - checkpoints as C2SP signed notes (log/checkpoint.py): Ed25519 (type 0x01), the secp256k1
//   EIP-191 log key (0xff + "ailedger.dev/signed-note/secp256k1-eip191/v1"), cosignature/v1
//   witnesses (0x04, Ed25519) and their secp256k1 form;
// - DSSE envelopes (attest/dsse.py): PAE, secp256k1 signatures as EIP-191 personal_sign by
//   the Ethereum address in keyid (low s, v in 27/28), checked by recovering the address;
//   P-256 (DER ECDSA over SHA-256) and Ed25519 signatures under public keys whose key ID is
//   SHA-256 of their SPKI PEM (identity/_signers.py), checked here against that PEM.
//
// Every check throws a VerifyError naming what failed; nothing here trusts the server.

import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { secp256k1 } from "@noble/curves/secp256k1.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { keccak_256 } from "@noble/hashes/sha3.js";

export class VerifyError extends Error {}

const enc = new TextEncoder();
export const utf8 = (s) => enc.encode(s);

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-fA-F]{2})*$/.test(text)) {
    throw new VerifyError(`not hex: ${String(text).slice(0, 40)}`);
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Standard base64 (strict), or with `loose` the URL-safe alphabet and missing padding too
 * (DSSE accepts both; attest/dsse.py _b64decode). */
export function fromBase64(text, loose = false) {
  if (typeof text !== "string") throw new VerifyError("base64 value is not a string");
  let t = text;
  if (loose) {
    t = t.trim().replace(/-/g, "+").replace(/_/g, "/");
    t += "=".repeat((4 - (t.length % 4)) % 4);
  }
  if (!/^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(t)) {
    throw new VerifyError(`not base64: ${text.slice(0, 40)}`);
  }
  const bin = atob(t);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// --- RFC 8785 (JCS) and RFC 9162 ---------------------------------------------------------

/** RFC 8785 canonical JSON of a parsed JSON value (keys sorted by UTF-16 code units; ES
 * string and number serialisation are JCS's own). */
export function jcs(value) {
  if (value === null || typeof value === "boolean" || typeof value === "string") {
    return JSON.stringify(value);
  }
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new VerifyError("JCS: a number is not finite");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(jcs).join(",") + "]";
  if (typeof value === "object") {
    const keys = Object.keys(value).sort();
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + jcs(value[k])).join(",") + "}";
  }
  throw new VerifyError(`JCS: cannot encode a ${typeof value}`);
}

export const leafHash = (data) => sha256(concat(Uint8Array.of(0), data));
const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

/** The leaf hash of an envelope as the log stores it: SHA-256(0x00 || JCS(envelope)). */
export function envelopeLeafHash(envelope) {
  return leafHash(utf8(jcs(envelope)));
}

/** The root an RFC 9162 inclusion proof leads to (section 2.1.3.2); throws if malformed. */
export function rootFromInclusionProof(index, size, leaf, proof) {
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  if (fn < 0n || fn > sn) throw new VerifyError(`leaf index ${index} is outside tree size ${size}`);
  let r = leaf;
  for (const p of proof) {
    if (p.length !== 32) throw new VerifyError("an inclusion proof hash is not 32 bytes");
    if (sn === 0n) throw new VerifyError("the inclusion proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) throw new VerifyError("the inclusion proof is too short");
  return r;
}

/** Whether an RFC 9162 consistency proof (section 2.1.4.2) shows the tree of `oldSize`
 * leaves with root `oldRoot` is a prefix of the tree of `newSize` leaves with `newRoot`. */
export function verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof) {
  const first = BigInt(oldSize);
  const second = BigInt(newSize);
  if (first < 1n || first > second) throw new VerifyError(`no consistency proof from size ${oldSize} to ${newSize}`);
  if (proof.some((p) => p.length !== 32)) throw new VerifyError("a consistency proof hash is not 32 bytes");
  if (first === second) {
    if (proof.length !== 0) throw new VerifyError("a consistency proof between equal sizes must be empty");
    if (!equalBytes(oldRoot, newRoot)) throw new VerifyError(`two different roots for size ${oldSize}: the log forked`);
    return;
  }
  if (proof.length === 0) throw new VerifyError("the consistency proof is empty");
  const path = (first & (first - 1n)) === 0n ? [oldRoot, ...proof] : proof;
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new VerifyError("the consistency proof is too long");
    if ((fn & 1n) === 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n || !equalBytes(fr, oldRoot) || !equalBytes(sr, newRoot)) {
    throw new VerifyError(`the log of size ${newSize} does not extend the one of size ${oldSize} this browser saw: the log forked or was rewritten`);
  }
}

// --- signed notes and checkpoints (c2sp.org/signed-note, tlog-checkpoint) -----------------

const DASH = "\u2014 ";
export const ED25519_TYPE = Uint8Array.of(0x01);
export const COSIGNATURE_V1_TYPE = Uint8Array.of(0x04);
export const SECP256K1_TYPE = concat(
  Uint8Array.of(0xff),
  utf8("ailedger.dev/signed-note/secp256k1-eip191/v1"),
);
export const SECP256K1_COSIGNATURE_TYPE = concat(
  Uint8Array.of(0xff),
  utf8("ailedger.dev/cosignature/secp256k1-eip191/v1"),
);
const SECP256K1_MESSAGE_PREFIX = utf8("ailedger.dev/signed-note/secp256k1-eip191/v1\n");

export function keyId(name, type, publicKey) {
  return sha256(concat(utf8(name + "\n"), type, publicKey)).slice(0, 4);
}

/** A signed note: its text (ending in a newline) and signature lines. */
export function parseNote(note) {
  if (typeof note !== "string" || !note.endsWith("\n")) {
    throw new VerifyError("the signed note does not end with a newline");
  }
  if (/[\u0000-\u0009\u000b-\u001f]/.test(note)) {
    throw new VerifyError("the signed note contains control characters");
  }
  const split = note.lastIndexOf("\n\n");
  if (split < 0) throw new VerifyError("the signed note has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  const signatures = [];
  for (const line of note.slice(split + 2, -1).split("\n")) {
    if (!line.startsWith(DASH)) throw new VerifyError(`malformed signature line ${line.slice(0, 40)}`);
    const rest = line.slice(DASH.length);
    const space = rest.lastIndexOf(" ");
    const name = rest.slice(0, space);
    const raw = fromBase64(rest.slice(space + 1));
    if (space <= 0 || raw.length < 5) throw new VerifyError(`malformed signature by ${name}`);
    signatures.push({ name, keyId: raw.slice(0, 4), signature: raw.slice(4) });
  }
  if (signatures.length === 0) throw new VerifyError("the signed note has no signatures");
  return { text, signatures };
}

/** The checkpoint body: origin, size, root hash, extension lines. */
export function parseCheckpoint(text) {
  const lines = text.slice(0, -1).split("\n");
  if (!text.endsWith("\n") || lines.length < 3) {
    throw new VerifyError("the checkpoint needs origin, size and root hash lines");
  }
  const [origin, sizeText, rootText, ...extensions] = lines;
  if (!origin) throw new VerifyError("the checkpoint origin line is empty");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) {
    throw new VerifyError(`checkpoint tree size ${sizeText.slice(0, 30)} is not a number`);
  }
  const root = fromBase64(rootText);
  if (root.length !== 32) throw new VerifyError("the checkpoint root hash is not 32 bytes");
  return { origin, size: BigInt(sizeText), root, extensions };
}

/** A C2SP verifier key `name+keyid+base64(type || key)`, its key ID checked. */
export function parseVkey(vkey) {
  const text = String(vkey).trim();
  const first = text.indexOf("+");
  const second = text.indexOf("+", first + 1);
  if (first <= 0 || second < 0) throw new VerifyError("not a verifier key (name+keyid+key)");
  const name = text.slice(0, first);
  const id = fromHex(text.slice(first + 1, second));
  const raw = fromBase64(text.slice(second + 1));
  const tail = (type) => raw.length === type.length + 20 && equalBytes(raw.slice(0, type.length), type);
  let key;
  if (tail(SECP256K1_TYPE)) {
    key = { kind: "secp256k1", type: SECP256K1_TYPE, public: raw.slice(-20) };
  } else if (tail(SECP256K1_COSIGNATURE_TYPE)) {
    key = { kind: "secp256k1-cosignature", type: SECP256K1_COSIGNATURE_TYPE, public: raw.slice(-20) };
  } else if (raw.length === 33 && raw[0] === 0x01) {
    key = { kind: "ed25519", type: ED25519_TYPE, public: raw.slice(1) };
  } else if (raw.length === 33 && raw[0] === 0x04) {
    key = { kind: "ed25519-cosignature", type: COSIGNATURE_V1_TYPE, public: raw.slice(1) };
  } else {
    throw new VerifyError(`verifier key ${name}: unsupported signature type`);
  }
  if (!name || /\s/.test(name)) throw new VerifyError(`verifier key name ${name} is not valid`);
  key.name = name;
  key.keyId = keyId(name, key.type, key.public);
  if (!equalBytes(key.keyId, id)) throw new VerifyError(`verifier key ${name}: key ID does not match the key`);
  key.vkey = text;
  return key;
}

const cosignedMessage = (ts, text) => concat(utf8(`cosignature/v1\ntime ${ts}\n`), utf8(text));

function readU64(bytes) {
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(bytes[i]);
  return v;
}

/** Whether `signature` (the bytes after the key ID) verifies over note `text` under `key`;
 * for a cosignature also its time (seconds). */
export function checkNoteSignature(key, text, signature) {
  switch (key.kind) {
    case "ed25519":
      return { ok: ed25519Verify(signature, utf8(text), key.public) };
    case "secp256k1":
      return { ok: recoversTo(concat(SECP256K1_MESSAGE_PREFIX, utf8(text)), signature, key.public) };
    case "ed25519-cosignature":
    case "secp256k1-cosignature": {
      const n = key.kind === "ed25519-cosignature" ? 64 : 65;
      if (signature.length !== 8 + n) return { ok: false };
      const ts = readU64(signature);
      if (ts >= 1n << 63n) return { ok: false };
      const message = cosignedMessage(ts, text);
      const sig = signature.slice(8);
      const ok = key.kind === "ed25519-cosignature" ? ed25519Verify(sig, message, key.public) : recoversTo(message, sig, key.public);
      return { ok, time: Number(ts) };
    }
    default:
      return { ok: false };
  }
}

/** The signatures of `note` by `key` (name and key ID): each must verify and at least one
 * must be present. Returns the checked signatures (with cosignature times). */
export function verifyNoteKey(note, key) {
  const found = note.signatures.filter((s) => s.name === key.name && equalBytes(s.keyId, key.keyId));
  if (found.length === 0) {
    const names = [...new Set(note.signatures.map((s) => s.name))].sort().join(", ");
    throw new VerifyError(`no signature by key ${key.name} (${toHex(key.keyId)}); signed by: ${names}`);
  }
  return found.map((s) => {
    const result = checkNoteSignature(key, note.text, s.signature);
    if (!result.ok) throw new VerifyError(`the signature by ${key.name} (${toHex(key.keyId)}) does not verify`);
    return { ...s, time: result.time };
  });
}

function ed25519Verify(sig, message, publicKey) {
  if (sig.length !== 64 || publicKey.length !== 32) return false;
  try {
    return ed25519.verify(sig, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

// --- secp256k1 / EIP-191 -----------------------------------------------------------------

const SECP256K1_N = secp256k1.Point.CURVE().n;

/** The Ethereum address (20 bytes) that made `signature` (65 bytes r||s||v, low s, v in
 * 27/28) as an EIP-191 personal_sign of `message`; throws if malformed. */
export function recoverAddress(message, signature) {
  if (signature.length !== 65) throw new VerifyError(`a secp256k1 signature is 65 bytes, not ${signature.length}`);
  const r = BigInt("0x" + toHex(signature.slice(0, 32)));
  const s = BigInt("0x" + toHex(signature.slice(32, 64)));
  const v = signature[64];
  if (!(r > 0n && r < SECP256K1_N && s > 0n && s <= SECP256K1_N / 2n && (v === 27 || v === 28))) {
    throw new VerifyError("a malformed or malleable secp256k1 signature");
  }
  const digest = keccak_256(concat(utf8(`\x19Ethereum Signed Message:\n${message.length}`), message));
  let point;
  try {
    point = new secp256k1.Signature(r, s).addRecoveryBit(v - 27).recoverPublicKey(digest);
  } catch {
    throw new VerifyError("the secp256k1 signature recovers no public key");
  }
  return keccak_256(point.toBytes(false).slice(1)).slice(-20);
}

function recoversTo(message, signature, address) {
  try {
    return equalBytes(recoverAddress(message, signature), address);
  } catch {
    return false;
  }
}

// --- DSSE --------------------------------------------------------------------------------

/** DSSE v1 pre-authentication encoding. */
export function pae(payloadType, payload) {
  const type = utf8(payloadType);
  return concat(utf8(`DSSEv1 ${type.length} `), type, utf8(` ${payload.length} `), payload);
}

/** The envelope's fields, strictly (the DSSE fields only, base64 decoded). */
export function parseEnvelope(envelope) {
  if (envelope === null || typeof envelope !== "object" || Array.isArray(envelope)) {
    throw new VerifyError("the envelope is not a JSON object");
  }
  const extra = Object.keys(envelope).filter((k) => !["payload", "payloadType", "signatures"].includes(k));
  if (extra.length) throw new VerifyError(`the envelope has unknown fields ${extra.join(", ")}`);
  const { payloadType, signatures } = envelope;
  if (typeof payloadType !== "string" || !payloadType) throw new VerifyError("the envelope has no payloadType");
  if (!Array.isArray(signatures) || signatures.length === 0) throw new VerifyError("the envelope has no signatures");
  const payload = fromBase64(envelope.payload, true);
  const sigs = signatures.map((s, i) => {
    if (s === null || typeof s !== "object" || typeof s.sig !== "string") {
      throw new VerifyError(`DSSE signature ${i} is malformed`);
    }
    const keyid = s.keyid ?? "";
    if (typeof keyid !== "string") throw new VerifyError(`DSSE signature ${i} keyid is not a string`);
    return { keyid, sig: fromBase64(s.sig, true) };
  });
  return { payloadType, payload, signatures: sigs };
}

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const SPKI_PREFIX = {
  p256: fromHex("3059301306072a8648ce3d020106082a8648ce3d030107034200"),
  ed25519: fromHex("302a300506032b6570032100"),
};

/** A P-256 or Ed25519 public key `{keyid, type, pem}`: its key ID must be SHA-256 of the
 * PEM text (so whoever hands it out, it is the key the ID names). */
export function parseDsseKey(key) {
  const prefix = SPKI_PREFIX[key?.type];
  if (!prefix || typeof key.pem !== "string" || typeof key.keyid !== "string") {
    throw new VerifyError(`a DSSE public key of type ${key?.type} is not supported`);
  }
  if (toHex(sha256(utf8(key.pem))) !== key.keyid.toLowerCase()) {
    throw new VerifyError(`the public key for ${key.keyid} does not hash to its key ID`);
  }
  const m = /^-----BEGIN PUBLIC KEY-----\n([A-Za-z0-9+/=\n]+)-----END PUBLIC KEY-----\n?$/.exec(key.pem);
  if (!m) throw new VerifyError(`the public key for ${key.keyid} is not an SPKI PEM`);
  const der = fromBase64(m[1].replace(/\n/g, ""));
  const size = key.type === "p256" ? 65 : 32;
  if (der.length !== prefix.length + size || !equalBytes(der.slice(0, prefix.length), prefix)) {
    throw new VerifyError(`the public key for ${key.keyid} is not a ${key.type} key`);
  }
  return { keyid: key.keyid.toLowerCase(), type: key.type, public: der.slice(prefix.length) };
}

function dsseKeyVerifies(key, message, sig) {
  try {
    if (key.type === "ed25519") return ed25519Verify(sig, message, key.public);
    return p256.verify(sig, message, key.public, { format: "der", prehash: true, lowS: false });
  } catch {
    return false;
  }
}

/** Every signature of the envelope, checked: a keyid that is an Ethereum address must be
 * the address the EIP-191 signature over PAE recovers; any other keyid needs one of `keys`
 * (parsed with parseDsseKey) to verify it: the key it names, else (a foreign or empty keyid,
 * as attest/dsse.py candidate_keys) any of them. A signature no key verifies fails (fail
 * closed). Returns the signers' key IDs. */
export function verifyEnvelopeSignatures(parsed, keys = []) {
  const message = pae(parsed.payloadType, parsed.payload);
  return parsed.signatures.map(({ keyid, sig }, i) => {
    if (!ADDRESS.test(keyid)) {
      const named = keys.filter((k) => k.keyid === keyid.toLowerCase());
      const candidates = keyid && named.length ? named : keys;
      if (candidates.length === 0) {
        throw new VerifyError(`DSSE signature ${i}: the page has no public key for ${keyid || "(no keyid)"}`);
      }
      const key = candidates.find((k) => dsseKeyVerifies(k, message, sig));
      if (!key) throw new VerifyError(`DSSE signature ${i} does not verify for ${keyid || "(no keyid)"}`);
      return `${key.keyid} (${key.type})`;
    }
    let recovered;
    try {
      recovered = "0x" + toHex(recoverAddress(message, sig));
    } catch (e) {
      throw new VerifyError(`DSSE signature ${i} by ${keyid}: ${e.message}`);
    }
    if (recovered !== keyid.toLowerCase()) {
      throw new VerifyError(`DSSE signature ${i} does not verify for ${keyid}`);
    }
    return keyid;
  });
}

/** The in-toto statement in a payload (UTF-8 JSON), or null if it is not one. */
export function decodeStatement(parsed) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(parsed.payload);
    return JSON.parse(text);
  } catch {
    return null;
  }
}

// --- a whole entry -----------------------------------------------------------------------

/** Run every check on a served entry (`GET /v1/entries/{i}`), trusting `logKey` (parsed
 * vkey) and `witnesses` (parsed cosignature vkeys, `threshold` of them needed); `dsseKeys`
 * are the P-256 and Ed25519 signers' public keys `{keyid, type, pem}`. Returns
 * `{checks: [{name, ok, detail}], ok, ...}`: `ok` only when every check passed. */
export function verifyEntry(doc, index, logKey, witnesses, threshold, dsseKeys = []) {
  const checks = [];
  const out = { checks, ok: false, envelope: null, statement: null, checkpoint: null, note: null, cosignatures: [] };
  const run = (name, fn) => {
    try {
      const detail = fn();
      checks.push({ name, ok: true, detail });
      return true;
    } catch (e) {
      checks.push({ name, ok: false, detail: e instanceof VerifyError ? e.message : `unexpected: ${e}` });
      return false;
    }
  };
  let leaf;
  const steps = [
    () => run("entry", () => {
      if (doc === null || typeof doc !== "object") throw new VerifyError("the served entry is not a JSON object");
      if (doc.index !== index) throw new VerifyError(`the server sent entry ${doc.index}, not ${index}`);
      out.envelope = parseEnvelope(doc.envelope);
      out.statement = decodeStatement(out.envelope);
      return `entry ${index}: a DSSE envelope (${out.envelope.payloadType})`;
    }),
    () => run("leaf hash", () => {
      leaf = envelopeLeafHash(doc.envelope);
      if (typeof doc.leaf_hash === "string" && doc.leaf_hash !== toHex(leaf)) {
        throw new VerifyError(`the served leaf hash ${doc.leaf_hash.slice(0, 16)}… is not the hash of the served envelope (${toHex(leaf).slice(0, 16)}…)`);
      }
      return `SHA-256(0x00 || JCS(envelope)) = ${toHex(leaf)}`;
    }),
    () => run("checkpoint signature", () => {
      out.note = parseNote(doc.checkpoint);
      out.checkpoint = parseCheckpoint(out.note.text);
      if (out.checkpoint.origin !== logKey.name) {
        throw new VerifyError(`the checkpoint is for log ${out.checkpoint.origin}, the trusted key for ${logKey.name}`);
      }
      verifyNoteKey(out.note, logKey);
      return `signed by the trusted log key ${logKey.name} (${toHex(logKey.keyId)}, ${logKey.kind})`;
    }),
    () => run("inclusion proof", () => {
      if (!Array.isArray(doc.inclusion_proof)) throw new VerifyError("no inclusion proof");
      const proof = doc.inclusion_proof.map(fromHex);
      const root = rootFromInclusionProof(index, out.checkpoint.size, leaf, proof);
      if (!equalBytes(root, out.checkpoint.root)) {
        throw new VerifyError(`the inclusion proof leads to root ${toHex(root).slice(0, 16)}…, not the checkpoint's ${toHex(out.checkpoint.root).slice(0, 16)}…`);
      }
      return `RFC 9162: leaf ${index} of ${out.checkpoint.size} under root ${toHex(root)} (${proof.length} hashes)`;
    }),
    () => {
      const passed = run("witness cosignatures", () => {
        out.cosignatures = checkWitnesses(out.note, witnesses, threshold);
        const good = out.cosignatures.filter((c) => c.ok).length;
        if (threshold === 0) return noWitnessDetail(good, witnesses.length);
        return `${good} of ${witnesses.length} trusted witnesses cosigned (${threshold} required)`;
      });
      // threshold 0: nothing was required of a witness; the badge must not say it checked one
      if (passed && threshold === 0) Object.assign(checks[checks.length - 1], { name: NO_WITNESS, info: true });
      return passed;
    },
    () => run("envelope signatures", () => {
      const signers = verifyEnvelopeSignatures(out.envelope, dsseKeys.map(parseDsseKey));
      return `DSSE signatures over PAE by ${signers.join(", ")}`;
    }),
  ];
  for (const step of steps) if (!step()) break; // later checks build on earlier ones
  out.ok = checks.length === steps.length && checks.every((c) => c.ok);
  return out;
}

/** The name of the witness check when the threshold is 0: nothing was checked against a
 * witness, and the badge says so (an `info` line, not a ✔). */
export const NO_WITNESS = "no witness trusted";

export function noWitnessDetail(good, listed) {
  const rest = "the checkpoint rests on the log key alone (threshold 0)";
  return listed ? `${rest}; ${good} of ${listed} listed witnesses cosigned, none required` : `${rest}: no witness cosignature was required or checked`;
}

/** The trusted witnesses' cosignatures on `note`: each present one must verify, at least
 * `threshold` must be present. */
export function checkWitnesses(note, witnesses, threshold) {
  const results = witnesses.map((w) => {
    const found = note.signatures.filter((s) => s.name === w.name && equalBytes(s.keyId, w.keyId));
    if (found.length === 0) return { witness: w, ok: false, present: false };
    for (const s of found) {
      const r = checkNoteSignature(w, note.text, s.signature);
      if (!r.ok) throw new VerifyError(`the cosignature by witness ${w.name} does not verify`);
      return { witness: w, ok: true, present: true, time: r.time };
    }
    return { witness: w, ok: false, present: false };
  });
  const good = results.filter((r) => r.ok).length;
  if (good < threshold) {
    throw new VerifyError(`${good} of the ${threshold} required witness cosignatures are present`);
  }
  return results;
}
