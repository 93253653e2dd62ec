"""Inline SVG charts for the audit report: deployment timelines and metrics across versions.

Plain SVG text, no script: tooltips are ``<title>`` elements, which browsers show on hover.
Every piece of user text goes through :func:`esc`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

__all__ = ["PALETTE", "esc", "metrics_svg", "timeline_svg"]

#: Okabe-Ito colours (distinguishable with colour-blindness), then greys.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#8C6D00", "#444")

_WIDTH = 960
_LEFT = 130
_RIGHT = 20
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def esc(value: object) -> str:
    """HTML/SVG-escape any value (quotes too: safe inside attributes)."""
    return escape(str(value), quote=True)


def _colour(key: str) -> str:
    return PALETTE[hashlib.sha256(key.encode()).digest()[0] % 6]


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _axis(x0: float, x1: float, t0: float, t1: float, y: float) -> list[str]:
    span = t1 - t0
    fmt = "%H:%M:%S.%f" if span < 10 else "%H:%M:%S" if span < 600 else "%m-%d %H:%M"
    if span > 5 * 86400:
        fmt = "%Y-%m-%d"
    out = [
        f'<line x1="{x0:.1f}" y1="{y}" x2="{x1:.1f}" y2="{y}" stroke="#999"/>',
        f'<text x="{x0 - 8:.1f}" y="{y + 16}" text-anchor="end" {_FONT}>UTC</text>',
    ]
    for k in range(5):
        t = t0 + span * k / 4
        x = x0 + (x1 - x0) * k / 4
        label = datetime.fromtimestamp(t, UTC).strftime(fmt)
        label = label[:-3] if fmt.endswith("%f") else label  # milliseconds
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#999"/>')
        out.append(f'<text x="{x:.1f}" y="{y + 16}" text-anchor="{anchor}" {_FONT}>{label}</text>')
    return out


def timeline_svg(timeline: Mapping[str, Sequence[Mapping[str, Any]]], until: str) -> str:
    """One lane per environment: which version served when (a bar per period, coloured by
    version), deploys as ticks, rollbacks as red triangles; ``until`` closes the last bar."""
    envs = [e for e, events in timeline.items() if events]
    if not envs:
        return ""
    times = [_ts(str(ev["time"])) for e in envs for ev in timeline[e]]
    t0, t1 = min(times), max(max(times), _ts(until))
    if t1 <= t0:
        t1 = t0 + 1.0
    x0, x1 = float(_LEFT), float(_WIDTH - _RIGHT)

    def x(t: float) -> float:
        return x0 + (x1 - x0) * (t - t0) / (t1 - t0)

    lane = 36
    height = 20 + lane * len(envs) + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
        f'width="100%" role="img" aria-label="deployment timeline">'
    ]
    for row, env in enumerate(envs):
        y = 20 + row * lane
        parts.append(
            f'<text x="{x0 - 8}" y="{y + 15}" text-anchor="end" {_FONT} font-weight="bold">'
            f"{esc(env)}</text>"
        )
        events = timeline[env]
        for i, ev in enumerate(events):
            start = x(_ts(str(ev["time"])))
            end = x(_ts(str(events[i + 1]["time"]))) if i + 1 < len(events) else x1
            version = str(ev["version"])
            tip = f"{env}: {version} ({ev['action']} at {ev['time']}, entry {ev['log_index']})"
            parts.append(
                f'<rect x="{start:.1f}" y="{y + 2}" width="{max(end - start, 1.0):.1f}" '
                f'height="20" fill="{_colour(version)}" fill-opacity="0.75">'
                f"<title>{esc(tip)}</title></rect>"
            )
            if end - start > 7 * len(version) + 6:
                parts.append(
                    f'<text x="{start + 4:.1f}" y="{y + 16}" {_FONT} fill="#fff">'
                    f"{esc(version)}</text>"
                )
            if ev["action"] == "rollback":
                parts.append(
                    f'<path d="M{start:.1f},{y + 24} l-6,9 h12 z" fill="#C00">'
                    f"<title>{esc('rollback: ' + tip)}</title></path>"
                )
            else:
                parts.append(
                    f'<line x1="{start:.1f}" y1="{y}" x2="{start:.1f}" y2="{y + 26}" '
                    'stroke="#222" stroke-width="1.5"/>'
                )
    parts += _axis(x0, x1, t0, t1, 20 + lane * len(envs) + 4)
    parts.append("</svg>")
    return "".join(parts)


def metrics_svg(name: str, points: Sequence[tuple[str, Mapping[str, float]]]) -> str:
    """Metric values across the versions of model ``name`` (x: versions in registration
    order; one line per metric, at most eight)."""
    metrics = sorted({m for _, values in points for m in values})[: len(PALETTE)]
    if not metrics or not points:
        return ""
    values = [v[m] for _, v in points for m in metrics if m in v]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or max(abs(lo) * 0.05, 0.05)
    lo, hi = lo - pad, hi + pad
    top, bottom, height = 20.0, 190.0, 250
    x0, x1 = float(_LEFT), float(_WIDTH - _RIGHT - 110)
    step = (x1 - x0) / max(len(points) - 1, 1)

    def y(v: float) -> float:
        return bottom - (bottom - top) * (v - lo) / (hi - lo)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {height}" '
        f'width="100%" role="img" aria-label="{esc("metrics of " + name)}">',
        f'<line x1="{x0}" y1="{bottom}" x2="{x1}" y2="{bottom}" stroke="#999"/>',
        f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{bottom}" stroke="#999"/>',
    ]
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        parts.append(
            f'<text x="{x0 - 6}" y="{y(v) + 4:.1f}" text-anchor="end" {_FONT}>{v:.3g}</text>'
            f'<line x1="{x0}" y1="{y(v):.1f}" x2="{x1}" y2="{y(v):.1f}" stroke="#eee"/>'
        )
    every = max(1, len(points) // 16)
    for i, (version, _) in enumerate(points):
        if i % every == 0 or i == len(points) - 1:
            parts.append(
                f'<text x="{x0 + i * step:.1f}" y="{bottom + 16}" text-anchor="middle" '
                f"{_FONT}>{esc(version)}</text>"
            )
    small = len(points) > 60
    for m_i, metric in enumerate(metrics):
        colour = PALETTE[m_i]
        coords = [(x0 + i * step, y(v[metric])) for i, (_, v) in enumerate(points) if metric in v]
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in coords)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if not small:
            shown = [(ver, vals[metric]) for ver, vals in points if metric in vals]
            for (a, b), (version, value) in zip(coords, shown, strict=True):
                tip = f"{name}@{version}: {metric} = {value:g}"
                parts.append(
                    f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3.5" fill="{colour}">'
                    f"<title>{esc(tip)}</title></circle>"
                )
        parts.append(
            f'<rect x="{x1 + 14}" y="{top + m_i * 18}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x1 + 28}" y="{top + m_i * 18 + 9}" {_FONT}>{esc(metric)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
