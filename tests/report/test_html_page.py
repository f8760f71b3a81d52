"""The page builder escapes everything it is given; plots survive hostile labels; monitor rows parse."""

from __future__ import annotations

import base64
import re

import pytest
import torch

from convcoach.render import figures as plots
from convcoach.render.html import Page
from convcoach.report.sections import monitor_series

HOSTILE = '<b onmouseover="x()">&\'</b>'
ESCAPED = "&lt;b onmouseover=&quot;x()&quot;&gt;&amp;&#x27;&lt;/b&gt;"


def test_every_part_of_a_page_is_escaped():
    page = Page(HOSTILE, HOSTILE)
    section = page.section(HOSTILE, "part")
    section.heading(HOSTILE).text(HOSTILE).note(HOSTILE).pre(HOSTILE)
    section.table([HOSTILE], [[HOSTILE]])
    section.key_values({HOSTILE: HOSTILE}, columns=2)
    section.value([{HOSTILE: HOSTILE, "status": "fail"}])
    section.image(b"\x89PNG fake", HOSTILE, HOSTILE)
    html = page.render()
    assert "<b " not in html and "</b>" not in html
    assert (
        html.count(ESCAPED) == 17
    )  # <title>, h1, subtitle, nav, h2, h3, p, note, pre, 2 table cells, 2 key/value, 2 record cells, alt, caption
    data = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(data) == b"\x89PNG fake"
    assert '<tr class="fail">' in html  # the status column colours the row


def test_key_values_in_columns_fill_column_by_column():
    page = Page("t")
    page.section("s", "s").key_values({"a": 1, "b": 2, "c": 3}, columns=2)
    html = page.render()
    assert '<tr><td>a</td><td class="num">1</td><td>c</td><td class="num">3</td></tr>' in html
    assert '<tr><td>b</td><td class="num">2</td><td></td><td></td></tr>' in html


def test_section_anchors_must_be_plain():
    with pytest.raises(ValueError, match="section anchor must be"):
        Page("t").section("x", 'a" onclick="y')


def test_plots_draw_labels_with_dollar_signs_literally():
    png = plots.confusion_plot(torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), ["$x", "a$b$c", "$"])
    assert png.startswith(b"\x89PNG")
    assert plots.label("a$b") == r"a\$b"


def test_smoothing_is_a_bias_corrected_moving_average():
    assert plots.smooth([5.0, 5.0, 5.0], weight=0.9) == pytest.approx([5.0, 5.0, 5.0])
    assert plots.smooth([0.0, 10.0], weight=0.5) == pytest.approx([0.0, 5 / 0.75])


def test_monitor_rows_of_every_shape_become_one_series_per_layer():
    rows = [
        {
            "kind": "monitor",
            "monitor": "gradients",
            "step": 1,
            "layers": {"conv": {"grad_norm": 2.0}, "fc": {"grad_norm": 1.0}},
        },
        {"kind": "monitor", "monitor": "gradients", "step": 50, "layers": {"conv": {"grad_norm": 0.5}}},
        {"kind": "monitor", "step": 1, "layer": "conv", "dead": 0.25},
        {"kind": "monitor", "step": 1, "ratio": {"conv": 1e-3}},
    ]
    series = monitor_series(rows)
    assert series["gradients grad_norm"] == {"conv": ([1, 50], [2.0, 0.5]), "fc": ([1], [1.0])}
    assert series["dead"] == {"conv": ([1], [0.25])}
    assert series["ratio"] == {"conv": ([1], [1e-3])}
