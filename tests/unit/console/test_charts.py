"""The console's SVG charts: every label escaped, an empty window, one sample, a burst
drawn where and as high as it happened, and the Live page's cards around them."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from sidecar.runtime.console import charts, live_charts
from sidecar.runtime.console.history import History, SourceWindow
from sidecar.runtime.console.numbers import read
from sidecar.runtime.tally import Counts

HOSTILE = '"><script>alert(1)</script><x a="'
SVG = "{http://www.w3.org/2000/svg}"


def parsed(svg: str) -> ET.Element:
    """The drawing as XML: it must parse, whatever the labels held."""
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def test_labels_and_layer_names_are_escaped() -> None:
    drawings = [
        charts.line([1.0, 2.0], label=HOSTILE, unit=HOSTILE, slots=180, end=0.0),
        charts.stacked([(HOSTILE, 0, [1, 2])], label=HOSTILE, samples=2, slots=180, end=0.0),
        charts.sparkline([1, 2], [0, 1], label=HOSTILE, slots=180),
    ]
    for svg in drawings:
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        root = parsed(svg)
        assert HOSTILE in root.get("aria-label", "") + (root.findtext(f"{SVG}title") or "")


def test_an_empty_window_says_so_and_draws_no_series() -> None:
    for svg in (
        charts.line([], label="books", unit="/s", slots=180, end=None),
        charts.stacked([], label="books", samples=0, slots=180, end=None),
    ):
        root = parsed(svg)
        assert root.find(f"{SVG}polyline") is None and root.find(f"{SVG}path") is None
        assert root.findtext(f"{SVG}text[@class='empty']") == "no samples yet"
        assert "no samples yet" in root.get("aria-label", "")


def test_samples_without_denials_say_none_rather_than_no_samples() -> None:
    root = parsed(charts.stacked([], label="books", samples=3, slots=180, end=15.0))
    assert root.findtext(f"{SVG}text[@class='empty']") == "none in the window"
    assert root.get("aria-label") == "books: 0 in the window"


def test_a_young_history_spans_the_chart_and_says_how_far_back() -> None:
    assert [charts.span(n, 180) for n in (0, 1, 12, 40, 180, 500)] == [12, 12, 12, 40, 180, 180]
    assert ">60 s ago</text>" in charts.line([1.0], label="b", unit="", slots=12, end=5.0)
    assert ">15 min ago</text>" in charts.line([1.0], label="b", unit="", slots=180, end=5.0)


def test_a_sample_without_a_value_is_a_gap_not_a_zero() -> None:
    root = parsed(charts.line([50.0, None, None, 20.0, 0.0], label="r", unit=" %", slots=5,
                              end=25.0, top=100.0))  # fmt: skip
    dots, lines = root.findall(f"{SVG}circle"), root.findall(f"{SVG}polyline")
    assert len(dots) == 1 and len(lines) == 1
    assert len(lines[0].get("points", "").split()) == 2  # the last two samples, joined
    assert float(dots[0].get("cy", "0")) == (charts.TOP + charts.BOTTOM) / 2  # 50 %


def test_one_sample_is_still_seen() -> None:
    line = parsed(charts.line([4.0], label="books", unit="/s", slots=180, end=5.0))
    point = line.find(f"{SVG}circle[@class='point']")
    assert point is not None and float(point.get("cx", "0")) > charts.RIGHT - 2
    stacked = parsed(
        charts.stacked([("invalid", 0, [3])], label="books", samples=1, slots=180, end=5.0)
    )
    layer = stacked.find(f"{SVG}path[@class='layer']")
    assert layer is not None and layer.get("data-total") == "3"
    xs = {float(x) for x, _ in _coordinates(layer.get("d", ""))}
    assert max(xs) == charts.RIGHT and min(xs) < charts.RIGHT  # a column with a width


def test_a_burst_is_drawn_at_its_time_and_to_its_height() -> None:
    ok = [0] * 10
    burst = [0, 0, 0, 0, 0, 0, 20, 0, 0, 0]  # the 7th of 10 samples
    root = parsed(charts.stacked([("expired", 1, ok), ("invalid", 0, burst)], label="books",
                                 samples=10, slots=10, end=50.0))  # fmt: skip
    layers = {path.get("data-layer"): path for path in root.iter(f"{SVG}path")}
    assert (
        layers["invalid"].get("data-total") == "20" and layers["invalid"].get("data-peak") == "20"
    )
    top = min(y for _, y in _coordinates(layers["invalid"].get("d", "")))
    assert top == charts.TOP  # the scale's top is 20: the burst reaches it
    step = (charts.RIGHT - charts.LEFT) / 10
    at_top = {x for x, y in _coordinates(layers["invalid"].get("d", "")) if y == top}
    assert at_top == {round(charts.LEFT + 6 * step, 1), round(charts.LEFT + 7 * step, 1)}
    xs = {x for x, _ in _coordinates(layers["invalid"].get("d", ""))}
    assert xs == at_top  # the band is the burst alone: no flat line of nothing around it
    assert layers["invalid"].get("fill") == "url(#pat-0)"
    assert layers["expired"].get("fill") == "url(#pat-1)"  # told apart without colour


def test_the_scale_is_a_round_number_at_or_above_the_peak() -> None:
    for values, top in (([0.4], "1/s"), ([3.0], "5/s"), ([17.0], "20/s"), ([0.0], "1/s")):
        svg = charts.line(values, label="x", unit="/s", slots=180, end=0.0)
        assert f'text-anchor="end">{top}</text>' in svg


def _window(name: str) -> SourceWindow:
    history = History()
    totals = [0.0, 0.0]
    for step in range(4):
        totals[0] += 10
        totals[1] += 12 if step == 2 else 0
        history.add(read(Counts(
            verifications={(name, "md5", "ok", "allow"): totals[0],
                           (name, "md5", "invalid", "deny"): totals[1]},
            key_matches={(name, "2026-12"): totals[0]},
        )), 1_700_000_000.0 + 5 * step)  # fmt: skip
    return history.window(name)


def test_a_card_names_its_source_reason_first_time_and_key_escaped() -> None:
    card = live_charts.card(_window(HOSTILE), 180)
    assert "<script>" not in card
    card = live_charts.card(_window("books"), 180)
    assert 'data-reason="invalid" data-decision="deny"' in card
    assert "<strong>invalid</strong>: 12, first in the window at 22:13:30 UTC" in card
    assert ">60 s ago</text>" in card  # three samples: the charts span a minute
    assert '<li data-key="2026-12"><code>2026-12</code>: 30 matches, first at 22:13:25 UTC' in card
    assert "42 decisions, 12 rejected (28.6 %) in the window" in card


def _coordinates(path: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"([\d.]+) ([\d.]+)", path)]


def test_the_live_charts_show_twelve_sources_most_rejections_first_and_filter_by_name() -> None:
    history = History()
    names = [f"shop-{n:02d}" for n in range(13)]

    def counts(step: int) -> Counts:
        return Counts(
            verifications={
                **{(name, "md5", "ok", "allow"): 5.0 * step for name in names},
                **{(name, "md5", "expired", "deny"): n * step for n, name in enumerate(names)},
            }
        )

    history.add(read(counts(0)), 0.0)
    history.add(read(counts(1)), 5.0)
    shown = re.findall(
        r'<section class="card" data-source="([^"]+)"', live_charts.fragment(history, "")
    )
    assert shown == [f"shop-{n:02d}" for n in range(12, 0, -1)]  # shop-00 has none: 13th
    assert "12 of 13 sources with traffic in the last 15 minutes, most rejections first." in (
        live_charts.fragment(history, "")
    )
    only = live_charts.fragment(history, "SHOP-00")
    assert re.findall(r'data-source="([^"]+)"', only) == ["shop-00"]
    none = live_charts.fragment(history, "<b>")
    assert "matching <code>&lt;b&gt;</code>." in none and "<section" not in none


def test_a_key_rotation_shows_the_new_key_from_when_it_started_to_match() -> None:
    history = History()
    old = new = 0.0
    for step in range(6):  # the old key until the 4th sample, the new one from it on
        old += 5 if 0 < step < 4 else 0
        new += 5 if step >= 4 else 0
        history.add(read(Counts(
            verifications={("books", "md5", "ok", "allow"): old + new},
            key_matches={("books", "2026-11"): old, ("books", "2026-12"): new},
        )), 1_700_000_000.0 + 5 * step)  # fmt: skip
    card = live_charts.card(history.window("books"), 180)
    keys = re.findall(r'<li data-key="([^"]+)">.*?first at ([\d:]+) UTC, last at ([\d:]+)', card)
    assert keys == [("2026-11", "22:13:25", "22:13:35"), ("2026-12", "22:13:40", "22:13:45")]
