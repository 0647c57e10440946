"""How long a provider asks us to wait: Retry-After (seconds or an HTTP date in any of its three
forms), the rate-limit reset headers (OpenAI-style durations, Anthropic's RFC 3339 times), a
`RetryInfo` detail in the body, or "try again in 1m30s" in the message. A wait that is not a
finite, sensible number of seconds is None (or 0 for one already past), never NaN.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

_RETRY_IN_TEXT = re.compile(
    r"(?:try again|retry) in (?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s|(?P<ms>\d+(?:\.\d+)?)ms)?",
    re.IGNORECASE,
)


def retry_after_from(headers: Mapping[str, str], payload: Any = None, message: str = "") -> float | None:
    """Seconds to wait, from `retry-after-ms`, `Retry-After` (seconds or HTTP date), the body's
    RetryInfo (Gemini) or a "try again in 1m2.5s" message; None when nothing says. A wait is
    always a finite number >= 0: NaN or infinity say nothing (None), a negative or past wait is 0."""
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = _seconds(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    if "retry-after" in lowered:
        value = lowered["retry-after"].strip()
        seconds = _seconds(value) if not value.startswith("-") else None  # delay-seconds is digits: "-5" says nothing
        if seconds is not None:
            return seconds
        try:
            when = parsedate_to_datetime(value)
            if when.tzinfo is None:  # the asctime form has no zone, and every HTTP-date is GMT (RFC 9110 §5.6.7)
                when = when.replace(tzinfo=timezone.utc)
            return _clamped(when.timestamp() - time.time())
        except (TypeError, ValueError, OverflowError):
            pass
    from_body = _retry_delay_in_body(payload)
    if from_body is not None:
        return from_body
    match = _RETRY_IN_TEXT.search(message)
    if match and any(match.groupdict().values()):
        return _clamped(_hms_seconds(match))
    return _exhausted_bucket_reset(lowered)


def _clamped(seconds: float) -> float | None:
    """A wait as a finite number >= 0 (negative -> 0), or None when it is NaN or infinite."""
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _seconds(value: Any) -> float | None:
    """Seconds given as text or a JSON number, clamped; None when `value` is no number."""
    try:
        return _clamped(float(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except (ValueError, OverflowError):
        return None


def _hms_seconds(match: re.Match[str]) -> float:
    """Seconds from a match with optional h / m / s / ms groups ("1m2.5s", "250ms")."""
    parts = {name: float(value or 0) for name, value in match.groupdict().items()}
    return parts["h"] * 3600 + parts["m"] * 60 + parts["s"] + parts["ms"] / 1000


_GO_DURATION = re.compile(r"(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?(?:(?P<ms>\d+(?:\.\d+)?)ms)?")


def _duration_seconds(value: str) -> float | None:
    """"23.04" (seconds), or a Go-style duration like "1m2.5s" / "250ms" (OpenAI, Groq)."""
    value = value.strip()
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    match = _GO_DURATION.fullmatch(value)
    return _clamped(_hms_seconds(match)) if value and match else None


def _exhausted_bucket_reset(lowered: Mapping[str, str]) -> float | None:
    """Without Retry-After, the reset of the rate-limit bucket that ran out
    (`x-ratelimit-remaining-<bucket>: 0` with `x-ratelimit-reset-<bucket>`, a duration: Cerebras,
    OpenAI, Groq; `anthropic-ratelimit-<bucket>-remaining: 0` with `anthropic-ratelimit-<bucket>-reset`,
    an RFC 3339 time: Anthropic). A bucket with capacity left (a daily one, say) is not what the
    caller waits for."""
    waits = []
    for name, remaining in lowered.items():
        if remaining.strip() not in ("0", "0.0"):
            continue
        wait = None
        if name.startswith("x-ratelimit-remaining-"):
            reset = lowered.get("x-ratelimit-reset-" + name.removeprefix("x-ratelimit-remaining-"))
            wait = _duration_seconds(reset) if reset is not None else None
        elif name.startswith("anthropic-ratelimit-") and name.endswith("-remaining"):
            reset = lowered.get(name.removesuffix("-remaining") + "-reset")
            wait = _until(reset) if reset is not None else None
        if wait is not None:
            waits.append(wait)
    return max(waits) if waits else None


def _until(moment: str) -> float | None:
    """Seconds from now to an RFC 3339 time ("2026-12-05T10:50:41Z"); None when it is not one."""
    try:
        when = datetime.fromisoformat(moment.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None  # a time without its offset could be any zone's
    return _clamped(when.timestamp() - time.time())


def _retry_delay_in_body(payload: Any) -> float | None:
    if isinstance(payload, list) and payload:
        payload = payload[0]
    err = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(err, dict):
        return None
    details = err.get("details")
    for detail in details if isinstance(details, list) else []:
        delay = detail.get("retryDelay") if isinstance(detail, dict) else None
        if isinstance(delay, str) and delay.endswith("s"):
            return _seconds(delay[:-1])
    metadata = err.get("metadata")
    value = metadata.get("retry_after") if isinstance(metadata, dict) else None
    return _seconds(value) if isinstance(value, (int, float)) else None
