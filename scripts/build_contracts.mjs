#!/usr/bin/env node
// Compile every *.sol file directly in a directory (imports may reach into its subdirectories) with solc-js (the pinned npm `solc`) and write one
// JSON artifact per contract: ABI, bytecode, deployed bytecode, compiler version, EVM version,
// optimizer settings and the sha256 of each source the contract was built from.
//
// Usage:
//   node scripts/build_contracts.mjs [--check] [SRC_DIR [OUT_DIR]]
//
// Defaults: SRC_DIR = contracts/, OUT_DIR = src/ailedger/chain/artifacts/ (relative to the repo).
// --check rebuilds in memory and exits 1 if any artifact differs from (or is missing in, or is
// stale in) OUT_DIR; it never writes. Output is deterministic: sorted keys, 2-space indent,
// trailing newline, so CI can diff it.

import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const SCRIPT = "scripts/build_contracts.mjs";
const EVM_VERSION = "cancun"; // both py-evm 0.12.1b1 (Prague VM) and anvil 1.7.1 run it
const OPTIMIZER = { enabled: true, runs: 200 };
const GENERATED_BY = `${SCRIPT} (do not edit; rebuild with \`node ${SCRIPT}\`)`;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function parseArgs(argv) {
  const positional = [];
  let check = false;
  for (const arg of argv) {
    if (arg === "--check") check = true;
    else if (arg === "-h" || arg === "--help") {
      console.log("usage: node scripts/build_contracts.mjs [--check] [SRC_DIR [OUT_DIR]]");
      process.exit(0);
    } else if (arg.startsWith("-")) {
      console.error(`unknown option: ${arg}`);
      process.exit(2);
    } else positional.push(arg);
  }
  if (positional.length > 2) {
    console.error("too many arguments");
    process.exit(2);
  }
  const srcDir = path.resolve(positional[0] ?? path.join(repoRoot, "contracts"));
  const outDir = path.resolve(
    positional[1] ?? path.join(repoRoot, "src", "ailedger", "chain", "artifacts"),
  );
  return { check, srcDir, outDir };
}

function sha256(text) {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
    return out;
  }
  return value;
}

function listSources(srcDir) {
  // The *.sol files directly in srcDir, sorted. Files in subdirectories (libraries) are
  // compiled when imported, but get no artifact of their own.
  return fs
    .readdirSync(srcDir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".sol"))
    .map((e) => e.name)
    .sort();
}

function compile(srcDir) {
  const names = listSources(srcDir);
  if (names.length === 0) return {};
  const texts = {};
  for (const name of names) texts[name] = fs.readFileSync(path.join(srcDir, name), "utf8");
  const input = {
    language: "Solidity",
    sources: Object.fromEntries(names.map((n) => [n, { content: texts[n] }])),
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: OPTIMIZER,
      outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] } },
    },
  };
  const findImports = (importPath) => {
    // Our own libraries (inside srcDir), or OpenZeppelin Contracts from node_modules (pinned
    // in package.json). Nothing else is reachable.
    let full;
    if (importPath.startsWith("@openzeppelin/contracts/")) {
      const base = path.join(repoRoot, "node_modules", "@openzeppelin", "contracts");
      full = path.resolve(base, importPath.slice("@openzeppelin/contracts/".length));
      if (!full.startsWith(base + path.sep) || !fs.existsSync(full)) {
        return { error: `import not found (run npm ci): ${importPath}` };
      }
    } else {
      full = path.resolve(srcDir, importPath);
      if (!full.startsWith(srcDir + path.sep) || !fs.existsSync(full)) {
        return { error: `import not found inside ${srcDir}: ${importPath}` };
      }
    }
    const text = fs.readFileSync(full, "utf8");
    texts[importPath] = text;
    return { contents: text };
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
  const errors = (output.errors ?? []).filter((e) => e.severity === "error");
  for (const e of output.errors ?? []) console.error(e.formattedMessage ?? e.message);
  if (errors.length > 0) {
    console.error(`compilation failed with ${errors.length} error(s)`);
    process.exit(1);
  }

  const artifacts = {};
  for (const file of Object.keys(output.contracts ?? {}).sort()) {
    if (!names.includes(file)) continue; // an imported library file
    for (const [contractName, c] of Object.entries(output.contracts[file])) {
      if (artifacts[contractName]) {
        console.error(`contract name ${contractName} defined twice (${file})`);
        process.exit(1);
      }
      const metadata = JSON.parse(c.metadata);
      const sources = {};
      for (const used of Object.keys(metadata.sources).sort()) sources[used] = sha256(texts[used]);
      artifacts[contractName] = sortKeys({
        _generated_by: GENERATED_BY,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        compiler: `solc-js ${solc.version()}`,
        contractName,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
        evmVersion: EVM_VERSION,
        optimizer: OPTIMIZER,
        sourceFile: file,
        sources,
      });
    }
  }
  return artifacts;
}

function render(artifact) {
  return JSON.stringify(artifact, null, 2) + "\n";
}

function isGenerated(file) {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"))._generated_by?.startsWith(SCRIPT) ?? false;
  } catch {
    return false;
  }
}

function main() {
  const { check, srcDir, outDir } = parseArgs(process.argv.slice(2));
  const artifacts = compile(srcDir);
  const wanted = new Map(
    Object.entries(artifacts).map(([name, a]) => [path.join(outDir, `${name}.json`), render(a)]),
  );
  const existing = fs.existsSync(outDir)
    ? fs
        .readdirSync(outDir)
        .filter((f) => f.endsWith(".json"))
        .map((f) => path.join(outDir, f))
        .filter(isGenerated)
    : [];
  const stale = existing.filter((f) => !wanted.has(f)).sort();

  if (check) {
    const problems = [];
    for (const [file, text] of wanted) {
      if (!fs.existsSync(file)) problems.push(`missing: ${file}`);
      else if (fs.readFileSync(file, "utf8") !== text) problems.push(`differs: ${file}`);
    }
    for (const file of stale) problems.push(`stale (no such contract): ${file}`);
    if (problems.length > 0) {
      for (const p of problems) console.error(p);
      console.error(`artifacts are out of date; run: node ${SCRIPT}`);
      process.exit(1);
    }
    console.log(`${wanted.size} artifact(s) up to date in ${outDir}`);
    return;
  }

  fs.mkdirSync(outDir, { recursive: true });
  for (const [file, text] of wanted) {
    if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== text) fs.writeFileSync(file, text);
  }
  for (const file of stale) fs.unlinkSync(file);
  console.log(`wrote ${wanted.size} artifact(s) to ${outDir}`);
}

main();
