"""Basilica failures as one-line, operator-facing errors with the CLI exit code each maps to.

The SDK raises builtins (400 ValueError, 401/403 PermissionError, 404 KeyError, 409/429/5xx
RuntimeError, network ConnectionError); `classify` turns them into these, never quoting the token.
"""

from __future__ import annotations

import re

# CLI exit codes (documented in docs/operator.md).
EXIT_API = 1  # Basilica refused/failed otherwise (400, 409, unexpected answer)
EXIT_CONFIG = 2  # missing token, malformed BASILICA_* value, bad input
EXIT_NOTHING_AFFORDABLE = 3  # no allowed offering at or under the cap
EXIT_AUTH = 4  # 401/403
EXIT_NOT_FOUND = 5  # 404: unknown offering or rental
EXIT_UNAVAILABLE = 6  # 429/5xx/network/timeout after retries
EXIT_POLICY = 7  # offering outside the allowlist or over the cap


class BasilicaError(Exception):
    """One-line, operator-facing failure with the CLI exit code it maps to."""

    exit_code = EXIT_API

    def __init__(self, message: str, *, retryable: bool = False, exit_code: int | None = None,
                 ambiguous: bool | None = None):
        super().__init__(message)
        self.retryable = retryable
        # Did the request maybe take effect? (timeouts, 5xx, a lost answer.) A 429 is retryable but
        # not ambiguous: the request was refused before anything was done.
        self.ambiguous = retryable if ambiguous is None else ambiguous
        if exit_code is not None:
            self.exit_code = exit_code


class AuthError(BasilicaError):
    exit_code = EXIT_AUTH


class NotFound(BasilicaError):
    exit_code = EXIT_NOT_FOUND


class Unavailable(BasilicaError):
    exit_code = EXIT_UNAVAILABLE


class RateLimited(Unavailable):
    """429: nothing was done; wait and retry."""


class PolicyRefused(BasilicaError):
    exit_code = EXIT_POLICY


class NothingAffordable(BasilicaError):
    exit_code = EXIT_NOTHING_AFFORDABLE


def classify(exc: BaseException, op: str) -> BasilicaError:
    """Map an SDK exception to one clear line; never includes the token."""
    text = _first_line(exc.args[0] if exc.args else exc)
    if isinstance(exc, BasilicaError):
        return exc
    if isinstance(exc, TimeoutError):
        return Unavailable(f"Basilica did not answer in time while trying to {op} ({text})", retryable=True)
    if isinstance(exc, PermissionError):
        if text.startswith("Authentication error"):
            return AuthError(f"Basilica rejected the API token while trying to {op} (401): check BASILICA_API_TOKEN")
        return AuthError(f"Basilica refused to {op} (403: {text}): check the scopes of BASILICA_API_TOKEN")
    if isinstance(exc, KeyError):
        return NotFound(f"Basilica could not {op}: {text.removeprefix('Not found: ')} (404)")
    if isinstance(exc, ValueError):
        return BasilicaError(f"Basilica rejected the request to {op} (400): {text}")
    if isinstance(exc, ConnectionError):
        if "decoding response body" in text:
            return BasilicaError(f"Basilica's answer to {op} is not what this SDK expects: {text}")
        return Unavailable(f"cannot reach Basilica to {op}: {_short_net(text)}", retryable=True)
    if isinstance(exc, RuntimeError):
        return _classify_runtime(text, op)
    return BasilicaError(f"unexpected error while trying to {op}: {type(exc).__name__}: {text}")


def _classify_runtime(text: str, op: str) -> BasilicaError:
    if text.startswith("Conflict"):
        return BasilicaError(f"Basilica refused to {op} (409): {text.removeprefix('Conflict: ')}")
    if text == "Rate limit exceeded" or text.startswith("Too many requests") or "rate limit" in text.lower():
        return RateLimited(f"Basilica rate-limited {op} (429); try again shortly", retryable=True, ambiguous=False)
    status = re.match(r"Request failed with status (\d{3})", text)
    if status and status.group(1).startswith("5"):
        return Unavailable(f"Basilica failed to {op} ({status.group(1)}): {text}", retryable=True)
    if status:
        return BasilicaError(f"Basilica refused to {op} ({status.group(1)}): {text}")
    if text.startswith(_TRANSIENT):
        return Unavailable(f"Basilica failed to {op}: {text}", retryable=True)
    if _REFUSAL.search(text):
        # A JSON error body hides the status; these words are a refusal (402 payment, 403 quota,
        # 422 validation), which no retry can mend.
        return BasilicaError(f"Basilica refused to {op}: {text}")
    # Otherwise it could be a 5xx: retry reads (bounded); creates treat it as "maybe done".
    return BasilicaError(f"Basilica failed to {op}: {text}", retryable=True)


# Display prefixes of the server's transient errors (basilica-api `error.rs`, via the SDK's `Internal`,
# `ServiceUnavailable` and `Timeout` variants): the request may or may not have been carried out.
_TRANSIENT = ("Internal server error", "Service temporarily unavailable", "Request timeout", "Timeout",
              "Validator communication", "HTTP client error")
# Words of a refusal whose status a JSON body hid: 402 "Insufficient balance: ...", 422 validation, quotas.
_REFUSAL = re.compile(
    r"insufficient|balance|credit|payment|quota|not allowed|exceed|invalid|unprocessable|must be|required|unsupported",
    re.IGNORECASE)


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0][:300] if lines else ""


def _short_net(text: str) -> str:
    # reqwest's text is long; the URL and the final cause are what an operator needs.
    cause = text.rsplit(": ", 1)[-1]
    url = re.search(r"url \(([^)]+)\)", text)
    return f"{cause} ({url.group(1).split('?')[0]})" if url else cause
