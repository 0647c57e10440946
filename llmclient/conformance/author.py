"""Authoring aid for hand-written cassettes: the request half comes from the client itself.

Write a cassette's responses by hand (from the reference traffic and the provider's API
reference), then run

    python -m llmclient.conformance.author PROVIDER SCENARIO [--write]

It replays the scenario matching only method, host and path, in order, and prints every request
exactly as llmclient sends it (URI, headers that matter, body). `--write` puts those requests into
the cassette, keeping its comment header and its responses, so the request bodies are the real
ones and the body matcher checks them from then on. Long bodies are stored as their digest.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from llmclient.conformance.scenarios import BY_NAME
from llmclient.conformance.targets import registered, targets
from llmclient.conformance.runner import cassette_path
from llmclient import Client, LLMError
from llmclient.cassettes import ELIDE_OVER, REDACTED, SECRET_HEADERS, _replay_scope, elided_body

KEPT_HEADERS = ("content-type", "anthropic-version", "host")


def captured_requests(provider: str, scenario_name: str) -> list[dict[str, Any]]:
    import vcr

    target = next(t for t in targets() if t.provider == provider)
    scenario = BY_NAME[scenario_name]
    seen: list[dict[str, Any]] = []
    recorder = vcr.VCR(record_mode="none", match_on=["method", "host", "path"])
    with registered([target]), _replay_scope(True), \
            recorder.use_cassette(str(cassette_path(provider, scenario_name))) as cassette:
        play_response = cassette.play_response

        def play(request: Any) -> Any:  # once per request served, so a retry's twin requests stay two
            seen.append(request_entry(request))
            return play_response(request)

        cassette.play_response = play
        model = f"{provider}/{target.model_for(scenario.requires, scenario.model)}"
        try:
            with Client(model, api_key=scenario.api_key, retry=scenario.retry) as client:
                scenario.call(client)
        except LLMError as error:
            print(f"(the scenario raised {type(error).__name__}: {error})", file=sys.stderr)
    return seen


def request_entry(request: Any) -> dict[str, Any]:
    """A vcrpy request as a cassette stores it: the headers that matter (secrets redacted), the
    body (a digest when long), method and URI."""
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else bytes(body)
    text = elided_body(body) if len(body) > ELIDE_OVER else body.decode("utf-8")
    headers = {name.lower(): [str(value)] for name, value in request.headers.items() if name.lower() in KEPT_HEADERS}
    headers.update({name.lower(): [REDACTED] for name in request.headers if name.lower() in SECRET_HEADERS})
    return {"body": text, "headers": dict(sorted(headers.items())), "method": request.method, "uri": request.uri}


def write_requests(path: Path, requests: list[dict[str, Any]]) -> None:
    text = path.read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    data = yaml.safe_load(text)
    interactions = data["interactions"]
    if len(requests) != len(interactions):
        raise SystemExit(f"{path}: {len(interactions)} interaction(s) but the scenario sent {len(requests)} request(s)")
    for interaction, request in zip(interactions, requests):
        interaction["request"] = request
    path.write_text(header + yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=100_000))


class _BlockDumper(yaml.SafeDumper):
    pass


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # SSE bodies stay readable, as in recorded cassettes
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _string)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("provider")
    parser.add_argument("scenario", choices=sorted(BY_NAME))
    parser.add_argument("--write", action="store_true", help="put the requests into the cassette")
    args = parser.parse_args()
    requests = captured_requests(args.provider, args.scenario)
    print(json.dumps(requests, indent=1, ensure_ascii=False)[:20_000])
    if args.write:
        write_requests(cassette_path(args.provider, args.scenario), requests)
        print(f"wrote {len(requests)} request(s) into {cassette_path(args.provider, args.scenario)}")


if __name__ == "__main__":
    main()
