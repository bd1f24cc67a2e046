"""Shared pieces for turning an SDK's exceptions into protokit's classified errors."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from protokit.errors import (
    AuthError,
    BadRequestError,
    ContentFilterError,
    ProviderError,
    RateLimitError,
    ServerError,
    safe_text,
)

__all__ = ["ERROR_TYPE_STATUS", "body_message", "by_status", "refused", "retry_after", "status_of_body"]

# The HTTP status each provider error ``type`` stands for: Anthropic's types, and OpenAI's where they
# differ. Needed where an error arrives without a status of its own: an error event in a stream that
# began with 200, a failed request inside a batch.
ERROR_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
    "server_error": 500, "rate_limit_exceeded": 429, "insufficient_quota": 429, "invalid_api_key": 401,
}


def body_message(body: object, fallback: str) -> str:
    """The ``error.message`` of a provider's error body (both providers nest it so), else ``fallback``."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return fallback


def refused(model: str, why: str) -> ContentFilterError:
    """The model declined to answer (OpenAI's ``refusal``, Anthropic's ``refusal`` stop reason), saying ``why``."""
    why = " ".join(safe_text(why).split())
    return ContentFilterError(f"{model}: the model refused ({why:.120}); rephrase the prompt" if why else
                              f"{model}: the model refused on content grounds; rephrase the prompt", model=model)


def status_of_body(body: object, default: int = 500) -> int:
    """The status an error body's ``type`` (or ``code``) stands for, nested under ``error`` or not."""
    err = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(err, dict):
        for field in ("type", "code"):
            found = ERROR_TYPE_STATUS.get(str(err.get(field) or ""))
            if found is not None:
                return found
    return default


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def by_status(status: int, message: str, model: str, headers: Mapping[str, str] | None,
              key_env_var: str) -> ProviderError:
    """The classified error for an HTTP status, with a message that says the fix."""
    # Redacted before it is shortened: a body may quote the key sent, and half a key is not key-shaped.
    message = safe_text(message)
    detail = message.strip().splitlines()[0][:200] if message.strip() else f"HTTP {status}"
    if status in (401, 403):
        return AuthError(
            f"{model}: the provider rejected the key ({status}: {detail}); check {key_env_var}",
            status=status, model=model)
    if status == 429:
        return RateLimitError(
            f"{model}: rate limited (429: {detail}); protokit retries with backoff, "
            "lower concurrency= if it persists", model=model, retry_after=retry_after(headers))
    if status >= 500:
        return ServerError(f"{model}: provider error ({status}: {detail}); retried, try again later",
                           status=status, model=model)
    if "content" in detail.lower() and ("filter" in detail.lower() or "policy" in detail.lower()):
        return ContentFilterError(f"{model}: refused on content grounds ({detail}); rephrase the prompt",
                                  status=status, model=model)
    return BadRequestError(f"{model}: the request was rejected ({status}: {detail}); check the model name "
                           "and options", status=status, model=model)
