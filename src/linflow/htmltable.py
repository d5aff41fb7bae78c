"""A CSV table as one self-contained HTML page: sortable columns, readable numbers, the
column descriptions as header tooltips and in a list below, and the CSV itself as a download.

Snakemake's report shows HTML results in a frame but offers CSV files only as downloads, so
the aggregation writes each table it writes as CSV also as such a page (``snakemake --report``
then shows the tables). Standard library and pandas only; no network resources.
"""

from __future__ import annotations

import base64
import html
import math
import os
from pathlib import Path

import pandas as pd

_STYLE = """
body { font: 13px/1.4 system-ui, sans-serif; margin: 0.8em; color: #1a1a1a; background: #fff; }
h1 { font-size: 15px; margin: 0 0 0.3em; } p { margin: 0.2em 0 0.6em; max-width: 60em; }
.wrap { overflow: auto; max-height: 75vh; border: 1px solid #ccc; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e5e5e5; white-space: nowrap; text-align: right; }
th { position: sticky; top: 0; background: #f2f2f2; cursor: pointer; user-select: none; }
th:hover { background: #e0e8f0; } th.asc::after { content: " \\25B2"; } th.desc::after { content: " \\25BC"; }
td.text, th.text { text-align: left; } tr:nth-child(even) td { background: #fafafa; }
td.nan { color: #999; } dl { columns: 2; font-size: 12px; } dt { font-family: monospace; } dd { margin: 0 0 0.3em 1em; }
"""

_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.addEventListener("click", function () {
      var ascending = !th.classList.contains("asc");
      table.querySelectorAll("th").forEach(function (h) { h.classList.remove("asc", "desc"); });
      th.classList.add(ascending ? "asc" : "desc");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return ascending ? cmp : -cmp;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _cell(value) -> tuple[str, str, str]:
    """(display text, sort value, css class) of one table cell."""
    if isinstance(value, bool):
        return str(value), str(int(value)), ""
    if isinstance(value, int):
        return str(value), str(value), ""
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN", "NaN", "nan"
        if math.isinf(value):
            return ("∞" if value > 0 else "−∞"), repr(value), ""
        return f"{value:.4g}", repr(value), ""
    return str(value), str(value), "text"


def render(frame: pd.DataFrame, *, title: str, description: str = "", columns: dict | None = None,
           csv_name: str = "table.csv") -> str:
    """The HTML page of ``frame``; ``columns`` maps a column name to its description."""
    columns = columns or {}
    numeric = {name: pd.api.types.is_numeric_dtype(frame[name]) for name in frame.columns}
    head = "".join(
        f'<th class="{"" if numeric[name] else "text"}" title="{html.escape(columns.get(name, name))}">'
        f"{html.escape(str(name))}</th>" for name in frame.columns)
    rows = []
    for record in frame.itertuples(index=False, name=None):
        cells = []
        for value in record:
            value = value.item() if hasattr(value, "item") else value
            text, sort, css = _cell(value)
            cells.append(f'<td class="{css}" data-value="{html.escape(sort)}" title="{html.escape(sort)}">'
                         f"{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    csv = base64.b64encode(frame.to_csv(index=False).encode()).decode()
    described = "".join(f"<dt>{html.escape(str(name))}</dt><dd>{html.escape(columns[name])}</dd>"
                        for name in frame.columns if name in columns)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(description)} {len(frame)} rows; click a column "
        f"header to sort, hover a header for its meaning, a cell for its full value. "
        f'<a download="{html.escape(csv_name)}" href="data:text/csv;base64,{csv}">Download {html.escape(csv_name)}</a>'
        f'</p><div class="wrap"><table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
        + (f"<h2 style=\"font-size:13px\">Columns</h2><dl>{described}</dl>" if described else "")
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )


def write(frame: pd.DataFrame, path, **kwargs) -> None:
    """:func:`render` ``frame`` into ``path`` (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(frame, **kwargs), encoding="utf-8")
    os.replace(tmp, path)
