"""The provider x scenario matrix as one self-contained HTML page (inline CSS and JS, no URLs).

Each cell links to its detail section (shown with CSS `:target`, so it works without scripts):
outcome, seconds, every problem (an "expected X, got Y" line with both halves highlighted), and
the request, response and fixture projections as JSON. Every piece of cell data is escaped, and
a string longer than `LIMIT` characters is cut in the JSON shown, saying how much was cut.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from llmclient.conformance.runner import MARK, Cell, clipped

LIMIT = 2000  # characters of one string shown in the JSON; the rest is cut with a note
_DIFF = re.compile(r"^(?P<head>.*?)expected (?P<want>.*), got (?P<got>.*)$", re.DOTALL)

_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.5em; margin: 0 0 .3em; }
.counts span { display: inline-block; margin-right: 1em; padding: 0 .4em; border-radius: 3px; }
table.matrix { border-collapse: collapse; margin: 1em 0; }
.matrix th, .matrix td { border: 1px solid #bbb; padding: 0; text-align: center; }
.matrix th { background: #f3f3f3; padding: .3em .6em; }
.matrix th.scenario { text-align: left; font-weight: normal; font-family: monospace; }
.matrix td a { display: block; padding: .3em .8em; color: inherit; text-decoration: none; }
.matrix td a:hover, .matrix td.selected a { outline: 2px solid #1d1d1f; outline-offset: -2px; }
.o-pass { background: #a8e0b4; } .o-fail { background: #f08c8c; font-weight: bold; }
.o-unsupported { background: #d6d6d6; color: #555; } .o-known { background: #ffcf66; }
.o-missing { background: #fff; color: #999; }
.detail { display: none; border: 1px solid #999; border-radius: 6px; padding: .5em 1em 1em;
          margin: 1em 0; }
.detail:target { display: block; }
.detail h2 { font-size: 1.15em; font-family: monospace; }
.detail .outcome { padding: .1em .5em; border-radius: 4px; }
ul.problems li { font-family: monospace; margin: .2em 0; white-space: pre-wrap; }
li.diff { background: #fff4f4; }
.want { background: #c9f2d0; } .got { background: #ffc4c4; font-weight: bold; }
.want, .got { padding: 0 .2em; border-radius: 3px; }
pre { background: #f7f7f7; border: 1px solid #ddd; padding: .5em; overflow: auto;
      max-height: 30em; white-space: pre-wrap; word-break: break-all; }
.close { float: right; }
"""

_JS = """
(function () {
  function select() {
    document.querySelectorAll("td.selected").forEach(function (td) { td.classList.remove("selected"); });
    if (!location.hash) { return; }
    var link = document.querySelector('td a[href="' + location.hash + '"]');
    if (link) { link.parentElement.classList.add("selected"); }
  }
  window.addEventListener("hashchange", select);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { location.hash = ""; }
  });
  select();
})();
"""


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _json(value: Any) -> str:
    text = json.dumps(clipped(value, LIMIT), indent=2, ensure_ascii=False, default=str)
    return f"<pre>{_esc(text)}</pre>"


def _problem(line: str) -> str:
    match = _DIFF.match(line)
    if match is None:
        return f"<li>{_esc(line)}</li>"
    return (f'<li class="diff">{_esc(match["head"])}expected <span class="want">{_esc(match["want"])}</span>, '
            f'got <span class="got">{_esc(match["got"])}</span></li>')


def _projections(title: str, items: Sequence[dict[str, Any]]) -> list[str]:
    if not items:
        return [f"<h3>{title}</h3>", "<p>none</p>"]
    parts = [f"<h3>{title} ({len(items)})</h3>"]
    for number, item in enumerate(items, 1):
        parts += [f"<h4>{title[:-1]} {number}</h4>" if len(items) > 1 else "", _json(item)]
    return parts


def _detail(cell: Cell, anchor: str) -> str:
    name = f"{cell.provider}/{cell.scenario}"
    parts = [f'<section class="detail" id="{anchor}" data-detail="{_esc(name)}" data-outcome="{_esc(cell.outcome)}">',
             '<a class="close" href="#">close ✕</a>',
             f"<h2>{_esc(name)}</h2>",
             f'<p>outcome <span class="outcome o-{_esc(cell.outcome)}">{_esc(MARK.get(cell.outcome, cell.outcome))}'
             f"</span> in {cell.seconds:.3f} s</p>"]
    if cell.detail and cell.detail != "; ".join(cell.problems):
        parts.append(f'<p class="why">{_esc(cell.detail)}</p>')
    parts.append(f"<h3>problems ({len(cell.problems)})</h3>")
    if cell.problems:
        parts += ['<ul class="problems">', *(_problem(line) for line in cell.problems), "</ul>"]
    else:
        parts.append("<p>none</p>")
    parts += _projections("requests", cell.requests)
    parts += _projections("responses", cell.responses)
    parts += ["<h3>expected (fixture)</h3>", _json(cell.expected) if cell.expected is not None else "<p>none</p>"]
    return "\n".join([*parts, "</section>"])


def render_html(cells: Sequence[Cell], seconds: float, timing: dict[str, Any] | None = None) -> str:
    providers = list(dict.fromkeys(cell.provider for cell in cells))
    scenarios = list(dict.fromkeys(cell.scenario for cell in cells))
    anchors = {(cell.provider, cell.scenario): (f"d{index}", cell) for index, cell in enumerate(cells)}
    counts = {outcome: sum(cell.outcome == outcome for cell in cells) for outcome in MARK}

    rows = ["<tr><th>scenario</th>" + "".join(f'<th scope="col">{_esc(p)}</th>' for p in providers) + "</tr>"]
    for scenario in scenarios:
        row = [f'<tr><th class="scenario" scope="row">{_esc(scenario)}</th>']
        for provider in providers:
            found = anchors.get((provider, scenario))
            if found is None:
                row.append('<td class="o-missing" data-outcome="missing">-</td>')
                continue
            anchor, cell = found
            row.append(f'<td class="o-{_esc(cell.outcome)}" data-cell="{_esc(f"{provider}/{scenario}")}" '
                       f'data-outcome="{_esc(cell.outcome)}"><a href="#{anchor}">'
                       f"{_esc(MARK.get(cell.outcome, cell.outcome))}</a></td>")
        rows.append("".join(row) + "</tr>")

    count_line = "".join(f'<span class="o-{outcome}" data-count="{outcome}">{counts[outcome]} {MARK[outcome]}</span>'
                         for outcome in MARK)
    count_line += f'<span data-count="cells">{len(cells)} cells</span><span data-count="seconds">{seconds:.1f} s</span>'
    timing_html = ""
    if timing:
        timing_html = ('<p class="timing">' + ", ".join(f"{_esc(key)}: {_esc(value)}" for key, value in timing.items())
                       + "</p>")
    details = "\n".join(_detail(cell, anchor) for anchor, cell in anchors.values())
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conformance matrix</title>
<style>{_CSS}</style>
</head>
<body>
<h1>Conformance matrix</h1>
<p class="counts" id="counts">{count_line}</p>
{timing_html}
<p>Rows are scenarios, columns providers; click a cell for its detail (Esc closes it).</p>
<table class="matrix" id="matrix">
{chr(10).join(rows)}
</table>
<div id="details">
{details}
</div>
<script>{_JS}</script>
</body>
</html>
"""
