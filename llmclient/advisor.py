"""`ModelAdvisor`: which model to use for a task, and what that choice saves.

    >>> from llmclient import Client, ModelAdvisor
    >>> advisor = ModelAdvisor(client=Client("openai/gpt-4o-mini"))      # the model that assesses tasks
    >>> advice = advisor.recommend_model_for_task("summarise 50-page PDFs", budget_per_request=0.01)
    >>> advice.best.model, advice.best.estimated_cost, advice.assessment_cost   # doctest: +SKIP

`assess_task_complexity` asks the advisor's client (a cheap model) for a `ComplexityAssessment`
through `structured()`: how hard the task is, whether it needs reasoning, images or PDFs, and how
many tokens go in and come out. `recommend_model_for_task` turns that into requirements for
`select_model` (capabilities, context, the expected tokens, the budget, speed for a tight response
time, quality for a complex task) and reports the pick's estimated cost beside the most capable
eligible model's, so the saving is a number, and what the assessment itself cost. Without a client
the assessment is a stated rule of thumb (`assessed_by="rules"`), never presented as the model's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from llmclient import models
from llmclient.errors import InvalidRequestError
from llmclient.selection import Candidate, Preference, Selection, select_model
from llmclient.tokens import TokenCount, count_tokens, estimate_tokens, estimated_count

if TYPE_CHECKING:
    from llmclient.client import Client
    from llmclient.types import Cost, Usage

Complexity = Literal["simple", "moderate", "complex"]
OutputLength = Literal["short", "medium", "long"]
SchemaComplexity = Literal["none", "simple", "complex"]
ResponseTime = Literal["fast", "normal", "relaxed"]
_OUTPUT_TOKENS: dict[str, int] = {"short": 150, "medium": 600, "long": 2_000}
# A structured answer costs its schema in the prompt (sent as a tool or response format) and some
# JSON syntax in the answer: tokens in, tokens out.
_SCHEMA_TOKENS: dict[str, tuple[int, int]] = {"none": (0, 0), "simple": (120, 40), "complex": (600, 200)}

_ASSESS = """You assess tasks for choosing a language model. For the task below, judge:
- complexity: simple (lookup, short rewrite, classification), moderate (summary, extraction, ordinary code),
  complex (multi-step reasoning, long analysis, hard code or maths);
- needs_reasoning: true only if the task needs step-by-step reasoning to get right;
- needs_vision / needs_pdf: true if the input includes images / PDF documents;
- expected_input_tokens: the size of the input the task implies (a page of text is about 600 tokens);
- expected_output_tokens: the length of a good answer;
- rationale: one sentence.

Task: """


class ComplexityAssessment(BaseModel):
    """What a task needs, as the assessing model judged it."""

    complexity: Complexity
    needs_reasoning: bool
    needs_vision: bool = False
    needs_pdf: bool = False
    expected_input_tokens: int = Field(ge=0, le=10_000_000)
    expected_output_tokens: int = Field(ge=1, le=1_000_000)
    rationale: str


@dataclass(frozen=True)
class TaskAssessment:
    """An assessment and what it cost: `assessed_by` is the model that made it ("rules" without a
    client), `usage` / `cost` the assessing call's (None for rules; cost None when unpriced)."""

    assessment: ComplexityAssessment
    assessed_by: str
    usage: Usage | None = None
    cost: Cost | None = None


@dataclass(frozen=True)
class TokenRequirements:
    """Tokens a task needs: the input as counted (exact or estimated, see `input.method`), the
    schema's share of the prompt, and the expected output (with the structured answer's syntax)."""

    input: TokenCount
    schema_tokens: int
    output_tokens: int

    @property
    def input_tokens(self) -> int:
        return self.input.tokens + self.schema_tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Recommendation:
    """`best` (None: nothing meets the requirements; see `selection.excluded`), the ranked
    `selection`, the assessment behind it, and the measured saving: `baseline` is the most capable
    eligible model (quality order), `saving` its estimated cost minus the pick's per call."""

    best: Candidate | None
    selection: Selection
    assessment: TaskAssessment
    baseline: Candidate | None
    why: tuple[str, ...]

    @property
    def assessment_cost(self) -> Decimal | None:
        cost = self.assessment.cost
        return cost.total if cost is not None else None

    @property
    def saving(self) -> Decimal | None:
        if self.best is None or self.baseline is None or None in (self.best.estimated_cost, self.baseline.estimated_cost):
            return None
        assert self.best.estimated_cost is not None and self.baseline.estimated_cost is not None
        return self.baseline.estimated_cost - self.best.estimated_cost


class ModelAdvisor:
    """Recommends models for tasks from the catalogue, the price table and an assessment of the
    task by `client` (a Client of a cheap model; None: rules of thumb, labelled as such), among
    `providers` (default: every provider llmclient calls; see `select_model` for the others)."""

    def __init__(self, client: Client | None = None, *, providers: Sequence[str] | None = None,
                 include_unkeyed: bool = False, include_free: bool = False) -> None:
        self.client = client
        self.providers = providers
        self.include_unkeyed = include_unkeyed
        self.include_free = include_free

    def assess_task_complexity(self, prompt: str) -> TaskAssessment:
        """How hard `prompt` (a task description, or the task itself) is, by the advisor's model."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidRequestError(f"assess_task_complexity needs the task as a non-empty string, got {prompt!r:.60}")
        if self.client is None:
            return TaskAssessment(_by_rules(prompt), "rules")
        result = self.client.structured_result(_ASSESS + prompt, schema=ComplexityAssessment, temperature=0)
        return TaskAssessment(result.value, self.client.model, result.usage, result.cost)

    def estimate_token_requirements(self, input_text: str, expected_output_length: OutputLength | int = "medium",
                                    schema_complexity: SchemaComplexity = "none", model: str | None = None) -> TokenRequirements:
        """Tokens for `input_text` (counted for `model` when given: exact where a tokenizer is on
        disk, else estimated), a structured answer's schema, and the expected output."""
        if not isinstance(input_text, str):
            raise InvalidRequestError(f"input_text must be a string, got {type(input_text).__name__}")
        output = _output_tokens(expected_output_length)
        if schema_complexity not in _SCHEMA_TOKENS:
            raise InvalidRequestError(f"schema_complexity must be one of {', '.join(_SCHEMA_TOKENS)}, got {schema_complexity!r}")
        schema_in, schema_out = _SCHEMA_TOKENS[schema_complexity]
        counted = count_tokens(input_text, model, offline=True) if model else estimated_count(input_text, "no model given")
        return TokenRequirements(counted, schema_in, output + schema_out)

    def recommend_model_for_task(self, task_description: str, budget_per_request: Decimal | float | str | None = None,
                                 response_time_requirement: ResponseTime = "normal", *,
                                 input_text: str | None = None) -> Recommendation:
        """The model for a task: its assessment, the catalogue's candidates meeting it, ranked."""
        if response_time_requirement not in ("fast", "normal", "relaxed"):
            raise InvalidRequestError("response_time_requirement must be one of fast, normal, relaxed, "
                                      f"got {response_time_requirement!r}")
        assessed = self.assess_task_complexity(task_description)
        judged = assessed.assessment
        input_tokens = judged.expected_input_tokens
        if input_text is not None:
            input_tokens = self.estimate_token_requirements(input_text).input.tokens
        wanted = [name for name, needed in (("vision", judged.needs_vision), ("pdf", judged.needs_pdf),
                                            ("reasoning", judged.needs_reasoning)) if needed]
        prefer: Preference = "speed" if response_time_requirement == "fast" else \
            "quality" if judged.complexity == "complex" and budget_per_request is not None else "cost"
        common: dict[str, Any] = dict(budget_per_call=budget_per_request, capabilities=wanted,
                                      expected_input_tokens=input_tokens,
                                      expected_output_tokens=judged.expected_output_tokens, include_unkeyed=self.include_unkeyed,
                                      include_free=self.include_free, providers=self.providers)
        selection = select_model(prefer=prefer, **common)
        baseline = select_model(prefer="quality", **common).best
        why = [f"assessed {judged.complexity} by {assessed.assessed_by}: {judged.rationale}",
               f"needs {', '.join(wanted) or 'text only'}; about {input_tokens:,} tokens in, "
               f"{judged.expected_output_tokens:,} out",
               f"ranked by {prefer}" + (" (a fast response was asked)" if response_time_requirement == "fast" else "")]
        if selection.best is None:
            why.append(f"no model meets every requirement ({len(selection.excluded)} excluded; see selection.excluded)")
        return Recommendation(selection.best, selection, assessed, baseline, tuple(why))

    def get_model_capabilities_matrix(self, provider: str | None = None) -> list[dict[str, Any]]:
        """One row per catalogued model: its limits, each capability (True/False/None) and prices."""
        return [{"model": info.key, "context_window": info.context_window, "max_output_tokens": info.max_output_tokens,
                 **{name: info.supports(name) for name in models.CAPABILITIES},
                 "input_price": info.input_price, "output_price": info.output_price,
                 "retires": info.retires} for info in models.list_models(provider=provider)]


def _output_tokens(length: OutputLength | int) -> int:
    if isinstance(length, bool) or not (isinstance(length, int) and length > 0 or length in _OUTPUT_TOKENS):
        raise InvalidRequestError(f"expected_output_length must be a token count > 0 or one of "
                                  f"{', '.join(_OUTPUT_TOKENS)}, got {length!r}")
    return length if isinstance(length, int) else _OUTPUT_TOKENS[length]


_PAGES = re.compile(r"(\d[\d,]*)\s*-?\s*pages?", re.I)
_REASONING = re.compile(r"\b(prove|proof|reason|analy[sz]e|debug|plan|math|derive|step[- ]by[- ]step|why)\b", re.I)


def _by_rules(task: str) -> ComplexityAssessment:
    """A rule-of-thumb assessment from the task's words: pages (600 tokens each), images, PDFs,
    and reasoning verbs."""
    pages = _PAGES.search(task)
    input_tokens = int(pages[1].replace(",", "")) * 600 if pages else estimate_tokens(task)
    reasoning = bool(_REASONING.search(task))
    lowered = task.lower()
    complexity: Complexity = "complex" if reasoning else "moderate" if input_tokens > 4_000 else "simple"
    return ComplexityAssessment(
        complexity=complexity, needs_reasoning=reasoning,
        needs_vision=any(word in lowered for word in ("image", "photo", "picture", "screenshot", "diagram")),
        needs_pdf="pdf" in lowered, expected_input_tokens=input_tokens,
        expected_output_tokens=600 if complexity != "simple" else 150,
        rationale="rules of thumb (no assessing model given): pages x 600 tokens, reasoning verbs, file kinds named")
