"""`llmclient batch ...`: submit a file of requests as a batch job, read its status, get its results.

    llmclient batch submit FILE.jsonl --model M [--max-concurrency N] [--json]
                                                             one request a line: a JSON string (the
                                                             prompt) or an object of Request.build
                                                             keywords with "prompt" or "messages"
    llmclient batch status JOB [--json]                      the job's provider batches and counts
    llmclient batch results JOB [--wait] [--out FILE] [--json]
                                                             every item in order; --out writes them
                                                             as JSON lines ({"index", "response"} or
                                                             {"index", "error"})

Every command takes --dir DIR (default: LLMCLIENT_BATCH_DIR, else ~/.cache/llmclient/batches).
OpenAI and Anthropic jobs run on their batch APIs (results within 24 hours, at batch prices); other
providers' run at submit, as concurrent calls. Exit 0 when every item answered (results) or the
command succeeded; 1 when an item failed or the job has not ended (results without --wait); 2 on
an error (no key, unknown job).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from llmclient.cli_text import decimal_text, jsonable, table

if TYPE_CHECKING:
    from llmclient.batches.result import BatchResult, BatchStatus


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser("batch", help="batch jobs: submit a file of requests, read status, get results",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = batch.add_subparsers(required=True, metavar="ACTION")

    submit = actions.add_parser("submit", help="submit FILE.jsonl as a batch job and print its id")
    submit.add_argument("file", type=Path, metavar="FILE.jsonl")
    submit.add_argument("--model", required=True, help="provider/model, or a profile of the configuration")
    submit.add_argument("--max-concurrency", type=int, default=8, metavar="N",
                        help="calls at once on a provider without a batch API (default 8)")
    _common(submit)
    submit.set_defaults(run=_submit)

    status = actions.add_parser("status", help="where a job stands")
    status.add_argument("job_id", metavar="JOB")
    _common(status)
    status.set_defaults(run=_status)

    results = actions.add_parser("results", help="a job's results, in the order submitted")
    results.add_argument("job_id", metavar="JOB")
    results.add_argument("--wait", action="store_true", help="wait for the job to end (else exit 1 if it has not)")
    results.add_argument("--poll-interval", type=float, default=30.0, metavar="SECONDS",
                         help="seconds between two status reads while waiting (default 30)")
    results.add_argument("--out", type=Path, metavar="FILE", help="write the items to FILE as JSON lines")
    _common(results)
    results.set_defaults(run=_results)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=None, help="the batch job directory (default: LLMCLIENT_BATCH_DIR)")
    parser.add_argument("--json", action="store_true", help="machine-readable output; dollars as decimal strings")


def _submit(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.batches.run import submit_batch
    from llmclient.client import Client

    items = _read_items(args.file)
    with Client(args.model) as client:
        job = submit_batch(client, items, job_dir=args.dir, max_concurrency=args.max_concurrency,
                           progress=None if not args.json else False)
        status = job.status(refresh=False)
    if args.json:
        out.write(json.dumps({"job_id": job.job_id, **_status_json(status)}, default=jsonable) + "\n")
    else:
        out.write(f"{job.job_id}  {len(items)} request(s) to {status.model}: {status.summary()}\n")
        if status.split:
            out.write(f"{status.split}\n")
        out.write(f"llmclient batch status {job.job_id}\nllmclient batch results {job.job_id} --wait\n")
    return 0


def _status(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.batches.run import batch_status

    status = batch_status(args.job_id, job_dir=args.dir)
    if args.json:
        out.write(json.dumps(_status_json(status), default=jsonable) + "\n")
        return 0
    out.write(f"{status.job_id}  {status.model}  {status.summary()}\n")
    rows = [[str(part.index), part.batch_id or "-", part.status, str(part.requests), str(part.succeeded),
             str(part.errored), str(part.processing), "yes" if part.fetched else "no"] for part in status.parts]
    for line in table(["part", "batch", "status", "requests", "succeeded", "errored", "processing", "fetched"], rows):
        out.write(line + "\n")
    if status.refused:
        out.write(f"{status.refused} item(s) refused before sending\n")
    if status.split:
        out.write(f"{status.split}\n")
    return 0


def _results(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.batches.job import BatchJob
    from llmclient.batches.run import batch_results
    from llmclient.errors import BatchError

    written = _Output(args.out) if args.out is not None else None  # refused before anything is fetched
    try:
        try:
            result = batch_results(args.job_id, wait=args.wait, poll_interval=args.poll_interval, job_dir=args.dir,
                                   progress=None if not args.json else False)
        except BatchError as error:
            if error.reason != "unfinished" or args.wait:
                raise
            status = BatchJob.open(args.job_id, job_dir=args.dir).status(refresh=False)  # as just read
            if args.json:
                out.write(json.dumps({"ended": False, **_status_json(status)}, default=jsonable) + "\n")
            else:
                out.write(f"{args.job_id} has not ended: {status.summary()} (pass --wait to wait for it)\n")
            return 1
        items = [_item_json(index, item) for index, item in enumerate(result.items)]
        if written is not None:
            written.write("".join(json.dumps(item, default=jsonable, ensure_ascii=False) + "\n" for item in items))
    finally:
        if written is not None:
            written.discard()
    if args.json:
        out.write(json.dumps({"job_id": result.job_id, "ended": True, **_totals(result), "items": items},
                             default=jsonable, ensure_ascii=False) + "\n")
    else:
        rows = [[str(index), "ok" if "response" in item else item["error"]["type"], _excerpt(item)]
                for index, item in enumerate(items)]
        for line in table(["item", "outcome", "answer"], rows, "rll"):
            out.write(line + "\n")
        totals = _totals(result)
        cost = "unknown" if totals["cost"] is None else f"${totals['cost']}"
        out.write(f"{len(result.answered)} answered, {len(result.errors)} failed; {totals['usage']['input_tokens']} "
                  f"input + {totals['usage']['output_tokens']} output tokens; cost {cost}\n")
        if args.out is not None:
            out.write(f"wrote {args.out}\n")
    return 0 if result.ok else 1


def _read_items(path: Path) -> list[Any]:
    from llmclient.errors import ConfigurationError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        row = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigurationError(f"{path}:{row}: not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
                                 f"the requests file is JSON lines in UTF-8") from exc
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except ValueError as exc:
            raise ConfigurationError(f"{path}:{number}: not JSON ({exc}); each line is a JSON string (a prompt) or an "
                                     f"object of Request.build keywords with \"prompt\" or \"messages\"") from exc
    if not items:
        raise ConfigurationError(f"{path} holds no request")
    return items


class _Output:
    """The --out file, opened for appending (never truncated) before the results are fetched, so a
    file that cannot be written is refused before any waiting or downloading; written at the end.
    One this made and never wrote is removed."""

    def __init__(self, path: Path) -> None:
        from llmclient.errors import ConfigurationError

        self.path = path
        if path.is_dir():
            raise ConfigurationError(f"--out {path} is a directory: give a file name")
        self._made = not path.exists()
        try:
            open(path, "a", encoding="utf-8").close()
        except OSError as exc:
            raise ConfigurationError(f"--out {path}: cannot write it: {exc.strerror or exc}") from exc

    def write(self, text: str) -> None:
        from llmclient.errors import ConfigurationError

        try:
            self.path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"--out {self.path}: {exc.strerror or exc} (the results are kept in the job: ask "
                                     f"for them again)") from exc
        self._made = False

    def discard(self) -> None:
        if self._made:
            self.path.unlink(missing_ok=True)
            self._made = False


def _status_json(status: BatchStatus) -> dict[str, Any]:
    return {"model": status.model, "kind": status.kind, "ended": status.ended, "total": status.total,
            "succeeded": status.succeeded, "errored": status.errored, "processing": status.processing,
            "refused": status.refused, "split": status.split,
            "batches": [{"batch_id": part.batch_id, "status": part.status, "state": part.state, "requests": part.requests,
                         "succeeded": part.succeeded, "errored": part.errored, "processing": part.processing,
                         "fetched": part.fetched} for part in status.parts]}


def _item_json(index: int, item: Any) -> dict[str, Any]:
    from llmclient.types import Response

    if isinstance(item, Response):
        return {"index": index, "response": item.model_dump(mode="json")}
    return {"index": index, "error": {"type": type(item).__name__, "message": item.message,
                                      "status_code": item.status_code, "reason": getattr(item, "reason", None)}}


def _totals(result: BatchResult) -> dict[str, Any]:
    cost = result.cost
    return {"usage": result.usage.model_dump(include={"input_tokens", "output_tokens", "cache_read_tokens",
                                                      "cache_write_tokens", "reasoning_tokens"}),
            "cost": None if cost is None else decimal_text(cost.total)}


def _excerpt(item: dict[str, Any]) -> str:
    text = item["response"]["text"] if "response" in item else item["error"]["message"]
    flat = " ".join(str(text).split())
    return flat if len(flat) <= 60 else flat[:57] + "..."
