"""The long-tail provider: `Client("litellm/<litellm model>")` goes through litellm, with our
retries, errors and usage around it; every built-in provider's call leaves litellm unimported.
Against a real loopback server (tests/fault_server.py) speaking the OpenAI wire, which litellm's
`openai/...` route reaches through its own HTTP client."""

from __future__ import annotations

import json
from decimal import Decimal
import subprocess
import sys

import pytest

from llmclient import Client, ContextWindowExceededError, RateLimitError, RetryPolicy
from tests.fault_server import FaultServer, fault_server, status, succeed  # noqa: F401 - fixture

FAST = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=False)


def litellm_client(server: FaultServer, **options: object) -> Client:
    return Client("litellm/openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test", **options)  # type: ignore[arg-type]


def test_litellm_is_imported_only_by_a_litellm_call(fault_server: FaultServer) -> None:
    code = (
        "import json, sys\n"
        "from llmclient import Client\n"
        f"base = {fault_server.url!r}\n"
        "seen = []\n"
        "Client('openai/gpt-4o-mini', base_url=base + '/v1', api_key='sk-test').complete('Hi')\n"
        "s = Client('anthropic/claude-sonnet-4-5', base_url=base, api_key='sk-ant-test').stream('Hi')\n"
        "''.join(e.text for e in s)\n"
        "seen.append('litellm' in sys.modules)\n"
        "Client('litellm/openai/gpt-4o-mini', base_url=base + '/v1', api_key='sk-test').complete('Hi')\n"
        "seen.append('litellm' in sys.modules)\n"
        "print(json.dumps(seen))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [False, True]
    assert fault_server.count == 3


def test_a_litellm_call_is_a_response_with_the_providers_usage(fault_server: FaultServer) -> None:
    fault_server.script(succeed("Paris.", input_tokens=12, output_tokens=3))
    response = litellm_client(fault_server).complete("Capital of France?", max_tokens=20)
    assert (response.text, response.finish_reason, response.provider) == ("Paris.", "stop", "litellm")
    assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == (12, 3)
    sent = fault_server.requests[0].body
    assert sent["messages"] == [{"role": "user", "content": "Capital of France?"}] and sent["max_tokens"] == 20


def test_a_litellm_stream_delivers_the_deltas_and_the_usage(fault_server: FaultServer) -> None:
    fault_server.script(succeed("Paris is the capital.", input_tokens=9, output_tokens=5))
    stream = litellm_client(fault_server).stream("Capital of France?")
    text = "".join(event.text for event in stream if event.kind == "text")
    assert text == stream.response.text == "Paris is the capital."
    assert stream.response.usage is not None and stream.response.usage.output_tokens == 5


def test_litellm_errors_are_our_typed_errors_and_our_retry_layer_retries_them(fault_server: FaultServer) -> None:
    fault_server.script(status(429, headers={"retry-after": "0"}), succeed("After the wait."))
    response = litellm_client(fault_server, retry=FAST).complete("Hi")
    assert response.text == "After the wait." and fault_server.count == 2  # litellm itself never resent
    assert [(r.error, r.status_code) for r in response.retries] == [("RateLimitError", 429)]
    fault_server.script(status(400, message="This model's maximum context length is 8192 tokens",
                               error_type="context_length_exceeded"))
    with pytest.raises(ContextWindowExceededError):
        litellm_client(fault_server, retry=FAST).complete("Hi")
    fault_server.script(status(429), status(429))
    with pytest.raises(RateLimitError):
        litellm_client(fault_server, retry=FAST).complete("Hi")
    assert fault_server.count == 5


def test_a_litellm_call_is_priced_as_the_provider_that_answered(fault_server: FaultServer) -> None:
    # gpt-4o-mini: $0.15 input / $0.60 output per 1M tokens (platform.openai.com/docs/pricing)
    fault_server.script(succeed("Paris.", input_tokens=1000, output_tokens=200, model="gpt-4o-mini"))
    response = litellm_client(fault_server).complete("Capital of France?")
    assert response.cost is not None and response.cost.total == Decimal("0.00027")  # 1000 x 0.15e-6 + 200 x 0.60e-6
    assert response.cost.prices is not None and response.cost.prices.model == "openai/gpt-4o-mini"


def test_simulated_faults_reach_the_litellm_route_too(fault_server: FaultServer) -> None:
    from llmclient.testing import simulate_errors
    from llmclient.testing import status as simulated_status
    from llmclient.testing import timeout as simulated_timeout

    fault_server.script(succeed("After the faults."))
    with simulate_errors(simulated_status(503), simulated_timeout(), provider="litellm") as simulator:
        response = litellm_client(fault_server, retry=RetryPolicy(max_attempts=3, initial_backoff=0, jitter=False)).complete("Hi")
    assert response.text == "After the faults." and fault_server.count == 1
    assert [r.error for r in response.retries] == ["ServerError", "RequestTimeoutError"]
    assert len(simulator.injected) == 2


def test_a_replay_mismatch_through_litellm_is_a_replay_mismatch() -> None:
    # litellm and the openai SDK wrap vcrpy's refusal as a "Connection error" 500; it is ours to name.
    from pathlib import Path

    from llmclient import ReplayMismatchError, use_cassette

    cassette = Path(__file__).resolve().parent.parent / "cassettes" / "litellm" / "text.yaml"
    with use_cassette(cassette), pytest.raises(ReplayMismatchError) as caught:
        Client("litellm/openai/gpt-4o-mini", retry=RetryPolicy(max_attempts=1)).complete("Write a poem about cats")
    assert "closest recorded request differs at messages[0].content: recorded 'What is the capital" in str(caught.value)
