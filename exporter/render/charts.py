"""Vital-sign series as static SVG line charts with a text alternative (layer L3).

One chart per kind of measurement (code and unit) with at least two values: the values over the
covered period (blood pressure: systolic and diastolic as two lines), value and time axes with a few
labelled ticks in the document's number and date format. The SVG is plain text drawn here (no
plotting library): small, deterministic, text kept as text. It goes into the page as
`<img src="data:image/svg+xml;base64,…" alt="…">` (an inline SVG figure fails PDF/UA: no alternative
text).
"""

from __future__ import annotations

import base64
import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any

from exporter.narrative.present import Presenter, fill

WIDTH, HEIGHT = 460, 190
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 22, 28
COLOURS = ("#1f5fa8", "#b8321f", "#2e7d32")


@dataclass
class Chart:
    key: str
    title: str
    alt: str
    src: str
    width: int = WIDTH
    height: int = HEIGHT


def _when(value: str) -> float | None:
    try:
        return _dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        try:
            return _dt.datetime.fromisoformat(value[:10]).replace(tzinfo=_dt.UTC).timestamp()
        except ValueError:
            return None


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    """About `n` round values from `low` to `high` (steps of 1, 2, 2.5 or 5 times a power of ten)."""
    if high <= low:
        return [low]
    raw = (high - low) / (n - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    v = math.floor(low / step) * step
    out = []
    while v <= high + step * 1e-9:
        if v >= low - step * 1e-9:
            out.append(round(v, 9))
        v += step
    return out


def series_of(entries: list[dict[str, Any]], p: Presenter) -> dict[str, dict[str, Any]]:
    """kind (code + unit) -> {title, unit, lines: [(label, [(time, value)])]} of the Observations."""
    out: dict[str, dict[str, Any]] = {}
    for r in entries:
        when = _when(r.get("effectiveDateTime") or "")
        if when is None:
            continue
        if "valueQuantity" in r:
            parts = [(None, r["valueQuantity"])]
        else:
            parts = [(c.get("code"), c["valueQuantity"]) for c in r.get("component") or [] if "valueQuantity" in c]
        if not parts:
            continue
        unit = p.unit(parts[0][1])
        title = p.concept(r.get("code"))
        kind = out.setdefault(f"{title}|{unit}", {"title": title, "unit": unit, "lines": {}})
        for code, q in parts:
            value = q.get("value")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            label = p.concept(code) if code else title
            kind["lines"].setdefault(label, []).append((when, float(value)))
    return out


def chart(key: str, kind: dict[str, Any], p: Presenter, labels: dict[str, str]) -> Chart | None:
    lines = {k: sorted(v) for k, v in kind["lines"].items() if v}
    points = [pt for v in lines.values() for pt in v]
    if len(points) < 2:
        return None
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    v0, v1 = min(v for _, v in points), max(v for _, v in points)
    pad = (v1 - v0) * 0.08 or max(abs(v1) * 0.05, 1.0)
    ticks = _ticks(v0 - pad, v1 + pad)
    lo, hi = min(ticks[0], v0 - pad), max(ticks[-1], v1 + pad)
    span_t = (t1 - t0) or 1.0
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: float) -> float:
        return round(LEFT + (t - t0) / span_t * w, 1)

    def y(v: float) -> float:
        return round(TOP + (hi - v) / ((hi - lo) or 1.0) * h, 1)

    title = f"{kind['title']} ({kind['unit']})" if kind["unit"] else kind["title"]
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'font-family="DejaVu Sans" font-size="10">',
           f'<text x="{LEFT}" y="14" font-size="11" font-weight="bold">{_esc(title)}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#999" stroke-width="0.6"/>']
    for v in ticks:
        if lo <= v <= hi:
            svg.append(f'<line x1="{LEFT}" x2="{LEFT + w}" y1="{y(v)}" y2="{y(v)}" stroke="#ddd" stroke-width="0.5"/>')
            svg.append(f'<text x="{LEFT - 4}" y="{y(v) + 3}" text-anchor="end">{_esc(p.number(v if v != int(v) else int(v)))}</text>')
    for i in range(5):
        t = t0 + span_t * i / 4
        day = _dt.datetime.fromtimestamp(t, _dt.UTC).date().isoformat()
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        svg.append(f'<text x="{x(t)}" y="{HEIGHT - 10}" text-anchor="{anchor}">{_esc(p.date(day))}</text>')
    legend_x = LEFT + 8
    for n, (label, pts) in enumerate(lines.items()):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{x(t)},{y(v)}" for t, v in pts)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1"/>')
        if len(pts) <= 60:
            svg.extend(f'<circle cx="{x(t)}" cy="{y(v)}" r="1.8" fill="{colour}"/>' for t, v in pts)
        if len(lines) > 1:
            svg.append(f'<text x="{legend_x}" y="{TOP + 12}" fill="{colour}">{_esc(label)}</text>')
            legend_x += 8 + 6 * len(label)
    svg.append("</svg>")
    data = "".join(svg).encode("utf-8")
    alt = fill(labels["chart_alt"], what=kind["title"], n=len(points), low=p.number(v0 if v0 != int(v0) else int(v0)),
               high=p.number(v1 if v1 != int(v1) else int(v1)), unit=kind["unit"])
    return Chart(key, title, alt, "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii"))


def charts_for(entries: list[dict[str, Any]], key: str, p: Presenter, labels: dict[str, str]) -> list[Chart]:
    out = []
    for kind in sorted(series_of(entries, p).values(), key=lambda k: k["title"]):
        c = chart(key, kind, p, labels)
        if c is not None:
            out.append(c)
    return out
