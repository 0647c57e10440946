"""The progress bar of a batch: tqdm on stderr when stderr is a terminal (or `progress=True`),
nothing with `progress=False`. tqdm is imported only when a bar is shown."""

from __future__ import annotations

import importlib
import sys
from typing import Any


class Progress:
    """Items done out of `total`, with the provider's counts beside them."""

    def __init__(self, total: int, enabled: bool | None, description: str) -> None:
        shown = enabled if enabled is not None else _terminal()
        self._bar: Any = None
        if shown:
            tqdm = importlib.import_module("tqdm").tqdm
            self._bar = tqdm(total=total, desc=description, unit="req", file=sys.stderr, dynamic_ncols=True, leave=True)

    def done(self, count: int) -> None:
        """`count` items are done (answered or failed), in all."""
        if self._bar is not None and count != self._bar.n:
            self._bar.n = count
            self._bar.refresh()

    def advance(self, count: int = 1) -> None:
        if self._bar is not None and count:
            self._bar.update(count)

    def counts(self, succeeded: int, errored: int, processing: int, status: str = "") -> None:
        if self._bar is not None:
            said = f"succeeded={succeeded} errored={errored} processing={processing}"
            self._bar.set_postfix_str(f"{status} {said}" if status else said)

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False
