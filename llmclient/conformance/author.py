"""Authoring aid for hand-written cassettes: the request half comes from the client itself.

Write a cassette's responses by hand (from real recordings and the provider's API reference), then
run

    python -m llmclient.conformance.author PROVIDER SCENARIO [--write] [--config llmclient.toml]

It replays the scenario matching only method, host, path and query, in order, and prints every
request exactly as llmclient sends it (URI, headers that matter, body). `--write` puts those
requests into the cassette, keeping its comment header and its responses, so the request bodies
are the real ones and replay's body matching checks them from then on. Long bodies are stored as
their digest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from llmclient import LLMError
from llmclient.cassette_match import ELIDE_OVER, elided_body
from llmclient.cassettes import REDACTED, SentRequest, use_cassette
from llmclient.conformance.runner import call
from llmclient.conformance.scenarios import BY_NAME, Scenario
from llmclient.conformance.targets import Target, load_suite, registered
from llmclient.errors import ConfigurationError

KEPT_HEADERS = ("content-type", "anthropic-version", "anthropic-beta", "host")


def captured_requests(target: Target, scenario: Scenario, cassette: Path) -> list[dict[str, Any]]:
    """The requests the scenario sends, replayed against `cassette` matched on its endpoints only,
    as a cassette stores them."""
    with registered([target]), use_cassette(cassette, mode="replay", match="endpoint") as session:
        try:
            call(target, scenario)
        except LLMError as error:
            print(f"(the scenario raised {type(error).__name__}: {error})", file=sys.stderr)
    return [request_entry(sent) for sent in session.sent]


def request_entry(sent: SentRequest) -> dict[str, Any]:
    """A request as a cassette stores it: the headers that matter (secrets redacted), the body (a
    digest when long), method and URI."""
    body = sent.body
    text = elided_body(body) if len(body) > ELIDE_OVER else body.decode("utf-8")
    headers = {name.lower(): [value] for name, value in sent.headers.items() if name.lower() in KEPT_HEADERS}
    # The capture already masked every secret header (by name or by the key it carried): keep its name.
    headers.update({name.lower(): [REDACTED] for name, value in sent.headers.items() if value == REDACTED})
    return {"body": text, "headers": dict(sorted(headers.items())), "method": sent.method, "uri": sent.uri}


def write_requests(path: Path, requests: list[dict[str, Any]]) -> None:
    text = path.read_text()
    header = [line for line in text.splitlines() if line.startswith("#")]
    data = yaml.safe_load(text)
    interactions = data["interactions"]
    if len(requests) != len(interactions):
        raise ConfigurationError(f"{path}: {len(interactions)} interaction(s) but the scenario sent {len(requests)} request(s)")
    for interaction, request in zip(interactions, requests):
        interaction["request"] = request
    dump_cassette(path, header, interactions)


def dump_cassette(path: Path, header: list[str], interactions: list[dict[str, Any]]) -> None:
    """A vcrpy cassette file with `#` comment lines on top; bodies with newlines as block scalars."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.dump({"interactions": interactions, "version": 1}, Dumper=_BlockDumper, sort_keys=False,
                     allow_unicode=True, width=100_000)
    path.write_text("".join(f"{line}\n" for line in header) + text)


class _BlockDumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # SSE bodies stay readable, as in recorded cassettes; "\r" (Gemini's framing) needs quoting.
    style = "|" if "\n" in value and "\r" not in value else ('"' if "\r" in value else None)
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _string)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("provider")
    parser.add_argument("scenario", choices=sorted(BY_NAME))
    parser.add_argument("--write", action="store_true", help="put the requests into the cassette")
    parser.add_argument("--config", type=Path, help="the configuration holding the matrix (default: found from here)")
    args = parser.parse_args()
    suite = load_suite(args.config)
    cassette = suite.cassette(args.provider, args.scenario)
    requests = captured_requests(suite.target(args.provider), BY_NAME[args.scenario], cassette)
    print(json.dumps(requests, indent=1, ensure_ascii=False)[:20_000])
    if args.write:
        write_requests(cassette, requests)
        print(f"wrote {len(requests)} request(s) into {cassette}")


if __name__ == "__main__":
    main()
