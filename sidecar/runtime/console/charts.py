"""Server-rendered SVG charts for the console: a line, a stack of layers, a sparkline.

Pure functions of numbers and labels: no library, no script, no style attribute (the
Content-Security-Policy allows none; colours are presentation attributes and classes of
console.css). Every label is escaped. A chart spans the whole window (``slots`` samples,
newest at the right edge), so a source with 3 samples shows them at the right, not
stretched. Layers are told apart by a pattern as well as a colour, and named in a legend
(``swatch``), so the charts read without colour.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from html import escape

from sidecar.runtime.console.history import INTERVAL

WIDTH, HEIGHT = 360.0, 100.0  # the viewBox; the page scales it to its column
LEFT, RIGHT, TOP, BOTTOM = 42.0, 354.0, 6.0, 80.0  # the plot area
# Fill and stroke of each pattern: hatches, dots, cross-hatch, bars, solid... (why: a
# printout or a colour-blind reader still tells the layers apart).
_PATTERNS = (
    ("#b42318", '<path d="M0 6L6 0" stroke="#b42318" stroke-width="1.6"/>'),
    ("#1f5fbf", '<circle cx="3" cy="3" r="1.4" fill="#1f5fbf"/>'),
    ("#b54708", '<path d="M0 3H6M3 0V6" stroke="#b54708" stroke-width="1.2"/>'),
    ("#027a48", '<path d="M0 1.5H6M0 4.5H6" stroke="#027a48" stroke-width="1.2"/>'),
    ("#6941c6", '<path d="M1.5 0V6M4.5 0V6" stroke="#6941c6" stroke-width="1.2"/>'),
    ("#344054", '<rect width="6" height="6" fill="#344054"/>'),
    ("#c11574", '<path d="M0 0L6 6" stroke="#c11574" stroke-width="1.6"/>'),
    ("#0e7090", '<path d="M0 6L6 0M0 0L6 6" stroke="#0e7090" stroke-width="1"/>'),
)
PATTERNS = len(_PATTERNS)
MIN_SLOTS = 12  # a young process's charts span its history, at least a minute


def span(samples: int, capacity: int) -> int:
    """How many sample slots a chart spans: the whole window once the history fills it,
    before that the history (so the first minutes are not a sliver at the right edge)."""
    return min(capacity, max(samples, MIN_SLOTS))


def defs() -> str:
    """The patterns, once per page (an id is unique in a document): ``pat-0`` .. ``pat-7``."""
    patterns = "".join(
        f'<pattern id="pat-{index}" width="6" height="6" patternUnits="userSpaceOnUse">'
        f'<rect width="6" height="6" fill="#fff"/>{drawing}</pattern>'
        for index, (_, drawing) in enumerate(_PATTERNS)
    )
    return (
        f'<svg class="defs" width="0" height="0" aria-hidden="true"><defs>{patterns}</defs></svg>'
    )


def swatch(index: int) -> str:
    """A small square of pattern ``index`` for a legend."""
    stroke = _PATTERNS[index % PATTERNS][0]
    return (
        '<svg class="swatch" viewBox="0 0 14 14" width="14" height="14" aria-hidden="true">'
        f'<rect x="0.5" y="0.5" width="13" height="13" fill="url(#pat-{index % PATTERNS})" '
        f'stroke="{stroke}"/></svg>'
    )


def line(values: Sequence[float | None], *, label: str, unit: str, slots: int,
         end: float | None, top: float | None = None) -> str:  # fmt: skip
    """One series as a line; ``None`` is a sample without a value (a rejection rate with
    no decisions), left as a gap. ``top`` fixes the scale (100 for a percentage)."""
    peak = max((value for value in values if value is not None), default=0.0)
    scale = top if top is not None else _nice(peak)
    xs = _centres(len(values), slots)
    runs: list[list[tuple[float, float]]] = [[]]
    for x, value in zip(xs, values, strict=True):
        if value is None:
            runs.append([])
        else:
            runs[-1].append((x, _y(value, scale)))
    marks = "".join(_run(run) for run in runs if run)
    title = f"{label}: peak {_number(peak)}{unit}" if values else f"{label}: no samples yet"
    return _frame(title, marks, scale=scale, unit=unit, count=len(values), slots=slots, end=end,
                  peak=peak)  # fmt: skip


def _run(points: list[tuple[float, float]]) -> str:
    """A stretch of a line without gaps; a lone sample is a dot."""
    if len(points) == 1:
        return f'<circle class="point" cx="{points[0][0]:.1f}" cy="{points[0][1]:.1f}" r="2.5"/>'
    return f'<polyline class="series" points="{_points(points)}"/>'


def stacked(layers: Sequence[tuple[str, int, Sequence[int]]], *, label: str, samples: int,
            slots: int, end: float | None) -> str:  # fmt: skip
    """Layers (name, pattern, counts per sample) stacked bottom up, as steps: each sample
    is a column as wide as its interval, so one sample alone is still seen."""
    count = samples
    columns = zip(*(values for _, _, values in layers), strict=True)
    totals = [sum(column) for column in columns] if layers else [0] * count
    scale = _nice(max(totals, default=0))
    below = [0] * count
    shapes = []
    for name, pattern, values in layers:
        above = [base + value for base, value in zip(below, values, strict=True)]
        shapes.append(
            f'<path class="layer" data-layer="{escape(name)}" data-total="{sum(values)}" '
            f'data-peak="{max(values, default=0)}" fill="url(#pat-{pattern % PATTERNS})" '
            f'stroke="{_PATTERNS[pattern % PATTERNS][0]}" stroke-width="0.6" '
            f'd="{_steps(below, above, slots, scale)}"><title>{escape(name)}: {sum(values)} '
            "in the window</title></path>"
        )
        below = above
    title = f"{label}: {sum(totals)} in the window" if count else f"{label}: no samples yet"
    return _frame(title, "".join(shapes), scale=scale, unit="", count=count, slots=slots,
                  end=end, peak=max(totals, default=0),
                  empty="none in the window" if count and not layers else "")  # fmt: skip


def sparkline(decisions: Sequence[int], rejected: Sequence[int], *, label: str,
              slots: int) -> str:  # fmt: skip
    """A source's decisions (a shaded step area) and, over them, its rejections
    (hatched) at a glance: a column per sample, so a single busy sample still shows."""
    scale = _nice(max(decisions, default=0), floor=1.0)
    box = {"left": 0.0, "right": 120.0, "top": 2.0, "bottom": 22.0}
    zeros = [0] * len(decisions)
    shapes = ""
    for css, fill, values in (("decisions", "#c7d7f2", decisions),
                              ("rejected", "url(#pat-0)", rejected)):  # fmt: skip
        if any(values):
            outline = _steps(zeros, list(values), slots, scale, **box)
            shapes += f'<path class="{css}" fill="{fill}" d="{outline}"/>'
    return (
        f'<svg class="spark" viewBox="0 0 120 24" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>"
        f'<line class="axis" x1="0" y1="22.5" x2="120" y2="22.5"/>{shapes}</svg>'
    )


def _frame(title: str, marks: str, *, scale: float, unit: str, count: int, slots: int,
           end: float | None, peak: float, empty: str = "") -> str:  # fmt: skip
    empty = empty or ("" if count else "no samples yet")
    if empty:
        empty = (f'<text class="empty" x="{(LEFT + RIGHT) / 2}" y="46" text-anchor="middle">'
                 f"{escape(empty)}</text>")  # fmt: skip
    seconds = slots * INTERVAL
    ago = f"{round(seconds / 60)} min ago" if seconds >= 120 else f"{seconds:g} s ago"
    right = time.strftime("%H:%M:%S UTC", time.gmtime(end)) if end is not None else "now"
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" role="img" '
        f'aria-label="{escape(title)}" data-peak="{peak:g}"><title>{escape(title)}</title>'
        f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{RIGHT - LEFT}" height="{BOTTOM - TOP}"/>'
        f'<line class="grid" x1="{LEFT}" y1="{(TOP + BOTTOM) / 2}" x2="{RIGHT}" '
        f'y2="{(TOP + BOTTOM) / 2}"/>{marks}{empty}'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">'
        f"{_number(scale)}{escape(unit)}</text>"
        f'<text class="tick" x="{LEFT - 4}" y="{BOTTOM}" text-anchor="end">0</text>'
        f'<text class="tick" x="{LEFT}" y="94">{ago}</text>'
        f'<text class="tick" x="{RIGHT}" y="94" text-anchor="end">{escape(right)}</text></svg>'
    )


def _centres(count: int, slots: int, left: float = LEFT, right: float = RIGHT) -> list[float]:
    step = (right - left) / slots
    return [right - (count - index - 0.5) * step for index in range(count)]


def _steps(below: Sequence[int], above: Sequence[int], slots: int, scale: float, *,
           left: float = LEFT, right: float = RIGHT, top: float = TOP,
           bottom: float = BOTTOM) -> str:  # fmt: skip
    """The outline of a band between two step lines: along ``above`` left to right, back
    along ``below``; only from its first sample with a height to its last (no flat line
    of nothing at either side)."""
    step, count = (right - left) / slots, len(above)
    counted = [index for index in range(count) if above[index] != below[index]]
    if not counted:
        return ""
    drawn = range(counted[0], counted[-1] + 1)

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / scale

    edge = []
    for index in drawn:
        x0 = right - (count - index) * step
        edge += [(x0, y(above[index])), (x0 + step, y(above[index]))]
    for index in reversed(drawn):
        x0 = right - (count - index) * step
        edge += [(x0 + step, y(below[index])), (x0, y(below[index]))]
    return "M" + "L".join(f"{x:.1f} {y_:.1f}" for x, y_ in edge) + "Z"


def _y(value: float, scale: float) -> float:
    return BOTTOM - (BOTTOM - TOP) * min(value, scale) / scale


def _points(points: Sequence[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


def _nice(peak: float, floor: float = 1.0) -> float:
    """The top of the scale: 1, 2 or 5 times a power of ten, at or above ``peak``."""
    scale = floor
    while scale < peak:
        for factor in (2.0, 2.5, 2.0):  # 1 -> 2 -> 5 -> 10
            scale *= factor
            if scale >= peak:
                break
    return scale


def _number(value: float) -> str:
    return f"{value:.1f}" if value < 10 and value != int(value) else f"{value:.0f}"
