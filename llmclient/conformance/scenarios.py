"""The scenario catalogue: one definition per scenario, the same for every provider.

A scenario is data (the prompt, the tool, the options, the capability it needs) plus one small
function that makes the calls through the public API and returns what it observed. What a
provider is expected to answer lives in `fixtures/conformance/<provider>/<scenario>.json`, written
by hand from the cassette body and a cited price, never by this code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from llmclient import Client, LLMError, Message, Response, regex
from llmclient.conformance.expect import ByWire, Contains, Json, Lacks, OneOf
from llmclient.providers import Capability
from llmclient.policies.retry import NO_RETRY, RetryPolicy

Kind = Literal["response", "stream", "error"]

CAPITAL_WORD = "What is the capital of France? Answer in one word."
WEATHER = "What is the weather in Paris?"
WEATHER_TWO_CITIES = "What is the weather in Paris and in Tokyo? Check both cities."
WEATHER_RESULT = {"temperature_c": 18, "conditions": "sunny"}
LONG_STORY = "Write a long story about a lighthouse keeper."
COUNT = "Count from 1 to 5, separated by commas and spaces."
INPUTS = Path(__file__).resolve().with_name("inputs")
LONG_SYSTEM = (INPUTS / "long_system.txt").read_text()
STRAWBERRY = "How many times does the letter r appear in the word strawberry? Answer with the number only."
# Past the 200k-token price threshold of long-context models (about 255k tokens), under their 1M window.
LONG_PROMPT = "zqxjv " * 85_000 + "\n\nHow many words above are not 'zqxjv'? Answer with the number only."
IMAGE_QUESTION = "What colour is this image? Answer in one word."
# The public photo of a potato the reference traffic's image-URL cases send (a JPEG, by its name).
IMAGE_URL = "https://t3.ftcdn.net/jpg/00/85/79/92/360_F_85799278_0BBGV9OAdQDTLnKwAPBCcg1J7QtiieJY.jpg"
IMAGE_URL_QUESTION = "What vegetable is in this photo? Answer in one word."
PDF_QUESTION = "What text does this document contain? Answer with the text only."
# Past every built-in model's context window once repeated (see `context_prompt`).
CONTEXT_WORD = "zqxjv "  # rare letters: several tokens per word in every tokenizer


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    raise AssertionError("scenarios answer tool calls with WEATHER_RESULT")


class CityFacts(BaseModel):
    """The structured-output scenarios' schema."""

    city: str
    country: str
    population_millions: float


CITY_FACTS = "Give the name, country and population (in millions) of the capital of France."


@dataclass
class Observed:
    """What one scenario saw: the final response (or the error), and a stream's deltas."""

    response: Response | None = None
    responses: list[Response] = field(default_factory=list)
    deltas: list[str] = field(default_factory=list)
    tool_fragments: int = 0
    error: LLMError | None = None
    value: Any = None  # a structured scenario's validated value
    slept: list[float] = field(default_factory=list)  # the retry layer's waits, in seconds
    raised: bool = False  # the error escaped the scenario (it did not expect one)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    kind: Kind
    call: Callable[[Client], Observed]
    requires: frozenset[Capability] = frozenset()
    model: str | None = None  # a model id other than the provider's conformance model
    api_key: str | None = None  # a key other than the provider's (an invalid one, for 401)
    interactions: int = 1
    recordable: bool = True  # False: a server fault no request can provoke; authored only
    retry: RetryPolicy = NO_RETRY  # recordings hold one attempt per call, except the retry scenarios'
    # What each request must carry, in order (see `expect`): the scenario's request half.
    sends: tuple[Mapping[str, Any], ...] = ()


def _complete(prompt: Any, **options: Any) -> Callable[[Client], Observed]:
    def call(client: Client) -> Observed:
        response = client.complete(prompt, **options)
        return Observed(response=response, responses=[response])

    return call


def _stream(prompt: Any, **options: Any) -> Callable[[Client], Observed]:
    def call(client: Client) -> Observed:
        observed = Observed()
        stream = client.stream(prompt, **options)
        for event in stream:
            if event.kind == "text":
                observed.deltas.append(event.text)
            elif event.kind == "tool_call":
                observed.tool_fragments += 1
        observed.response = stream.response
        observed.responses = [stream.response]
        return observed

    return call


def _raises(inner: Callable[[Client], Observed]) -> Callable[[Client], Observed]:
    def call(client: Client) -> Observed:
        try:
            observed = inner(client)
        except LLMError as error:
            return Observed(error=error)
        return observed  # no error: the check reports it

    return call


def _structured(strategy: Any = None) -> Callable[[Client], Observed]:
    def call(client: Client) -> Observed:
        result = client.structured_result(CITY_FACTS, schema=CityFacts, strategy=strategy)
        responses = [attempt.response for attempt in result.attempts]
        return Observed(response=responses[-1], responses=responses, value=result.value.model_dump())

    return call


# The first one-word answer ("Paris") is refused: the validator wants it in capitals.
CAPITALS_ONLY = regex(r"[A-Z]+", full=True)


def _validator_reask(client: Client) -> Observed:
    final = client.complete(CAPITAL_WORD, validators=[CAPITALS_ONLY], max_retries=1)
    responses = [attempt.response for attempt in final.rejected] + [final]
    return Observed(response=final, responses=responses)


# The retry scenarios' policy: deterministic backoff (no jitter), and waits recorded instead of
# slept, so the suite stays fast while the wait each error asked for is checked exactly.
_SLEPT: list[float] = []
RETRYING = RetryPolicy(max_attempts=3, initial_backoff=0.5, max_backoff=8.0, jitter=False, sleep=_SLEPT.append)


def _retried(client: Client) -> Observed:
    _SLEPT.clear()
    response = client.complete(CAPITAL_WORD)
    return Observed(response=response, responses=[response], slept=list(_SLEPT))


def _tool_round_trip(client: Client) -> Observed:
    first = client.complete(WEATHER, tools=[get_weather])
    if not first.tool_calls:
        return Observed(response=first, responses=[first])
    history = [Message.user(WEATHER), first.message,
               *(Message.tool_result(call, WEATHER_RESULT) for call in first.tool_calls)]
    second = client.complete(history, tools=[get_weather])
    return Observed(response=second, responses=[first, second])


# A ZIP archive: a real file, of a type no provider takes as input.
ZIP_BYTES = b"PK\x03\x04\x14\x00\x00\x00\x00\x00" + bytes(64)


def _oversized_image(client: Client) -> Observed:
    """A 26 MB PNG: past every provider's inline image limit (20 MB is the largest)."""
    return _raises(_complete(IMAGE_QUESTION, files=[b"\x89PNG\r\n\x1a\n" + bytes(26 * 1024 * 1024)]))(client)


def _long_context(client: Client) -> Observed:
    """LONG_PROMPT, with Anthropic's 1M-context beta where the wire is Anthropic's."""
    beta = {"anthropic-beta": "context-1m-2025-08-07"} if client.spec.wire == "anthropic" else {}
    return _complete(LONG_PROMPT, extra_headers=beta)(client)


def context_prompt(words: int = 500_000) -> str:
    """A 3 MB prompt of over 1.5M tokens: past every built-in model's window (Gemini's is 1M)."""
    return CONTEXT_WORD * words


def _context_window(client: Client) -> Observed:
    """The provider's own refusal, so past the model catalogue's check that would refuse it first."""
    return _raises(_complete(context_prompt(), check_context=False))(client)


MULTI_TURN = [
    Message.user("My name is Ada. Please remember it."),
    Message.assistant("Nice to meet you, Ada! I'll remember your name."),
    Message.user("What is my name? Answer in one word."),
]

# --- what the requests carry (the request half of each cell), written from the scenario's inputs --

def _text(text: str | Contains) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _user(*parts: Any) -> dict[str, Any]:
    return {"role": "user", "parts": [_text(part) if isinstance(part, (str, Contains)) else part for part in parts]}


def _asks(*turns: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """One request: exactly these turns, and nothing the scenario does not ask for (no system
    text, tools, tool_choice, response_format, sampling or stop unless given; not streamed)."""
    unasked: dict[str, Any] = {"system": None, "stream": False, "tools": [], "tool_choice": None, "response_format": None,
               "temperature": None, "top_p": None, "stop": None, "reasoning": None}
    return {"messages": list(turns), **unasked, **fields}


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# The function tool `get_weather` declares (its docstring, one required string parameter).
WEATHER_TOOL = {"name": "get_weather", "description": "Get the current weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CITY_FACTS_SCHEMA = {"type": "object", "required": ["city", "country", "population_millions"], "properties": {
    "city": {"type": "string"}, "country": {"type": "string"}, "population_millions": {"type": "number"}}}
CITY_FACTS_TOOL = {"name": "CityFacts", "parameters": CITY_FACTS_SCHEMA}
# Forcing one named tool: by name, or "required" where the API cannot name one (it is the only tool).
FORCED_CITY_FACTS = OneOf(({"name": "CityFacts"}, "required"))
CAPITAL = _asks(_user(CAPITAL_WORD))
COUNTING = _asks(_user(COUNT), stream=True)
ASKS_WEATHER = _asks(_user(WEATHER), tools=[WEATHER_TOOL])
ASKS_CITY_FACTS = _asks(_user(CITY_FACTS), tools=[CITY_FACTS_TOOL], tool_choice=FORCED_CITY_FACTS)
SYSTEM_TEXT = "Answer in exactly one word, in lowercase, without punctuation."
CACHED_SYSTEM = {**CAPITAL, "system": LONG_SYSTEM}
# reasoning_effort="low": OpenAI's effort as is (litellm sends the same), else the wire's thinking
# budget for it (1024 tokens, as litellm maps "low").
THINKS_LOW = ByWire({"openai": "low", "litellm": "low", "*": {"budget": 1024}})
# The 1M-context beta header goes to Anthropic only (another wire has no use for it).
LONG_CONTEXT_BETA = ByWire({"anthropic": {"anthropic-beta": "context-1m-2025-08-07"}, "*": Lacks("anthropic-beta")})

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("text", "a one-word answer: text, finish stop, usage, cost", "response", _complete(CAPITAL_WORD),
             sends=(CAPITAL,)),
    Scenario("system_prompt", "a system instruction is followed", "response",
             _complete("What is the capital of France?", system=SYSTEM_TEXT),
             sends=(_asks(_user("What is the capital of France?"), system=SYSTEM_TEXT),)),
    Scenario("multi_turn", "earlier turns are sent and used", "response", _complete(MULTI_TURN),
             sends=(_asks(_user("My name is Ada. Please remember it."),
                          {"role": "assistant", "parts": [_text("Nice to meet you, Ada! I'll remember your name.")]},
                          _user("What is my name? Answer in one word.")),)),
    Scenario("max_tokens", "a max_tokens cut finishes with 'length'", "response", _complete(LONG_STORY, max_tokens=16),
             sends=(_asks(_user(LONG_STORY), max_tokens=16),)),
    Scenario("stream_text", "deltas concatenate to the text; usage once, as reported", "stream", _stream(COUNT),
             requires=frozenset({"streaming"}), sends=(COUNTING,)),
    Scenario("tool_call", "one client tool call with parsed arguments", "response",
             _complete(WEATHER, tools=[get_weather]), requires=frozenset({"tools"}), sends=(ASKS_WEATHER,)),
    Scenario("parallel_tool_calls", "two tool calls in one turn", "response",
             _complete(WEATHER_TWO_CITIES, tools=[get_weather]), requires=frozenset({"parallel_tools"}),
             sends=(_asks(_user(WEATHER_TWO_CITIES), tools=[WEATHER_TOOL]),)),
    Scenario("stream_tool_call", "tool-call arguments streamed as fragments", "stream",
             _stream(WEATHER, tools=[get_weather]), requires=frozenset({"stream_tools"}),
             sends=({**ASKS_WEATHER, "stream": True},)),
    Scenario("tool_round_trip", "a tool result sent back yields the final answer", "response", _tool_round_trip,
             requires=frozenset({"tools"}), interactions=2,
             sends=(ASKS_WEATHER, _asks(_user(WEATHER),
                                        {"role": "assistant", "parts": [{"type": "tool_call", "name": "get_weather"}]},
                                        {"role": "tool", "parts": [{"type": "tool_result", "name": "get_weather",
                                                                    "text": Json(WEATHER_RESULT)}]},
                                        tools=[WEATHER_TOOL]))),
    Scenario("image_input", "an attached PNG is seen (inputs/tiny.png, solid red)", "response",
             _complete(IMAGE_QUESTION, files=[INPUTS / "tiny.png"]), requires=frozenset({"vision"}),
             sends=(_asks(_user(IMAGE_QUESTION, {"type": "image", "media_type": "image/png",
                                                 "sha256": _sha256(INPUTS / "tiny.png")})),)),
    Scenario("image_url", "an image given by URL is fetched by the provider and seen", "response",
             _complete(IMAGE_URL_QUESTION, files=[IMAGE_URL]), requires=frozenset({"vision"}),
             # by URL where the provider fetches it, else downloaded and sent inline
             sends=(_asks(_user(IMAGE_URL_QUESTION, OneOf(({"type": "image", "url": IMAGE_URL},
                                                           {"type": "image", "media_type": "image/jpeg"})))),)),
    Scenario("pdf_input", "an attached PDF is read (inputs/tiny.pdf)", "response",
             _complete(PDF_QUESTION, files=[INPUTS / "tiny.pdf"]), requires=frozenset({"pdf"}),
             sends=(_asks(_user(PDF_QUESTION, {"type": "pdf", "sha256": _sha256(INPUTS / "tiny.pdf")})),)),
    Scenario("structured_native", "a pydantic model through the provider's JSON-schema mode", "response",
             _structured(), requires=frozenset({"structured_output"}),
             sends=(_asks(_user(CITY_FACTS), response_format={"type": "json_schema", "schema": CITY_FACTS_SCHEMA},
                          tools=[]),)),
    Scenario("structured_tool", "a pydantic model through one forced tool call", "response",
             _structured("tool"), requires=frozenset({"tools"}), sends=(ASKS_CITY_FACTS,)),
    Scenario("structured_prompted", "a pydantic model from instructions and JSON in the text", "response",
             _structured("prompted"),
             sends=(_asks(_user(CITY_FACTS), system=Contains('"population_millions"'), tools=[], response_format=None),)),
    Scenario("structured_reask", "an invalid first answer goes back as the tool's result; the second validates",
             "response", _structured("tool"), requires=frozenset({"tools"}), interactions=2,
             sends=(ASKS_CITY_FACTS, {**ASKS_CITY_FACTS, "messages": [
                 _user(CITY_FACTS), {"role": "assistant", "parts": [{"type": "tool_call", "name": "CityFacts"}]},
                 {"role": "tool", "parts": [{"type": "tool_result", "name": "CityFacts", "text": Contains("population_millions")}]}]})),
    Scenario("validator_reask", "an answer a validator refuses is asked again with the reason; the second passes",
             "response", _validator_reask, interactions=2,
             sends=(CAPITAL, _asks(_user(CAPITAL_WORD), {"role": "assistant", "parts": [{"type": "text"}]},
                                   _user(Contains("[A-Z]+"))))),
    Scenario("retry_rate_limit", "429 with Retry-After, then 200: the wait honours Retry-After, the answer comes",
             "response", _retried, interactions=2, recordable=False, retry=RETRYING, sends=(CAPITAL, CAPITAL)),
    Scenario("retry_server_error", "503 (Anthropic: 529 overloaded), then 200: backoff, then the answer",
             "response", _retried, interactions=2, recordable=False, retry=RETRYING, sends=(CAPITAL, CAPITAL)),
    Scenario("billing_cache_read", "a cached system prompt: cache reads at the cache price", "response",
             _complete([Message.system(LONG_SYSTEM, cache="5m"), Message.user(CAPITAL_WORD)]),
             requires=frozenset({"prompt_cache"}), sends=(CACHED_SYSTEM,)),
    Scenario("billing_cache_write", "a 1-hour cache write, priced apart from input", "response",
             _complete([Message.system(LONG_SYSTEM, cache="1h"), Message.user(CAPITAL_WORD)]),
             requires=frozenset({"cache_write"}), sends=(CACHED_SYSTEM,)),
    Scenario("billing_reasoning", "reasoning tokens inside output, priced as the table says", "response",
             _complete(STRAWBERRY, reasoning_effort="low"), requires=frozenset({"reasoning"}),
             sends=(_asks(_user(STRAWBERRY), reasoning=THINKS_LOW),)),
    Scenario("billing_tiered", "a request above 200k input tokens priced at the long-context tier", "response",
             _long_context, requires=frozenset({"tiered_pricing"}),
             sends=(_asks(_user(LONG_PROMPT), headers=LONG_CONTEXT_BETA),)),
    Scenario("file_unsupported_type", "a ZIP attached -> UnsupportedCapabilityError, zero requests", "error",
             _raises(_complete(IMAGE_QUESTION, files=[ZIP_BYTES])), requires=frozenset({"vision"}), interactions=0),
    Scenario("file_oversized", "a 26 MB image -> BadRequestError naming the limit, zero requests", "error",
             _oversized_image, requires=frozenset({"vision"}), interactions=0),
    Scenario("error_auth", "401 -> AuthenticationError", "error", _raises(_complete(CAPITAL_WORD)),
             api_key="invalid-key-for-conformance", sends=(CAPITAL,)),
    Scenario("error_not_found", "an unknown model -> the provider's error for it", "error",
             _raises(_complete(CAPITAL_WORD)), model="no-such-model", sends=(CAPITAL,)),
    Scenario("error_bad_request", "an out-of-range temperature -> BadRequestError", "error",
             _raises(_complete(CAPITAL_WORD, temperature=5)), sends=({**CAPITAL, "temperature": 5},)),
    Scenario("error_context_window", "a prompt past the context window -> ContextWindowExceededError", "error",
             _context_window, sends=(_asks(_user(context_prompt())),)),
    Scenario("error_rate_limit", "429 with Retry-After -> RateLimitError.retry_after", "error",
             _raises(_complete(CAPITAL_WORD)), recordable=False, sends=(CAPITAL,)),
    Scenario("error_server", "500 -> ServerError", "error", _raises(_complete(CAPITAL_WORD)), recordable=False,
             sends=(CAPITAL,)),
    Scenario("error_overloaded", "503 / Anthropic 529 -> the overloaded class", "error", _raises(_complete(CAPITAL_WORD)),
             recordable=False, sends=(CAPITAL,)),
    Scenario("error_malformed", "a 200 body that is not JSON -> MalformedResponseError", "error",
             _raises(_complete(CAPITAL_WORD)), recordable=False, sends=(CAPITAL,)),
    Scenario("error_truncated_stream", "a stream cut before its end -> MalformedResponseError", "error",
             _raises(_stream(COUNT)), requires=frozenset({"streaming"}), recordable=False, sends=(COUNTING,)),
    Scenario("error_stream_event", "an error event inside a 200 stream -> its class", "error",
             _raises(_stream(COUNT)), requires=frozenset({"streaming"}), recordable=False, sends=(COUNTING,)),
)
BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}

