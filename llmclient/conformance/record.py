"""Recording cassettes honestly, and generating the fault ones.

`record_cell` runs a scenario against the real provider through the scrubbing pipeline into a
scratch file, and only then decides: a recording whose statuses contradict the scenario (a 200
for `error_auth`, a 401 for `text`), with the wrong number of requests, or with nothing recorded
(no network, a refused key) is refused and never written; an accepted one replaces the cassette.
Each result says what was recorded: statuses, bytes, and what was scrubbed.

Server faults cannot be provoked on demand. `faults.generate` builds their cassettes from the
wire format's own fault bodies (`llmclient.wire.<format>.error_body`) around the provider's own
recorded `text` and `stream_text` answers, so a new provider speaking a known wire needs no
hand-written fault cassette. An existing (e.g. hand-authored) fault cassette is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from llmclient import LLMError
from llmclient.cassettes import REDACTED, holds_key_in_use, scan_secrets, use_cassette
from llmclient.conformance import faults
from llmclient.conformance.runner import call, unsupported
from llmclient.conformance.scenarios import Scenario
from llmclient.conformance.targets import Suite, Target, registered
from llmclient.errors import ConfigurationError

Result = Literal["recorded", "generated", "kept", "refused", "failed", "skipped"]
# The statuses a recording of each error scenario may hold; every other scenario wants 2xx only.
ERROR_STATUSES = {
    "error_auth": {401, 403},
    "error_not_found": {400, 404},  # some providers answer an unknown model with a 400
    "error_bad_request": {400, 422},
    "error_context_window": {400, 413, 422},
}


@dataclass
class Recording:
    provider: str
    scenario: str
    result: Result
    detail: str = ""
    statuses: list[int] = field(default_factory=list)
    bytes: int = 0
    scrubbed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result not in ("refused", "failed")

    def __str__(self) -> str:
        facts = []
        if self.statuses:
            facts.append("status " + ", ".join(map(str, self.statuses)))
        if self.bytes:
            facts.append(f"{self.bytes:,} bytes")
        if self.result in ("recorded", "generated"):
            facts.append("scrubbed: " + (", ".join(self.scrubbed) or "nothing"))
        shown = f"{self.result:<9} {self.provider}/{self.scenario}"
        return shown + (f"  ({'; '.join(facts)})" if facts else "") + (f"  {self.detail}" if self.detail else "")


def record(suite: Suite, targets: list[Target], scenarios: list[Scenario]) -> list[Recording]:
    """Every chosen cell recorded (or generated), recordable scenarios first: faults need the
    provider's `text` and `stream_text` cassettes."""
    ordered = sorted(scenarios, key=lambda s: not s.recordable)
    return [record_cell(suite, target, scenario) for target in targets for scenario in ordered]


def record_cell(suite: Suite, target: Target, scenario: Scenario) -> Recording:
    recording = Recording(target.provider, scenario.name, "skipped")
    reason = unsupported(target, scenario)
    if reason or scenario.interactions == 0:
        recording.detail = reason or "sends no request (refused before the network)"
        return recording
    cassette = suite.cassette(target.provider, scenario.name)
    if not scenario.recordable:
        return _generated(suite, target, scenario, cassette, recording)
    scratch = cassette.with_name(cassette.stem + ".recording.yaml")
    scratch.unlink(missing_ok=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    error: LLMError | None = None
    try:
        with registered([target]), use_cassette(scratch, mode="record"):
            try:
                observed = call(target, scenario)
                error = observed.error
            except LLMError as raised:
                error = raised
        problem = _contradiction(scenario, scratch, recording)
    except ConfigurationError as exc:
        problem = str(exc)
    except BaseException:
        scratch.unlink(missing_ok=True)  # never a half-checked recording left behind
        raise
    if problem is not None:
        scratch.unlink(missing_ok=True)
        recording.result = "refused" if problem.startswith("refused") else "failed"
        recording.detail = problem + (f" ({type(error).__name__}: {error})" if error is not None else "")
        return recording
    scratch.replace(cassette)
    recording.result = "recorded"
    recording.bytes = cassette.stat().st_size
    recording.scrubbed = scrubbed(cassette)
    return recording


def _contradiction(scenario: Scenario, scratch: Path, recording: Recording) -> str | None:
    """Why the scratch recording must not become the cassette, or None."""
    if not scratch.is_file():
        return "nothing was recorded: no request reached the provider; nothing written"
    text = scratch.read_text()
    leaks = [str(finding) for finding in scan_secrets(scratch)] + (["the key in use"] if holds_key_in_use(text) else [])
    if leaks:  # the scrubbing missed something: never written, whatever else is right
        return f"refused: the recording still holds a secret ({'; '.join(leaks)[:300]}); nothing written"
    interactions = yaml.safe_load(text).get("interactions") or []
    posts = [i for i in interactions if i["request"]["method"] == "POST"]
    recording.statuses = [int(i["response"]["status"]["code"]) for i in posts]
    wanted = ERROR_STATUSES.get(scenario.name)
    wrong = [code for code in recording.statuses if (code not in wanted if wanted else not 200 <= code < 300)]
    if wrong:
        expectation = "/".join(map(str, sorted(wanted))) if wanted else "2xx"
        return f"refused: {scenario.name} needs {expectation}, the provider answered {wrong[0]}; nothing written"
    if len(posts) != scenario.interactions:
        return f"refused: {scenario.name} makes {scenario.interactions} call(s), {len(posts)} were recorded; nothing written"
    return None


def _generated(suite: Suite, target: Target, scenario: Scenario, cassette: Path, recording: Recording) -> Recording:
    if cassette.is_file():
        recording.result, recording.detail = "kept", f"{cassette} exists (authored or generated before)"
        return recording
    try:
        faults.generate(suite, target, scenario, cassette)
    except ConfigurationError as exc:
        recording.result, recording.detail = "failed", str(exc)
        return recording
    recording.result, recording.bytes = "generated", cassette.stat().st_size
    recording.detail = f"from llmclient.wire's {target.spec.wire} fault bodies"
    recording.scrubbed = scrubbed(cassette)
    recording.statuses = [int(i["response"]["status"]["code"]) for i in yaml.safe_load(cassette.read_text())["interactions"]]
    return recording


_KEY_LIKE = re.compile(r"^\s*-?\s*['\"]?([A-Za-z0-9-]+)['\"]?:\s*\n?\s*-\s*" + REDACTED, re.MULTILINE)


def scrubbed(cassette: Path) -> list[str]:
    """What the scrubbing replaced in a written cassette: header names, and how many other places."""
    text = cassette.read_text()
    headers = sorted({match.group(1).lower() for match in _KEY_LIKE.finditer(text)})
    others = text.count(REDACTED) - len(_KEY_LIKE.findall(text))
    return [f"{name} header" for name in headers] + ([f"{others} value(s) in URLs or bodies"] if others > 0 else [])
