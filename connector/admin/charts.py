"""Server-side SVG charts: no JavaScript, no CDN, readable by screen readers (title + desc)."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD = 560, 260, 44
PALETTE = ("#1f5fa8", "#c2410c", "#15803d", "#7c3aed", "#b91c1c")


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[float, float]]  # (x, y)
    band: Sequence[tuple[float, float, float]] = ()  # (x, low, high) interval, optional


def _frame(title: str, desc: str, body: list[str], legend: Sequence[str] = ()) -> str:
    items = "".join(
        f'<rect x="{PAD + i * 150}" y="6" width="12" height="12" fill="{PALETTE[i % len(PALETTE)]}"/>'
        f'<text x="{PAD + i * 150 + 16}" y="17" font-size="12">{escape(label)}</text>'
        for i, label in enumerate(legend)
    )
    key = "c" + hashlib.sha1(title.encode()).hexdigest()[:8]  # unique ids when several charts share a page
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{key}t {key}d" font-family="system-ui, sans-serif">'
        f'<title id="{key}t">{escape(title)}</title><desc id="{key}d">{escape(desc)}</desc>'
        f'<rect width="100%" height="100%" fill="#fff"/>{items}{"".join(body)}</svg>'
    )


def _scale(lo: float, hi: float, out_lo: float, out_hi: float):  # type: ignore[no-untyped-def]
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _axes(x_label: str, y_label: str, y_ticks: Sequence[tuple[float, str]], sy) -> list[str]:  # type: ignore[no-untyped-def]
    parts = [
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 10}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="28" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="12" y="{HEIGHT / 2}" font-size="12" transform="rotate(-90 12 {HEIGHT / 2})" '
        f'text-anchor="middle">{escape(y_label)}</text>',
    ]
    for value, label in y_ticks:
        y = sy(value)
        parts.append(f'<line x1="{PAD - 4}" y1="{y:.1f}" x2="{WIDTH - 10}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{PAD - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{escape(label)}</text>')
    return parts


def histogram(title: str, counts: Sequence[int], edges: Sequence[float], x_label: str, *, empty: str = "Nothing to plot yet.") -> str:
    """Bars of `counts` between consecutive `edges` (e.g. the risk distribution of open deals)."""
    if not counts:
        return empty_chart(title, empty)
    top = max(max(counts), 1)
    sy = _scale(0, top, HEIGHT - PAD, 30)
    sx = _scale(edges[0], edges[-1], PAD, WIDTH - 10)
    body = _axes(x_label, "deals", [(0, "0"), (top / 2, f"{top / 2:.0f}"), (top, str(top))], sy)
    for count, lo, hi in zip(counts, edges, edges[1:], strict=False):
        x, w = sx(lo), max(sx(hi) - sx(lo) - 2, 1)
        body.append(
            f'<rect x="{x + 1:.1f}" y="{sy(count):.1f}" width="{w:.1f}" height="{sy(0) - sy(count):.1f}" '
            f'fill="{PALETTE[0]}"><title>{lo:g}-{hi:g}: {count}</title></rect>'
        )
    for edge in edges[:: max(len(edges) // 5, 1)]:
        body.append(f'<text x="{sx(edge):.1f}" y="{HEIGHT - PAD + 14}" font-size="11" text-anchor="middle">{edge:g}</text>')
    return _frame(title, f"histogram of {sum(counts)} values", body)


def line_chart(title: str, series: Sequence[Series], x_label: str, y_label: str, *, y_range: tuple[float, float] | None = None,
               empty: str = "Nothing to plot yet.", x_format: Callable[[float], str] = lambda x: f"{x:g}") -> str:
    """Lines with optional interval bands (e.g. control vs treatment close rate by week)."""
    points = [p for s in series for p in s.points] + [(b[0], v) for s in series for b in s.band for v in b[1:]]
    if not points:
        return empty_chart(title, empty)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    y_lo, y_hi = y_range or (min(ys), max(ys))
    sx = _scale(min(xs), max(xs), PAD + 6, WIDTH - 16)
    sy = _scale(y_lo, y_hi, HEIGHT - PAD, 30)
    ticks = [(y_lo + (y_hi - y_lo) * k / 4, f"{y_lo + (y_hi - y_lo) * k / 4:.2g}") for k in range(5)]
    body = _axes(x_label, y_label, ticks, sy)
    distinct = sorted(set(xs))
    for x in distinct[:: max(len(distinct) // 6, 1)]:
        body.append(f'<text x="{sx(x):.1f}" y="{HEIGHT - PAD + 14}" font-size="11" text-anchor="middle">{escape(x_format(x))}</text>')
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        if s.band:
            upper = " ".join(f"{sx(x):.1f},{sy(hi):.1f}" for x, _, hi in s.band)
            lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _ in reversed(s.band))
            body.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.15"/>')
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s.points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in s.points:
            body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"><title>{escape(s.label)}: {y:.3g} at {escape(x_format(x))}</title></circle>')
    return _frame(title, f"{len(series)} series over {x_label}", body, [s.label for s in series])


def reliability(title: str, bins: Sequence[tuple[float, float, int]], *, empty: str = "Nothing to plot yet.") -> str:
    """Calibration: predicted vs observed per bin (mean predicted, observed rate, n), with the diagonal."""
    if not bins:
        return empty_chart(title, empty)
    s = Series("observed", [(p, o) for p, o, _ in bins])
    svg = line_chart(title, [Series("perfect calibration", [(0, 0), (1, 1)]), s], "predicted loss probability", "observed loss rate", y_range=(0, 1),
                     x_format=lambda x: f"{x:.0%}")
    return svg


def intervals(title: str, rows: Sequence[tuple[str, float, float, float]], x_label: str, *, empty: str = "Nothing to plot yet.") -> str:
    """Horizontal estimates with intervals (label, mean, low, high): bandit posteriors, effects; zero marked."""
    if not rows:
        return empty_chart(title, empty)
    lo = min(min(r[2] for r in rows), 0.0)
    hi = max(max(r[3] for r in rows), 0.0) or 1.0
    left = 205
    sx = _scale(lo, hi, left, WIDTH - 20)
    step = min(34.0, (HEIGHT - 60) / len(rows))
    body = [f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" font-size="12" text-anchor="middle">{escape(x_label)}</text>',
            f'<line x1="{sx(0):.1f}" y1="26" x2="{sx(0):.1f}" y2="{HEIGHT - 38}" stroke="#9ca3af" stroke-dasharray="4 3"/>']
    for i, (label, mean, low, high) in enumerate(rows):
        y = 36 + i * step
        body.append(f'<text x="{left - 8}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{escape(label[:32])}</text>')
        body.append(f'<line x1="{sx(low):.1f}" y1="{y:.1f}" x2="{sx(high):.1f}" y2="{y:.1f}" stroke="{PALETTE[0]}" stroke-width="3"/>')
        body.append(f'<circle cx="{sx(mean):.1f}" cy="{y:.1f}" r="5" fill="{PALETTE[1]}"><title>{escape(label)}: {mean:.3g} [{low:.3g}, {high:.3g}]</title></circle>')
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        body.append(f'<text x="{sx(v):.1f}" y="{HEIGHT - 26}" font-size="11" text-anchor="middle">{v:.2g}</text>')
    return _frame(title, f"{len(rows)} estimates with intervals", body)


def empty_chart(title: str, message: str) -> str:
    """A framed chart that says, in full sentences, why there is nothing to plot."""
    lines = textwrap.wrap(message, 64) or [""]
    top = HEIGHT / 2 - 9 * (len(lines) - 1)
    body = [f'<rect x="20" y="{top - 26:.0f}" width="{WIDTH - 40}" height="{18 * len(lines) + 24}" rx="6" fill="#f3f4f6"/>']
    body += [f'<text x="{WIDTH / 2}" y="{top + 18 * i:.0f}" font-size="14" text-anchor="middle" fill="#374151">{escape(line)}</text>'
             for i, line in enumerate(lines)]
    return _frame(title, message, body)
