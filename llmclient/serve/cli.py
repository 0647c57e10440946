"""`llmclient serve`: an OpenAI-compatible server in front of llmclient (`pip install 'llmclient[serve]'`).

    llmclient serve [--host 127.0.0.1] [--port 8000] [--max-body-mb 16] [--config FILE] [--fetch-urls]
    llmclient serve --replay DIR [--host 127.0.0.1] [--port 8000]

Point any OpenAI client at http://HOST:PORT/v1: `model` is a profile, an alias or
"provider/model", resolved by llmclient's configuration (fallbacks, retries, rate limits, cost and
telemetry apply). Answers carry `x-llmclient-model` (the model that answered, percent-encoded
outside visible ASCII) and, when known, `x-llmclient-cost-usd`. With LLMCLIENT_SERVER_KEY set,
requests need `Authorization: Bearer <it>`. Errors and warnings (a 500's traceback) are logged on
stderr at --log-level.
--replay DIR answers from the cassettes in DIR/<provider>/*.yaml instead of the providers: no
network, no keys. Binds 127.0.0.1 unless --host says otherwise; any other address needs
LLMCLIENT_SERVER_KEY. Requests must be `Content-Type: application/json` with a Host of localhost,
127.0.0.1, [::1] or --host (web pages cannot use the server). An http(s) image URL is refused
(send a data: URL) unless --fetch-urls, which lets the server download it on ITS network.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from llmclient.errors import ConfigurationError

INSTALL = "pip install 'llmclient[serve]'"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser("serve", help="an OpenAI-compatible proxy (llmclient[serve]), or a replay server",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=_port, default=8000, help="the port (default 8000; 0 picks a free one)")
    serve.add_argument("--max-body-mb", type=_megabytes, default=16.0, metavar="MB",
                       help="refuse request bodies over this size with 413 (default 16)")
    serve.add_argument("--replay", type=Path, default=None, metavar="DIR",
                       help="answer from the cassettes in DIR/<provider>/*.yaml (no network, no keys)")
    serve.add_argument("--fetch-urls", action="store_true",
                       help="accept http(s) image URLs: downloaded on the SERVER's network (and so can reach what it "
                            "reaches) for providers that do not fetch URLs themselves; not with --replay")
    serve.add_argument("--config", type=Path, default=None, metavar="FILE",
                       help="the llmclient.toml with profiles, aliases and providers (default: found from here)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.set_defaults(run=_serve)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return port


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a size in MB above 0, got {text!r}")
    return value


def _serve(args: argparse.Namespace, out: TextIO) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise ConfigurationError(f"llmclient serve needs FastAPI and uvicorn ({exc.name} is missing): {INSTALL}") from exc
    if args.config is not None:
        from llmclient.config import load_config, reset_config

        load_config(args.config)  # refuses a bad file here, naming it
        os.environ["LLMCLIENT_CONFIG"] = str(args.config.resolve())
        reset_config()
    from llmclient.serve.app import create_app

    app = create_app(max_body_bytes=int(args.max_body_mb * 1024 * 1024), replay=args.replay, host=args.host,
                     fetch_urls=args.fetch_urls)
    where = f"replaying {args.replay}" if args.replay is not None else "proxying to the providers"
    out.write(f"llmclient serve: {where} on http://{args.host}:{args.port}/v1\n")
    out.flush()
    with _logging_to_stderr(args.log_level):
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


@contextmanager
def _logging_to_stderr(level_name: str) -> Iterator[None]:
    """llmclient's log records at `level_name` (--log-level, uvicorn's too) printed on stderr
    while the server runs. As a library llmclient prints nothing (its logger has only a
    NullHandler) and uvicorn configures only its own loggers, so without this a 500's traceback
    (`llmclient.serve.errors`) would go nowhere; the server is an application, and says what
    failed. The logger is as it was afterwards."""
    package_logger = logging.getLogger("llmclient")
    level = logging.getLevelName(level_name.upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter("%(levelname)-9s %(name)s: %(message)s"))  # aligned with uvicorn's lines
    level_before = package_logger.level
    package_logger.addHandler(handler)
    package_logger.setLevel(level)
    try:
        yield
    finally:
        package_logger.removeHandler(handler)
        package_logger.setLevel(level_before)
