"""`llmclient telemetry report --html FILE`: one self-contained page (inline CSS, SVG and JS; no URL,
nothing fetched) with a summary, the cost per local day as a bar chart, and a model x day heatmap.

Every figure is also in the markup as data attributes (`data-day`, `data-cost` as the exact decimal,
`data-calls`, ...), so the page can be checked, or scraped, without reading pixels. A cost that is
unknown (calls, none of them priced) is an empty attribute and says "unknown", never 0; a day or cell
without a call costs 0. The heatmap is coloured by calls; its selector recolours it by cost with the
inline script (a cell of unknown cost hatched). Every string from the records (model names) is escaped.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from llmclient.errors import ConfigurationError
from llmclient.telemetry import query
from llmclient.telemetry.query import Result
from llmclient.telemetry.window import Window

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.5em; margin: 0 0 .2em; } h2 { font-size: 1.15em; margin: 1.4em 0 .4em; }
.where { color: #555; margin: 0 0 1em; }
dl#summary { display: grid; grid-template-columns: max-content max-content; gap: .15em 1.2em; margin: 0; }
dl#summary dt { color: #555; } dl#summary dd { margin: 0; font-variant-numeric: tabular-nums; text-align: right; }
svg text { font: 11px system-ui, sans-serif; fill: #444; }
rect.bar { fill: #4a7bd0; } rect.bar.unpriced { fill: #e0a040; } rect.bar:hover { fill: #1d1d1f; }
table#heatmap { border-collapse: collapse; font-variant-numeric: tabular-nums; }
#heatmap th { font-weight: normal; padding: 0 .4em; white-space: nowrap; }
#heatmap th.model { text-align: left; font-family: monospace; }
#heatmap thead th { font-size: 10px; writing-mode: vertical-rl; transform: rotate(180deg); height: 6.5em; }
#heatmap td { width: 1.6em; height: 1.6em; border: 1px solid #fff; padding: 0; }
#heatmap td.none { background: #f3f3f3; }
#heatmap td.unknown { background: repeating-linear-gradient(45deg, #f3f3f3 0 3px, #e0a040 3px 4px); }
#readout { min-height: 1.4em; font-family: monospace; }
.note { color: #555; font-size: 12px; }
"""

# Recolours the heatmap by calls or cost, and shows the cell under the pointer.
_JS = """
(function () {
  var cells = Array.prototype.slice.call(document.querySelectorAll("#heatmap td.cell"));
  function paint(by) {
    var most = 0;
    cells.forEach(function (td) { most = Math.max(most, parseFloat(td.dataset[by] || "0")); });
    cells.forEach(function (td) {
      var value = parseFloat(td.dataset[by] || "0");
      var unknown = td.dataset[by] === "";  // calls, none priced: not $0
      td.classList.toggle("unknown", unknown);
      td.classList.toggle("none", !unknown && !(value > 0));
      td.style.backgroundColor = value > 0 ? "rgba(208, 64, 32, " + (0.12 + 0.88 * value / most).toFixed(3) + ")" : "";
    });
    document.getElementById("heatmap").dataset.colour = by;
  }
  document.getElementById("colour-by").addEventListener("change", function (event) { paint(event.target.value); });
  document.getElementById("heatmap").addEventListener("mouseover", function (event) {
    var td = event.target.closest("td.cell");
    if (td) {
      document.getElementById("readout").textContent = td.dataset.model + " on " + td.dataset.day + ": " +
        td.dataset.calls + " calls, " + (td.dataset.cost === "" ? "cost unknown" : "$" + td.dataset.cost) +
        (td.dataset.unpriced !== "0" ? ", " + td.dataset.unpriced + " unpriced" : "");
    }
  });
})();
"""


def figures(directory: Path, span: Window) -> Result:
    """The page's figures in one pass over the store: totals, every local day, every model, and each
    model x day cell."""
    result = query.grouped(directory, span, {"by_day": ("day",), "by_model": ("model",), "cells": ("model", "day")},
                           query.SUMS)
    if result.records:
        data = result.data
        data["by_day"] = query.every_day(span, data["by_day"], query.NO_CALLS)
        data["by_model"].sort(key=query.calls_order("model"))
        data["cells"].sort(key=lambda row: (row["model"], row["day"]))
    return result


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _exact(value: Decimal | None, calls: int) -> str:
    """A cost as a data attribute: the exact decimal; "" when unknown (calls, none of them priced), 0
    without any call."""
    if value is None:
        return "" if calls else "0"
    return format(value.normalize(), "f")


def _dollars(value: Decimal | None) -> str:
    return "unknown" if value is None else f"${value.normalize():,f}"


def _cost_of(value: Decimal | None) -> str:
    return "unknown cost" if value is None else _dollars(value)


def _worth(calls: int, cost: Decimal | None, unpriced: int) -> str:
    if not calls:
        return "no calls"
    return f"{_cost_of(cost)} over {calls:,} calls" + (f", {unpriced:,} without a known price" if unpriced else "")


def _summary(result: Result) -> str:
    totals = result.data["totals"]
    items = [("calls", "calls", f"{totals['calls']:,}"), ("failed", "failed", f"{totals['failed']:,}"),
             ("tokens", "total_tokens", f"{totals['total_tokens']:,}"),
             ("cost", "cost_usd", _dollars(totals["cost_usd"])), ("priced calls", "priced", f"{totals['priced']:,}"),
             ("unpriced calls", "unpriced", f"{totals['unpriced']:,}"),
             ("skipped lines", "skipped", f"{result.skipped:,}")]
    raw = {**totals, "skipped": result.skipped, "cost_usd": _exact(totals["cost_usd"], totals["calls"])}
    return "\n".join(f'<dt>{label}</dt><dd data-key="{key}" data-value="{_esc(raw[key])}">{_esc(shown)}</dd>'
                     for label, key, shown in items)


def _trend(days: Sequence[dict[str, Any]]) -> str:
    """A bar per day, its height the day's cost; a day with unpriced calls has an orange cap."""
    width, height, left, bottom, top = max(640, 22 * len(days) + 40), 250, 30, 40, 24
    step = (width - left - 10) / max(len(days), 1)
    most = max((day["cost_usd"] or Decimal(0) for day in days), default=Decimal(0))
    plot = height - bottom - top  # the tallest bar's height
    scale = plot / float(most) if most > 0 else 0.0
    parts = [f'<svg id="cost-trend" role="img" aria-label="cost per day" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" data-plot-height="{plot}">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#999"/>',
             f'<line x1="{left}" y1="{top}" x2="{width - 10}" y2="{top}" stroke="#ccc" stroke-dasharray="4 3"/>',
             f'<text x="{left}" y="{top - 6}">most in a day: {_esc(_dollars(most))}</text>',
             f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">$0</text>']
    for number, day in enumerate(days):
        cost = day["cost_usd"]
        bar = float(cost or 0) * scale
        x = left + number * step + 1
        label = f"{day['day']}: {_worth(day['calls'], cost, day['unpriced'])}"
        parts.append(f'<rect class="bar" data-day="{day["day"]}" data-cost="{_exact(cost, day["calls"])}" '
                     f'data-calls="{day["calls"]}" data-unpriced="{day["unpriced"]}" x="{x:.1f}" '
                     f'y="{height - bottom - bar:.1f}" width="{max(step - 2, 1):.1f}" height="{bar:.1f}">'
                     f'<title>{_esc(label)}</title></rect>')
        if day["unpriced"]:
            parts.append(f'<rect class="bar unpriced" x="{x:.1f}" y="{height - bottom - bar - 3:.1f}" '
                         f'width="{max(step - 2, 1):.1f}" height="3"/>')
        if number % max(1, len(days) // 10) == 0 or number == len(days) - 1:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle">'
                         f'{day["day"]:%m-%d}</text>')
    return "\n".join([*parts, "</svg>"])


def _heatmap(result: Result) -> str:
    days = [day["day"] for day in result.data["by_day"]]
    cells = {(cell["model"], cell["day"]): cell for cell in result.data["cells"]}
    most = max((cell["calls"] for cell in cells.values()), default=1)
    rows = ['<thead><tr><th></th>' + "".join(f'<th scope="col">{day}</th>' for day in days) + "</tr></thead><tbody>"]
    for model in (row["model"] for row in result.data["by_model"]):
        row = [f'<tr data-model="{_esc(model)}"><th class="model" scope="row">{_esc(model)}</th>']
        for day in days:
            cell = cells.get((model, day), {"calls": 0, "cost_usd": None, "unpriced": 0})
            calls = cell["calls"]
            colour = (f' style="background-color: rgba(208, 64, 32, {0.12 + 0.88 * calls / most:.3f})"'
                      if calls else "")
            title = f"{model} on {day}: {_worth(calls, cell['cost_usd'], cell['unpriced'])}"
            row.append(f'<td class="cell{"" if calls else " none"}" data-model="{_esc(model)}" data-day="{day}" '
                       f'data-calls="{calls}" data-cost="{_exact(cell["cost_usd"], calls)}" '
                       f'data-unpriced="{cell["unpriced"]}"{colour} title="{_esc(title)}"></td>')
        rows.append("".join(row) + "</tr>")
    return '<table id="heatmap" data-colour="calls">' + "\n".join(rows) + "</tbody></table>"


def render(result: Result) -> str:
    """The page for `figures`' result (with records)."""
    span = result.window
    period = f"{span.label}: {span.first} .. {span.last} (local days)" if span.first else span.label
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>LLM telemetry report</title>
<style>{_CSS}</style>
</head>
<body>
<h1>LLM telemetry report</h1>
<p class="where">{_esc(result.directory)}, {_esc(period)}</p>
<dl id="summary">
{_summary(result)}
</dl>
<h2>Cost per day</h2>
{_trend(result.data["by_day"])}
<p class="note">Bars are the exact sum of the priced calls; an orange cap marks a day with unpriced calls
(their cost is unknown, not $0).</p>
<h2>Calls per model and day</h2>
<p><label>colour by <select id="colour-by"><option value="calls">calls</option>
<option value="cost">cost</option></select></label></p>
{_heatmap(result)}
<p id="readout"></p>
<script>{_JS}</script>
</body>
</html>
"""


def write(path: Path, result: Result) -> None:
    """The page, whole or not at all."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(render(result), encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {path}: {exc}") from exc
