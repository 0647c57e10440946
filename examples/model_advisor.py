"""Ask which model to use for a task. With OPENAI_API_KEY set, gpt-4o-mini assesses the task (a
structured call costing a fraction of a cent, reported below); without it the advisor uses its
stated rules of thumb and says so:

    python examples/model_advisor.py
"""

import os

from llmclient import Client, ModelAdvisor

assessor = Client("openai/gpt-4o-mini") if os.environ.get("OPENAI_API_KEY") else None
advisor = ModelAdvisor(client=assessor, include_unkeyed=True)
advice = advisor.recommend_model_for_task("summarise 50-page PDFs", budget_per_request=0.01)

for line in advice.why:
    print("-", line)
if advice.best is not None:
    print(f"recommended: {advice.best.model} at about ${advice.best.estimated_cost} per call")
if advice.baseline is not None and advice.saving is not None:
    print(f"the most capable eligible model, {advice.baseline.model}, would cost ${advice.baseline.estimated_cost}: "
          f"${advice.saving} more per call")
print(f"assessed by {advice.assessment.assessed_by}; the assessment cost "
      f"{'nothing (no model asked)' if advice.assessment.assessed_by == 'rules' else advice.assessment_cost}")
