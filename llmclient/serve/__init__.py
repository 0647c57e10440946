"""`llmclient serve`: an OpenAI-compatible HTTP server in front of `llmclient.Client`.

    llmclient serve [--host 127.0.0.1] [--port 8000] [--max-body-mb 16] [--config FILE]
    llmclient serve --replay cassettes        # answers from recorded cassettes: no network, no keys

`POST /v1/chat/completions` takes an OpenAI chat body; its `model` goes through the configuration
like `Client("...")` (profiles, aliases, fallbacks, retries, rate limits, cost, telemetry).
`GET /v1/models` lists the configured profiles, aliases and models. See `llmclient.serve.app`
for the wire behaviour (usage chunk, cost header, error mapping) and `llmclient.serve.replay`
for replay.

FastAPI and uvicorn (`pip install 'llmclient[serve]'`) are imported only when a server is built:
importing this package (as `llmclient.cli` does for its argument parser) loads neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmclient.serve.app import create_app as create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from llmclient.serve.app import create_app

        return create_app
    raise AttributeError(f"module 'llmclient.serve' has no attribute {name!r}")
