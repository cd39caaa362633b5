"""Vast.ai failures as one-line errors that never carry the API key.

Status handling follows vast-python (vastai 1.9.1) `vastai/api/client.py`: 429 is rate limiting
(`_RETRYABLE_STATUS`), and a 429 whose JSON body is `{"error": "search_quota_exceeded"}` is the
daily search quota (`is_search_quota_exceeded`: "only resets at UTC midnight, so retrying it just
burns requests"). Error bodies carry `msg` and/or `error` (`vastai/cli/main.py` reads
`e.response.json().get("msg")`; `vastai/async_/client.py` create: `data.get('error')`, `data.get('msg')`).
"""

from __future__ import annotations

from subnet.compute.errors import EXIT_API, EXIT_AUTH, EXIT_NOT_FOUND, EXIT_UNAVAILABLE


class VastError(Exception):
    """A refused or failed Vast call. `status` is the HTTP status (0: no answer reached us).
    `ambiguous`: the request may have taken effect (a create that timed out may have rented a box:
    the caller reclaims by label rather than assume nothing happened)."""

    exit_code = EXIT_API

    def __init__(self, status: int, message: str, *, ambiguous: bool = False) -> None:
        super().__init__(f"vast: {message}" + (f" (HTTP {status})" if status else ""))
        self.status = status
        self.message = message
        self.ambiguous = ambiguous


class VastAuthError(VastError):
    """401/403: the key is missing, wrong or lacks the permission."""

    exit_code = EXIT_AUTH


class VastNotFound(VastError):
    """404: no such instance/offer. For a destroy this is proof the instance is gone."""

    exit_code = EXIT_NOT_FOUND


class VastRateLimited(VastError):
    """429 "API requests too frequent" still answered after the client's retries."""

    exit_code = EXIT_UNAVAILABLE


class VastQuotaExceeded(VastError):
    """429 `search_quota_exceeded`: the daily search quota; never retried (resets at UTC midnight)."""

    exit_code = EXIT_UNAVAILABLE
