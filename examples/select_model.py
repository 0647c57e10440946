"""Pick the cheapest model that can read images and call tools, with a 100K-token window, for calls
of about 3,000 tokens in and 500 out, within $0.002 per call. Runs offline (the catalogue and the
price table ship in the package):

    python examples/select_model.py

Without `include_unkeyed=True` only providers whose key is set are candidates.
"""

from llmclient import select_model

picked = select_model(budget_per_call=0.002, min_context=100_000, capabilities=["vision", "tools"],
                      expected_input_tokens=3_000, expected_output_tokens=500, include_unkeyed=True)

for candidate in picked.ranked[:5]:
    print(f"{candidate.model:<45} ${candidate.estimated_cost}  {candidate.why[0]}")
print(f"{len(picked.ranked)} eligible, {len(picked.excluded)} excluded")
gpt = next(c for c in picked.excluded if c.model == "openai/gpt-4o")
print(f"openai/gpt-4o is out: {'; '.join(gpt.why)}")
