// DOM and fetch helpers shared by the explorer's pages. Server data goes into the page as
// text nodes only (h() never parses HTML).

export const main = document.getElementById("main");

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const code = (text) => h("code", { class: "mono" }, text);
export const entryLink = (i) => h("a", { href: `#/entry/${i}` }, `#${i}`);
export const txLink = (tx) => (typeof tx === "string" && /^0x[0-9a-fA-F]{64}$/.test(tx) ? h("a", { href: `#/tx/${tx.toLowerCase()}`, class: "mono" }, short(tx)) : code(String(tx ?? "")));

/** Wei (a decimal string) as ether, exactly. */
export function ether(wei) {
  let w;
  try {
    w = BigInt(wei);
  } catch {
    return `${wei} wei`;
  }
  const unit = 10n ** 18n;
  const frac = (w % unit).toString().padStart(18, "0").replace(/0+$/, "");
  return `${w / unit}${frac ? `.${frac}` : ""} ETH`;
}

export const searchLink = (q, label) => h("a", { href: `#/search/${encodeURIComponent(q)}` }, label ?? q);

export function dl(rows) {
  return h("dl", { class: "kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function section(title, ...children) {
  return h("section", { class: "card", "aria-label": title }, h("h2", {}, title), ...children);
}

export function table(head, rows, caption) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
    ),
  );
}

export function setPage(title, ...children) {
  document.title = `${title} · ailedger explorer`;
  main.replaceChildren(h("h1", {}, title), ...children);
  main.focus({ preventScroll: true });
}

export async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!r.ok) {
    let detail = `${r.status} ${r.statusText}`;
    try {
      const p = await r.json();
      if (p && p.detail) detail = `${r.status}: ${p.detail}`;
    } catch {
      /* not problem+json */
    }
    throw new Error(`${path}: ${detail}`);
  }
  return r.json();
}

export async function getText(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${r.statusText}`);
  return r.text();
}

export function short(text) {
  const s = String(text);
  return s.length > 30 ? `${s.slice(0, 20)}…${s.slice(-8)}` : s;
}

// --- badge -------------------------------------------------------------------------------

export function badge(id = "badge") {
  const el = h("div", { class: "badge pending", id, role: "status", "aria-live": "polite", "data-state": "pending" }, "Verifying in your browser…");
  return el;
}

export function settleBadge(el, ok, checks, what) {
  performance.mark("ailedger:settled"); // benchmarks/bench_explorer.py reads it
  el.className = `badge ${ok ? "ok" : "failed"}`;
  el.dataset.state = ok ? "ok" : "failed";
  const failed = checks.find((c) => !c.ok);
  el.replaceChildren(
    h("p", { class: "badge-title" }, ok ? `✔ Verified in your browser: ${what}` : `✘ Verification failed: ${failed ? failed.name : "incomplete"}`),
    h("ul", {}, checks.map((c) => h("li", { class: c.ok ? (c.info ? "info" : "pass") : "fail" }, h("strong", {}, `${c.ok ? (c.info ? "–" : "✔") : "✘"} ${c.name}: `), c.detail))),
  );
}


/** Wait until the service's registry index is built (/v1/registry/status), saying so on the
 * page meanwhile: the service indexes the log in the background when it starts. Returns at
 * once when it is ready, failed (the page's own request reports why) or not served. */
export async function whenIndexed(live) {
  let shown = false;
  for (;;) {
    let st;
    try {
      st = await getJSON("/v1/registry/status");
    } catch {
      return;
    }
    if (st.ready || st.error || !live()) return;
    if (!shown) {
      setPage("Indexing", h("p", { role: "status", id: "indexing" }, "The service is indexing the log for this page (it does so once, when it starts). The page opens when it is done."));
      shown = true;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
