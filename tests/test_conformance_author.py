"""The authoring aid (llmclient/conformance/author.py) reproduces the request half of every cassette:
what llmclient sends today, byte for byte (replay compares bodies as JSON; this also holds their
spelling), the headers kept, and both requests of a retried call. A difference means the
encoding changed: if that was intended, refresh the cassette with
`python -m llmclient.conformance.author PROVIDER SCENARIO --write`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from llmclient.conformance.author import captured_requests
from llmclient.conformance.scenarios import SCENARIOS
from llmclient.conformance.targets import load_suite

FIELDS = ("method", "uri", "headers", "body")
SUITE = load_suite(Path(__file__).resolve().parent.parent / "llmclient.toml")


def stored_requests(provider: str, scenario: str) -> list[dict[str, Any]]:
    interactions = yaml.safe_load(SUITE.cassette(provider, scenario).read_text())["interactions"]
    return [{field: interaction["request"][field] for field in FIELDS} for interaction in interactions]


def first_difference(stored: list[dict[str, Any]], sent: list[dict[str, Any]]) -> str:
    for index, (was, now) in enumerate(zip(stored, sent)):
        for field in FIELDS:
            if was[field] != now[field]:
                return f"request {index + 1}, {field}: stored {was[field]!r}, sent {now[field]!r}"
    return "the extra requests differ"


@pytest.mark.parametrize("provider", [target.provider for target in SUITE.targets])
def test_every_cassette_holds_exactly_the_requests_llmclient_sends(provider: str) -> None:
    checked, differing = 0, []
    for scenario in SCENARIOS:
        cassette = SUITE.cassette(provider, scenario.name)
        if scenario.interactions == 0 or not cassette.is_file():
            continue  # refused before any request, or a capability the provider lacks
        stored = stored_requests(provider, scenario.name)
        sent = [{field: request[field] for field in FIELDS}
                for request in captured_requests(SUITE.target(provider), scenario, cassette)]
        checked += 1
        if sent != stored:
            differing.append(f"{scenario.name}: {len(stored)} request(s) stored, {len(sent)} sent; "
                             f"{first_difference(stored, sent)}")
    assert checked >= 20, f"only {checked} cassettes found for {provider}"
    assert not differing, "\n".join(differing)
