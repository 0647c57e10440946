"""`GET /v1/models`: what a client may put in `model`, in OpenAI's list shape.

Each entry is `{"id", "object": "model", "created": 0, "owned_by", "llmclient": {"kind",
"resolves_to"}}`: the configuration's profiles and aliases (kind "profile" / "alias", with the
"<provider>/<model id>" they resolve to, or null when they cannot be resolved), then the models it
names (kind "model": the default, profile models and fallbacks, `[providers.X.models."id"]`
tables, the conformance matrix), and, for a replay server, the models of the recorded requests.
"""

from __future__ import annotations

from typing import Any

from llmclient.config import get_config
from llmclient.errors import LLMError


def model_list(replay: Any = None) -> list[dict[str, Any]]:
    config = get_config()
    entries: dict[str, dict[str, Any]] = {}

    def add(name: str, kind: str) -> None:
        if name in entries:
            return
        try:
            resolved: str | None = config.resolve(name).model
        except LLMError:
            resolved = None
        owner = (resolved or name).split("/", 1)[0] if "/" in (resolved or name) else "llmclient"
        entries[name] = {"id": name, "object": "model", "created": 0, "owned_by": owner,
                         "llmclient": {"kind": kind, "resolves_to": resolved}}

    for name in sorted(config.profiles):
        add(name, "profile")
    for name in sorted(config.aliases):
        add(name, "alias")
    named: list[str] = [config.default] if config.default else []
    for profile in config.profiles.values():
        named += [profile.model, *profile.fallbacks]
    named += list(config.aliases.values())
    for provider, settings in sorted(config.providers.items()):
        named += [f"{provider}/{model_id}" for model_id in sorted(settings.models)]
    if config.conformance is not None:
        named += [f"{provider}/{model_id}" for provider, model_id in sorted(config.conformance.models.items())]
    for name in named:
        if "/" in name:
            add(name, "model")
    if replay is not None:
        for name in replay.models():
            add(name, "model")
    return list(entries.values())
