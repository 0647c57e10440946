"""`llmclient` on the command line.

    llmclient conformance [--config FILE] [--cassettes DIR] [--fixtures DIR] [--provider P ...]
                          [--scenario S ...] [--report DIR]
                                                            the provider x scenario matrix, offline
    llmclient conformance --record --provider P [--scenario S]   record real cassettes (needs P's
                                                            key), generate the fault ones
    llmclient conformance --draft-expected --provider P      draft expected values from cassettes
    llmclient replay cassettes/openai/text.yaml [--stream] [--config FILE]
                                                            replay a cassette offline and show
                                                            the response, its usage and cost
    llmclient providers                                     the provider registry
    llmclient models list [--provider P] [--supports vision,tools] [--min-context 100k]
                          [--max-input-price 1.0] [--json]  the model catalogue as a table
    llmclient models info|prices|select|recommend ...       one model; prices per 1M tokens with source
                                                            and date; ranked picks; advice for a task
                                                            (llmclient/models_cli.py)
    llmclient scan-secrets cassettes fixtures               lint files for keys (exit 1 if any)
    llmclient telemetry stats [today|week]                  the local telemetry store (llmclient[telemetry]);
    llmclient telemetry costs|models|agents|performance|patterns [--days N]
                                                            every query takes --dir DIR and --json
    llmclient telemetry export [-o FILE] [--format csv|jsonl]   the records as CSV or JSON lines
    llmclient telemetry report --html FILE                  one page: cost trend, model x day heatmap
    llmclient serve [--host H] [--port P] [--replay DIR]     an OpenAI-compatible proxy (llmclient[serve]),
                                                            or a server answering from cassettes
    llmclient costs reconcile --provider openai|anthropic [--days N] [--json]
                                                            our records beside the provider's billed
                                                            usage and cost, per day x model (admin key)
    llmclient batch submit FILE.jsonl --model M | status JOB | results JOB [--wait] [--out FILE]
                                                            batch jobs (llmclient/batches/cli.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from llmclient.cli_text import decimal_text
from llmclient.errors import ConfigurationError, LLMError
from llmclient.types import Response


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args, sys.stdout)
    except LLMError as exc:
        print(f"llmclient: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="llmclient", description="One typed API for every major LLM provider.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    conformance = commands.add_parser("conformance", help="run the provider conformance suite from cassettes")
    conformance.add_argument("--provider", action="append", default=[], help="only this provider (repeatable)")
    conformance.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    conformance.add_argument("--config", type=Path, help="the llmclient.toml (or pyproject.toml) whose [conformance] "
                             "table is the matrix and whose [providers] declare its providers (default: found from here)")
    conformance.add_argument("--cassettes", type=Path, help="the cassettes folder (default: cassettes/ beside the config)")
    conformance.add_argument("--fixtures", type=Path,
                             help="the expected-values folder (default: fixtures/conformance/ beside the config)")
    conformance.add_argument("--report", type=Path, default=Path("reports"),
                             help="where to write the JSON, Markdown and HTML report")
    action = conformance.add_mutually_exclusive_group()
    action.add_argument("--record", action="store_true",
                        help="record real cassettes through the scrubbing pipeline (needs keys), generate the fault "
                             "ones, then replay them")
    action.add_argument("--draft-expected", action="store_true",
                        help="draft expected values from the recorded bodies, marked as drafts until reviewed")
    conformance.add_argument("--overwrite", action="store_true", help="with --draft-expected: replace existing fixtures")
    conformance.set_defaults(run=_conformance)

    replay = commands.add_parser("replay", help="replay a cassette offline; print the response, usage and cost")
    replay.add_argument("cassette", type=Path)
    replay.add_argument("--model", help="provider/model (default: the cassette's folder and its first request's model)")
    replay.add_argument("--prompt", help="the prompt (default: the last user message of the first recorded request)")
    replay.add_argument("--stream", action="store_true", help="stream, printing deltas as they arrive")
    replay.add_argument("--config", type=Path, help="the configuration declaring the provider (default: found from here)")
    replay.set_defaults(run=_replay)

    from llmclient.models_cli import add_parser as add_models  # argparse only: the catalogue loads per command
    add_models(commands)

    providers = commands.add_parser("providers", help="list the provider registry")
    providers.set_defaults(run=_providers)

    scan = commands.add_parser("scan-secrets", help="lint files or folders for API keys and unredacted secret headers")
    scan.add_argument("paths", nargs="+", type=Path)
    scan.set_defaults(run=_scan)
    from llmclient.telemetry.cli import add_parser as add_telemetry  # argparse only: DuckDB loads per query
    add_telemetry(commands)
    from llmclient.billing.cli import add_parser as add_costs  # argparse only: the clients load per command
    add_costs(commands)
    from llmclient.serve.cli import add_parser as add_serve  # argparse only: FastAPI loads when a server starts
    add_serve(commands)
    from llmclient.batches.cli import add_parser as add_batch  # argparse only: the jobs load per command
    add_batch(commands)
    return parser


def _conformance(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient import conformance
    from llmclient.conformance import report
    from llmclient.telemetry import store

    if "LLM_TELEMETRY_STORAGE_ENABLED" not in os.environ:  # the suite's replays are no one's calls
        store.configure(enabled=False)

    suite = conformance.load_suite(args.config, cassettes=args.cassettes, fixtures=args.fixtures)
    if suite.config is not None:  # the cells' clients read the providers the matrix's file declares
        _use_config(suite.config)
    targets, scenarios = conformance.chosen(suite, args.provider, args.scenario)
    if (args.record or args.draft_expected) and not args.provider:
        raise ConfigurationError(f"--{'record' if args.record else 'draft-expected'} needs --provider: "
                                 f"{'recording spends real requests on that provider' if args.record else 'drafts are per provider'}")
    failed_recordings = 0
    if args.record:
        from llmclient.conformance.record import record

        recordings = record(suite, targets, scenarios)
        for recording in recordings:
            out.write(f"{recording}\n")
        failed_recordings = sum(not recording.ok for recording in recordings)
        out.write(f"{failed_recordings} recording(s) failed or refused of {len(recordings)}\n\n")
    if args.draft_expected:
        from llmclient.conformance.draft import draft_all

        results = draft_all(targets, scenarios, suite.cassettes, suite.fixtures, overwrite=args.overwrite)
        for provider, scenario, result in results:
            out.write(f"{provider}/{scenario}: {'drafted ' if isinstance(result, Path) else ''}{result}\n")
        out.write("Review every draft against its cassette and the cited price, then delete its draft keys.\n")
        return 1 if any(isinstance(result, str) and result.startswith("failed") for *_, result in results) else 0
    cells, seconds, timing = conformance.run(suite, args.provider, args.scenario)
    out.write(report.render_text(cells, seconds) + "\n")
    if timing["litellm_imported_by_builtin_providers"]:
        out.write("litellm was imported by a built-in provider's cells: their call path must not reach it\n")
    if any(cell.provider == "litellm" for cell in cells) and len({cell.provider for cell in cells}) > 1:
        out.write(f"the other columns' cells took {timing['builtin_providers_seconds']:.1f} s without importing "
                  f"litellm; its column ran alongside, in a second process\n")
    for path in report.write(args.report, cells, seconds, timing):
        out.write(f"wrote {path}\n")
    return 1 if failed_recordings or any(cell.outcome == "fail" for cell in cells) else 0


def _replay(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.cassettes import use_cassette
    from llmclient.client import Client

    if args.config is not None:  # the provider may be one this file declares
        from llmclient.config import load_config

        load_config(args.config)  # refuses a bad file here, naming it
        _use_config(args.config)
    request = _first_request(args.cassette)
    model = args.model or f"{args.cassette.parent.name}/{request.get('model', '')}"
    prompt = args.prompt or _last_user_text(request)
    if not prompt:
        raise ConfigurationError(f"cannot read a prompt from {args.cassette}: pass --prompt")
    # The prompt is rebuilt from the recording (or --prompt): match the endpoint, not every body field.
    with use_cassette(args.cassette, mode="replay", match="endpoint"), Client(model) as client:
        if args.stream:
            stream = client.stream(prompt)
            out.write("response  ")
            for event in stream:
                if event.kind == "text":
                    out.write(event.text)
                    out.flush()
            out.write("\n")
            response = stream.response
        else:
            response = client.complete(prompt)
            out.write(f"response  {response.text}\n")
    out.write(_summary(args.cassette, model, prompt, response))
    return 0


def _use_config(path: Path) -> None:
    """Make `path` this process's configuration (what every Client made from now on reads)."""
    from llmclient.config import reset_config

    os.environ["LLMCLIENT_CONFIG"] = str(path.resolve())
    reset_config()


def _summary(cassette: Path, model: str, prompt: str, response: Response) -> str:
    lines = [f"cassette  {cassette}", f"model     {model} (answered by {response.model})", f"prompt    {prompt}"]
    for call in response.tool_calls:
        lines.append(f"tool call {call.name}({json.dumps(call.arguments)})")
    lines.append(f"finish    {response.finish_reason} (provider: {response.raw_finish_reason})")
    usage = response.usage
    if usage is None:
        lines.append("usage     not reported by the provider")
    else:
        lines.append(
            f"usage     input {usage.input_tokens} (cache read {usage.cache_read_tokens}, cache write "
            f"{usage.cache_write_tokens}), output {usage.output_tokens} (reasoning {usage.reasoning_tokens}), "
            f"total {usage.total_tokens}"
        )
    cost = response.cost
    if cost is None:
        lines.append("cost      unknown (no price for this model)")
    else:
        where = "reported by the provider" if cost.source == "provider" else "price table"
        if cost.prices is not None:
            where += f": {cost.prices.source}"
        lines.append(f"cost      ${decimal_text(cost.total)} ({where})")
    return "\n".join(lines) + "\n"


def _first_request(cassette: Path) -> dict[str, Any]:
    import yaml

    if not cassette.is_file():
        raise ConfigurationError(f"no cassette at {cassette}")
    data = yaml.safe_load(cassette.read_text())
    try:
        body = data["interactions"][0]["request"]["body"]
        parsed = json.loads(body if isinstance(body, str) else body["string"])
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"{cassette} is not a vcrpy cassette with a JSON request body") from exc
    return parsed if isinstance(parsed, dict) else {}


def _last_user_text(request: dict[str, Any]) -> str:
    """The last user turn of an OpenAI- or Anthropic-shaped body (plain string or text blocks)."""
    for message in reversed(request.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
    return ""


def _providers(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.providers import REGISTRY

    for spec in REGISTRY.values():
        out.write(f"{spec.name:<12} {spec.wire:<10} {spec.api_key_env:<20} {spec.base_url}\n")
        out.write(f"{'':<12} capabilities: {', '.join(sorted(spec.capabilities))}\n")
    return 0


def _scan(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.cassettes import scan_secrets

    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        raise ConfigurationError(f"nothing to scan at {', '.join(missing)}")
    findings = [finding for path in args.paths for finding in scan_secrets(path)]
    for finding in findings:
        out.write(f"{finding}\n")
    out.write(f"{len(findings)} secret(s) found in {', '.join(map(str, args.paths))}\n")
    return 1 if findings else 0
