"""Drawing a figure in a test, and the layout rules every figure follows."""

from __future__ import annotations

import re


def draw(kind, paths):
    """Figure ``kind`` drawn from ``paths``: ``(plt, fig, visible texts)``; close ``fig`` after."""
    from matplotlib.text import Text

    from linflow import plots

    plt, sns = plots._setup()
    fig = plots.build(kind, paths, plt, sns)
    fig.canvas.draw()
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return plt, fig, texts


def assert_one_column_panels_and_legible_text(fig, texts) -> None:
    """Panels of about one printed column (<= 3.5 in wide each) and no text under 7 pt."""
    panels = [ax for ax in fig.axes if ax.get_visible()]
    columns = len({round(ax.get_position().x0, 2) for ax in panels})
    assert fig.get_figwidth() / columns <= 3.5, f"{fig.get_figwidth()} in for {columns} panels"
    small = sorted({(t.get_fontsize(), t.get_text()[:30]) for t in texts if t.get_fontsize() < 7})
    assert not small, small
    assert_figure_conventions(fig, texts)


def assert_figure_conventions(fig, texts) -> None:
    """Every panel has a title and names the quantity on both axes; several panels are
    lettered; numbers are written as people read them (10^6, not 1000000)."""
    panels = [ax for ax in fig.axes if ax.get_visible()]
    for ax in panels:
        assert ax.get_title().strip(), f"a panel without a title: {ax.get_xlabel()!r} / {ax.get_ylabel()!r}"
        assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), f"{ax.get_title()!r}: an axis without a name"
    if len(panels) > 1:
        assert [ax.get_title()[:3] for ax in panels] == [f"({c})" for c in "abcdefghij"[:len(panels)]]
    long_numbers = [t.get_text() for t in texts if re.search(r"(?<![\d.])\d{5,}(?![\d.])", t.get_text())]
    assert not long_numbers, long_numbers


def assert_no_interval_from_one_seed(texts) -> None:
    """A mean over one seed has no confidence interval: no text says so."""
    bad = [t.get_text() for t in texts if "one seed" in t.get_text() and "CI" in t.get_text()]
    assert not bad, bad


def legend_styles(fig) -> dict:
    """{legend label: (colour as RGB, marker)} of every labelled series of ``fig`` (an error-bar
    series by its data line), from its axes and, for proxies made only for a legend, its legends."""
    from matplotlib.colors import to_rgb

    pairs = [pair for ax in fig.axes for pair in zip(*ax.get_legend_handles_labels())]
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    pairs += [(handle, text.get_text()) for legend in legends for handle, text in zip(legend.legend_handles,
                                                                                      legend.get_texts())]
    styles = {}
    for handle, label in pairs:
        line = handle.lines[0] if hasattr(handle, "lines") else handle  # ErrorbarContainer: its data line
        if label not in styles and hasattr(line, "get_color") and hasattr(line, "get_marker"):
            styles[label] = (tuple(round(c, 3) for c in to_rgb(line.get_color())), line.get_marker())
    return styles
