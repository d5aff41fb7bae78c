"""Drawing a figure in a test, and the layout rules every figure follows."""

from __future__ import annotations

from pathlib import Path


def draw(kind, paths):
    """Figure ``kind`` drawn from ``paths``: ``(plt, fig, visible texts)``; close ``fig`` after."""
    from matplotlib.text import Text

    from linflow import plots

    plt, sns = plots._setup()
    fig = plots._DRAW[kind]([Path(p) for p in paths], plt, sns)
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
