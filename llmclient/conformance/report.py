"""The provider x scenario matrix: printed, and written as JSON and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmclient.conformance.html_report import render_html
from llmclient.conformance.runner import MARK, Cell



def summary(cells: Sequence[Cell], seconds: float, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    counts = {outcome: sum(cell.outcome == outcome for cell in cells) for outcome in MARK}
    return {
        "results": [cell.as_dict() for cell in cells],
        "counts": counts,
        "seconds": round(seconds, 4),
        "timing": timing or {},
    }


def _grid(cells: Sequence[Cell]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    providers = list(dict.fromkeys(cell.provider for cell in cells))
    scenarios = list(dict.fromkeys(cell.scenario for cell in cells))
    return providers, scenarios, {(cell.provider, cell.scenario): cell for cell in cells}


def render_text(cells: Sequence[Cell], seconds: float) -> str:
    providers, scenarios, grid = _grid(cells)
    width = max(len(s) for s in [*scenarios, "scenario"]) + 2
    columns = [max(len(p), 11) + 1 for p in providers]
    lines = ["scenario".ljust(width) + "".join(p.ljust(c) for p, c in zip(providers, columns))]
    for scenario in scenarios:
        lines.append(scenario.ljust(width) + "".join(
            MARK[grid[(p, scenario)].outcome].ljust(c) if (p, scenario) in grid else "-".ljust(c)
            for p, c in zip(providers, columns)))
    failures = [cell for cell in cells if cell.outcome == "fail"]
    counts = {outcome: sum(cell.outcome == outcome for cell in cells) for outcome in MARK}
    lines.append(f"\n{counts['pass']} pass, {counts['fail']} FAIL, {counts['unsupported']} unsupported, "
                 f"{counts['known']} known FAIL ({len(cells)} cells) in {seconds:.1f} s")
    lines += [f"FAIL {cell.provider}/{cell.scenario}: {cell.detail}" for cell in failures]
    lines += [f"known FAIL {cell.provider}/{cell.scenario}: {cell.detail}" for cell in cells if cell.outcome == "known"]
    return "\n".join(lines)


def render_markdown(cells: Sequence[Cell], seconds: float) -> str:
    providers, scenarios, grid = _grid(cells)
    lines = ["# Conformance matrix", "", "| scenario | " + " | ".join(providers) + " |",
             "|---|" + "---|" * len(providers)]
    for scenario in scenarios:
        marks = [MARK[grid[(p, scenario)].outcome] if (p, scenario) in grid else "-" for p in providers]
        lines.append(f"| {scenario} | " + " | ".join(marks) + " |")
    failures = [cell for cell in cells if cell.outcome == "fail"]
    lines += ["", f"{len(cells)} cells in {seconds:.1f} s."]
    if failures:
        lines += ["", "## Failures", ""] + [f"- `{c.provider}/{c.scenario}`: {c.detail}" for c in failures]
    known = [cell for cell in cells if cell.outcome == "known"]
    if known:
        lines += ["", "## Known failures", ""] + [f"- `{c.provider}/{c.scenario}`: {c.detail}" for c in known]
    return "\n".join(lines) + "\n"


def write(directory: Path, cells: Sequence[Cell], seconds: float, timing: dict[str, Any] | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "conformance-report.json"
    md_path = directory / "conformance-report.md"
    html_path = directory / "conformance-report.html"
    json_path.write_text(json.dumps(summary(cells, seconds, timing), indent=2) + "\n")
    md_path.write_text(render_markdown(cells, seconds))
    html_path.write_text(render_html(cells, seconds, timing), encoding="utf-8")
    return [json_path, md_path, html_path]
