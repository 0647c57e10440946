"""Provider usage and cost reports (organisation admin keys), and their reconciliation with ours.

- `types.py`            `UsageBucket` and `CostBucket`: one grouped result of a report's time bucket
- `admin_http.py`       what the admin clients share: the key, one classified GET, every page
- `openai_admin.py`     `OpenAIAdmin`: `/v1/organization/usage/completions`, `/v1/organization/costs`
                        (OPENAI_ADMIN_KEY)
- `anthropic_admin.py`  `AnthropicAdmin`: `/v1/organizations/usage_report/messages`,
                        `/v1/organizations/cost_report` (ANTHROPIC_ADMIN_KEY)
- `local.py`            our side: the telemetry store, or a file of dumped `Response`s
- `reconcile.py`        `reconcile()`: ours beside theirs per UTC day x model, differences flagged
- `cli.py`              `llmclient costs reconcile ...`

    from datetime import date
    from llmclient.billing import OpenAIAdmin, reconcile

    OpenAIAdmin().costs(date(2026, 3, 1), date(2026, 3, 8))      # [CostBucket(...), ...], every page
    result = reconcile("openai", date(2026, 3, 2), date(2026, 3, 8))
    [row for row in result.rows if row.flagged]
"""

from llmclient.billing.anthropic_admin import AnthropicAdmin
from llmclient.billing.local import (
    LocalRecord,
    LocalRecords,
    from_responses,
    from_telemetry,
)
from llmclient.billing.openai_admin import OpenAIAdmin
from llmclient.billing.reconcile import (
    DEFAULT_THRESHOLD,
    Ours,
    Reconciliation,
    Reports,
    Row,
    Theirs,
    Totals,
    compare,
    reconcile,
)
from llmclient.billing.types import BucketWidth, CostBucket, UsageBucket

__all__ = [
    "DEFAULT_THRESHOLD", "AnthropicAdmin", "BucketWidth", "CostBucket", "LocalRecord", "LocalRecords", "OpenAIAdmin",
    "Ours", "Reconciliation", "Reports", "Row", "Theirs", "Totals", "UsageBucket", "compare", "from_responses",
    "from_telemetry", "reconcile",
]
