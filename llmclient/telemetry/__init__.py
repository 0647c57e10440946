"""Telemetry: what every call did, kept and shown.

- `context.py`  the call's context (`agent=`, `operation=`, `session=`, `user=`; `llmclient.context()`)
- `observe.py`  one `Observation` per public call: timing, retries, outcome; hands it to the
                logger, the hooks, the running totals, OpenTelemetry and the store
- `hooks.py`    `on_request`, `on_response`, `on_error`, `on_retry` callables (global or per client)
- `totals.py`   `llmclient.track()`: usage and cost summed over the calls inside
- `record.py`   an observation as the store's JSON line (built on the writer thread, never the call's)
- `store.py`    the JSONL store: day folders, a writer thread, rotation, retention, summary.json
- `otel.py`     OpenTelemetry spans (GenAI semantic conventions) when `opentelemetry-api` is installed
- `query.py`, `export.py`, `report_html.py`, `cli.py`: `llmclient telemetry ...` on DuckDB

The record (one JSON object per line of `<dir>/<YYYY-MM-DD>/telemetry.jsonl`, UTC days) is
documented field by field in `record.py` (`SCHEMA_VERSION`).
"""
