"""The audit report as one self-contained HTML page (inline CSS and SVG, no script).

Every value that comes from a user (names, comments, reasons, environments, metric names)
is escaped with :func:`ailedger.audit._svg.esc`; nothing is inserted unescaped but fixed
markup and numbers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from ailedger.audit._report import AUDIT_SCHEMA, AuditItem, AuditReport, Release
from ailedger.audit._svg import esc, metrics_svg, timeline_svg
from ailedger.audit._verify import Verification

__all__ = ["render_html"]

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;color:#1b1b1b;margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:22px}
.ok{color:#05631f}.bad{color:#b00020;font-weight:600}.warn{color:#8a5a00}
.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.muted{color:#666}details{margin:6px 0;border:1px solid #e5e5e5;border-radius:6px;padding:4px 8px}
summary{cursor:pointer;font-weight:600}
@media print{details{break-inside:avoid}details>*{display:block}}
"""

_STATUS = {
    "verified": ("ok", "verified"),
    "match": ("ok", "matches"),
    "passed": ("ok", "passed"),
    "pending": ("warn", "pending: no checkpoint yet"),
    "approve": ("ok", "approve"),
    "reject": ("bad", "REJECT"),
    "missing": ("bad", "missing"),
    "unverified": ("bad", "unverified"),
    "failed": ("bad", "FAILED"),
    "invalid": ("bad", "INVALID"),
    "mismatch": ("bad", "MISMATCH"),
    "unreadable": ("bad", "unreadable"),
}


def _badge(status: str) -> str:
    cls, text = _STATUS.get(status, ("warn", status))
    return f'<span class="{cls}">{esc(text)}</span>'


def _verification(v: Verification) -> str:
    parts = [f"signature {_badge(v.signature)}", f"log {_badge(v.inclusion)}"]
    if v.anchor is not None:
        parts.append(
            f'anchored <span class="ok">chain {esc(v.anchor["chain_id"])} block '
            f"{esc(v.anchor['block'])}</span>"
        )
    else:
        parts.append('<span class="muted">not anchored</span>')
    if v.artifact is not None:
        parts.append(f"artifact {_badge(v.artifact)}")
    signers = ", ".join(v.signers)
    return " · ".join(parts) + (f'<br><span class="mono">{esc(signers)}</span>' if signers else "")


def _mono(value: object) -> str:
    return f'<span class="mono">{esc(value)}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """``rows`` cells are HTML already (escape before)."""
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not body:
        return '<p class="muted">none</p>'
    ths = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f"<table><tr>{ths}</tr>{body}</table>"


def _cards(summary: dict[str, Any]) -> str:
    deploys = summary["deployments"]
    cards = [
        ("releases", summary["releases"], ""),
        ("lacking a passed bias audit", summary["releases_lacking_bias_audit"],
         "bad" if summary["releases_lacking_bias_audit"] else "ok"),
        ("failed evaluations", summary["failed_evaluations"],
         "bad" if summary["failed_evaluations"] else "ok"),
        ("unverified items", f"{summary['unverified_items']} / {summary['items']}",
         "bad" if summary["unverified_items"] else "ok"),
        ("deprecated", summary["deprecated"], ""),
        ("anchored items", f"{summary['anchored_items']} / {summary['items']}", ""),
    ]  # fmt: skip
    html = "".join(
        f'<div class="card"><b class="{cls}">{esc(value)}</b>{esc(label)}</div>'
        for label, value, cls in cards
    )
    rows = [
        (esc(env), esc(counts.get("deploy", 0)), esc(counts.get("rollback", 0)))
        for env, counts in deploys.items()
    ]
    bias = summary["bias_audit"]
    bias_line = ", ".join(f"{esc(k)}: {esc(v)}" for k, v in bias.items())
    unv = ", ".join(f"{esc(k)}: {esc(v)}" for k, v in summary["unverified"].items())
    return (
        f'<div class="cards">{html}</div>'
        f"<p>Bias audit per release: {bias_line}. Unverified items by reason: {unv}.</p>"
        "<h3>Deployments per environment</h3>"
        + _table(("environment", "deploys", "rollbacks"), rows)
    )


def _log_section(report: AuditReport) -> str:
    log = report.log
    cp = _badge(log.checkpoint_status)
    anchors = [
        (esc(a.chain_id), f'<span class="mono">{esc(a.contract)}</span>', esc(a.index),
         esc(a.size), f'<span class="mono">{esc(a.tx_hash)}</span>', esc(a.block))
        for a in log.anchors
    ]  # fmt: skip
    problems = "".join(f'<li class="bad">{esc(p)}</li>' for p in log.problems)
    return (
        f"<p>Log <b>{esc(report.origin)}</b>: {esc(log.size)} entries. Latest signed checkpoint: "
        f"{cp}, size {esc(log.checkpoint_size)} (entries below it verified as included by "
        "recomputing the RFC 9162 root over their leaf hashes). Signatures are checked "
        "against the workspace's known keys.</p>"
        + (f"<ul>{problems}</ul>" if problems else "")
        + "<h3>Anchors (from the workspace's anchor book; roots checked against the log"
        + (", and each confirmed on the chain" if log.anchors_on_chain else ", chain not queried")
        + ")</h3>"
        + _table(("chain", "contract", "anchor", "size", "transaction", "block"), anchors)
    )


def _metrics_section(releases: Sequence[Release]) -> str:
    by_name: dict[str, list[tuple[str, dict[str, float]]]] = defaultdict(list)
    for r in releases:
        values: dict[str, float] = {}
        for item in r.evaluations:
            values.update(item.details["metrics"])
        if values:
            by_name[r.ref.name].append((r.ref.version, values))
    out = []
    for name, points in sorted(by_name.items()):
        svg = metrics_svg(name, points)
        if svg:
            out.append(f"<h3>{esc(name)}</h3>{svg}")
    return "".join(out) or '<p class="muted">no evaluation metrics recorded</p>'


def _overview(releases: Sequence[Release]) -> str:
    rows = []
    for r in releases:
        items = r.items()
        bad = sum(1 for i in items if not i.verification.verified)
        envs = sorted(
            {
                str(i.details["environment"])
                for i in r.deployments
                if i.details["action"] != "deprecate"
            }
        )
        failed = r.failed_evaluations
        link = f'<a href="#r{r.registration.log_index}">{esc(r.ref)}</a>'
        if r.deprecated:
            link += ' <span class="warn">deprecated</span>'
        evals = f"{len(r.evaluations)}"
        if failed:
            evals += f' (<span class="bad">{failed} failed</span>)'
        status = _badge("verified")
        if bad:
            status = f'<span class="bad">{bad} of {len(items)} unverified</span>'
        deployed = esc(", ".join(envs)) or '<span class="muted">never</span>'
        rows.append(
            (link, esc(r.registration.logged_at), _badge(r.bias_audit), evals,
             esc(len(r.approvals)), deployed, status)
        )  # fmt: skip
    head = ("release", "registered", "bias audit", "evaluations", "approvals", "deployed to",
            "items")  # fmt: skip
    return _table(head, rows)


def _item_rows(items: Sequence[AuditItem], cells: Any) -> list[list[str]]:
    return [
        [*cells(i), f"{esc(i.log_index)}<br>{esc(i.logged_at)}", _verification(i.verification)]
        for i in items
    ]


def _release(r: Release) -> str:
    reg = r.registration
    training = reg.details.get("training", {})
    params = ", ".join(f"{k}={v}" for k, v in training.get("hyperparameters", {}).items())
    head = (
        f'<details id="r{reg.log_index}"><summary>{esc(r.ref)} · bias audit '
        f"{_badge(r.bias_audit)}</summary>"
        f'<p>Digest <span class="mono">{esc(r.digest)}</span><br>Registered: entry '
        f"{esc(reg.log_index)} at {esc(reg.logged_at)}; {_verification(reg.verification)}<br>"
        f"Team: {esc(training.get('team', '-'))}; code revision: "
        f"{esc(training.get('code_revision', '-'))}; parameters: {esc(params or '-')}</p>"
    )
    datasets = _item_rows(r.datasets, lambda i: [esc(i.details["name"]), _mono(i.details["root"])])
    datasets += [["(not registered here)", f'<span class="mono">{esc(root)}</span>', "", ""]
                 for root in r.unregistered_roots]  # fmt: skip
    evals = _item_rows(r.evaluations, lambda i: [
        esc(i.details["name"]), _badge("passed" if i.details["passed"] else "failed"),
        esc(", ".join(f"{k}={v:g}" for k, v in sorted(i.details["metrics"].items())))])  # fmt: skip
    approvals = _item_rows(r.approvals, lambda i: [
        esc(i.details["role"]), esc(i.details["org"] or "-"),
        f'<span class="mono">{esc(i.details["signer"])}</span>',
        _badge(str(i.details["decision"])),
        esc(i.details["time"] or "-"), esc(i.details["comment"] or "")])  # fmt: skip
    deploys = _item_rows(r.deployments, lambda i: [
        esc(i.details["action"]), esc(i.details["environment"]),
        esc(i.details["previous_version"] or i.details["reason"] or "")])  # fmt: skip
    v = ("entry / logged", "verification")
    return (
        head
        + "<h3>Datasets</h3>" + _table(("dataset", "root", *v), datasets)
        + "<h3>Evaluations</h3>" + _table(("name", "result", "metrics", *v), evals)
        + "<h3>Approvals</h3>"
        + _table(("role", "org", "signer", "decision", "time", "comment", *v), approvals)
        + "<h3>Deployments, rollbacks, deprecation</h3>"
        + _table(("action", "environment", "previous version / reason", *v), deploys)
        + "</details>"
    )  # fmt: skip


def render_html(report: AuditReport) -> str:
    """The page: summary, log verification, plots, releases overview and details."""
    summary = report.summary()
    generated = report.generated_at.isoformat(timespec="seconds")
    timeline = timeline_svg(report.timeline, report.generated_at.isoformat())
    names = ", ".join(report.audit_names)
    return "".join(
        [
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Audit report: {esc(report.origin)}</title><style>{_CSS}</style></head><body>",
            f"<h1>Audit report: {esc(report.origin)}</h1>",
            f'<p class="muted">Generated {esc(generated)} by ailedger · schema '
            f"{esc(AUDIT_SCHEMA)} · bias audit = an evaluation named "
            f"{esc(names)} · artifacts re-hashed: {'yes' if report.artifacts_checked else 'no'}"
            "</p>",
            "<h2>Summary</h2>",
            _cards(summary),
            "<h2>Verification of the log</h2>",
            _log_section(report),
            "<h2>Deployments over time</h2>",
            timeline or '<p class="muted">no deployments</p>',
            "<h2>Evaluation metrics across versions</h2>",
            _metrics_section(report.releases),
            "<h2>Releases</h2>",
            _overview(report.releases),
            "<h2>Release details</h2>",
            "".join(_release(r) for r in report.releases),
            "</body></html>\n",
        ]
    )
