"""A small async Vast.ai client (httpx): the ten calls a validator needs, nothing else.

Paths and bodies are vast-python's (vastai 1.9.1; file per call below). Retries follow
`vastai/api/client.py` `VastClient._request`: backoff starting at 0.15 s, ×1.5 per try, a
`Retry-After` honoured when present and ≤ 60 s (Vast's 429 normally has none), a
`search_quota_exceeded` 429 never retried. Unlike that client we retry 5xx and lost connections
only on reads and deletes: a create or bid change that may have taken effect is raised as
`ambiguous` so the caller reclaims by label instead of renting twice.

The API key lives in one private attribute and the Authorization header; it is never in a log
line, a repr or an exception text (any server text that echoes it is redacted).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from decimal import Decimal
from typing import Any

import httpx

from subnet.compute.vast.errors import (VastAuthError, VastError, VastNotFound, VastQuotaExceeded,
                                        VastRateLimited)
from subnet.compute.vast.models import OfferQuery, VastInstance, VastOffer, money
from subnet.util.text import one_line

log = logging.getLogger(__name__)

DEFAULT_URL = "https://console.vast.ai/api/v0"
RETRYABLE_5XX = {502, 503, 504}  # `vastai/api/client.py` _RETRYABLE_STATUS (with 429)
MAX_RETRY_AFTER_S = 60.0  # `_MAX_RETRY_AFTER_SECONDS`
SAFE_TO_REPEAT = {"GET", "DELETE"}
LIST_PAGE = 25  # `vastai/api/instances.py` show_instances: "limit": 25


class VastClient:
    def __init__(self, api_key: str | None, base_url: str | None = None, timeout: float = 30.0, *,
                 retries: int = 4, backoff: float = 0.15) -> None:
        self.base_url = (base_url or os.environ.get("VAST_URL") or DEFAULT_URL).rstrip("/")
        if not self.base_url.endswith("/api/v0"):  # VAST_URL may be the bare server, as in vast-python
            self.base_url += "/api/v0"
        self.root = self.base_url[: -len("/api/v0")]  # the v1 listing lives at <root>/api/v1/
        self.retries = max(1, retries)
        self.backoff = backoff
        self._key = api_key or ""
        headers = {"User-Agent": "subnet-vast/1", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"  # `_build_headers`
        self._http = httpx.AsyncClient(headers=headers, timeout=timeout, follow_redirects=False)

    def __repr__(self) -> str:
        return f"VastClient(base_url={self.base_url!r}, key={'set' if self._key else 'none'})"

    async def __aenter__(self) -> "VastClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- the calls ---------------------------------------------------------------------------

    async def search_offers(self, query: OfferQuery) -> list[VastOffer]:
        """`POST /bundles/` (`vastai/api/offers.py` search_offers), cap in the body and re-checked here."""
        body = await self._call("POST", "/bundles/", json_body=query.to_wire())
        offers = [VastOffer.from_wire(row, query.interruptible) for row in (body or {}).get("offers") or []
                  if isinstance(row, dict)]
        kept = [o for o in offers if o is not None and query.within_cap(o)]
        dropped = len(offers) - len(kept)
        if dropped:
            log.warning("vast: %d offer(s) dropped: over the %s cap of %s or unreadable", dropped,
                        query.price_field, query.max_dph)
        return kept

    async def create_instance(self, offer_id: int, *, image: str, env: dict[str, str] | None = None,
                              price: Decimal | None = None, disk_gb: float = 16.0, label: str | None = None,
                              onstart: str | None = None) -> int:
        """`PUT /asks/{offer_id}/` (`vastai/api/instances.py` build_create_instance_payload): `runtype`
        "args" keeps the image's entrypoint; `price` is the bid (None on demand). → `new_contract`."""
        payload = {"client_id": "me", "image": image, "env": dict(env or {}),
                   "price": float(price) if price is not None else None, "disk": float(disk_gb), "label": label,
                   "extra": None, "onstart": onstart, "image_login": None, "python_utf8": False,
                   "lang_utf8": False, "use_jupyter_lab": False, "jupyter_dir": None, "force": False,
                   "cancel_unavail": True,  # "Return error if scheduling fails (rather than creating a stopped
                   # instance)" (`vastai/cli/commands/instances.py`): no stopped box left to pay for
                   "template_hash_id": None, "user": None, "runtype": "args"}
        body = await self._call("PUT", f"/asks/{int(offer_id)}/", json_body=payload)
        contract = (body or {}).get("new_contract")
        if not (body or {}).get("success") or not isinstance(contract, int):
            raise VastError(200, f"create on offer {offer_id} refused: {self._message(body)}")
        return contract

    async def instance(self, instance_id: int) -> VastInstance | None:
        """`GET /instances/{id}/?owner=me` (`show_instance`): `{"instances": row | null}`; None if gone."""
        try:
            body = await self._call("GET", f"/instances/{int(instance_id)}/", params={"owner": "me"})
        except VastNotFound:
            return None
        row = (body or {}).get("instances")
        if isinstance(row, list):  # older servers answered a one-row list
            row = row[0] if row else None
        return VastInstance.from_wire(row) if isinstance(row, dict) else None

    async def instances(self) -> list[VastInstance]:
        """`GET /api/v1/instances/` paged by `next_token` (`show_instances`, `show_instances_v1`; the v0
        list is deprecated per `vastai/async_/client.py`). Query values are JSON, as `_build_url` sends."""
        params: dict[str, Any] = {"select_filters": {}, "order_by": [{"col": "id", "dir": "asc"}],
                                  "limit": LIST_PAGE}
        found: list[VastInstance] = []
        for _ in range(10_000):  # a server that never stops paging cannot hold us forever
            wire = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
            body = await self._call("GET", f"{self.root}/api/v1/instances/", params=wire) or {}
            found += [VastInstance.from_wire(r) for r in body.get("instances") or [] if isinstance(r, dict)]
            if not body.get("next_token"):
                break
            params["after_token"] = body["next_token"]
        return found

    async def destroy_instance(self, instance_id: int) -> None:
        """`DELETE /instances/{id}/` with `{}` (`destroy_instance`). 404 → VastNotFound."""
        await self._call("DELETE", f"/instances/{int(instance_id)}/", json_body={})

    async def change_bid(self, instance_id: int, price: Decimal) -> None:
        """`PUT /instances/bid_price/{id}/` `{"client_id": "me", "price": p}` (`change_bid`)."""
        await self._call("PUT", f"/instances/bid_price/{int(instance_id)}/",
                         json_body={"client_id": "me", "price": float(price)})

    async def balance(self) -> Decimal:
        """`GET /users/current` (`vastai/api/billing.py` show_user): the account's `credit` (what
        `vastai show user` prints as Credit); `balance` when a server sends only that."""
        body = await self._call("GET", "/users/current") or {}
        value = money(body.get("credit"))
        value = value if value is not None else money(body.get("balance"))
        if value is None:
            raise VastError(200, "the user record carries no credit or balance")
        return value

    # ---- plumbing ----------------------------------------------------------------------------

    async def _call(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None) -> Any:
        url = path if path.startswith("http") else self.base_url + path
        route = f"{method} {httpx.URL(url).path}"
        delay = self.backoff
        for attempt in range(1, self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self._http.request(method, url, json=json_body, params=params)
            except httpx.TransportError as exc:
                if method in SAFE_TO_REPEAT and not last:
                    log.info("vast: %s: %s, retry %d in %.2f s", route, type(exc).__name__, attempt, delay)
                    await asyncio.sleep(delay)
                    delay *= 1.5
                    continue
                raise VastError(0, f"{route}: {type(exc).__name__}: {self._clean(str(exc))}",
                                ambiguous=method not in SAFE_TO_REPEAT) from None
            wait = self._retry_wait(method, response, delay)
            if wait is None or last:
                return self._result(route, response)
            log.info("vast: %s answered %d, retry %d in %.2f s", route, response.status_code, attempt, wait)
            await asyncio.sleep(wait)
            delay *= 1.5
        raise AssertionError("unreachable")  # pragma: no cover

    def _retry_wait(self, method: str, response: httpx.Response, delay: float) -> float | None:
        status = response.status_code
        if status == 429 and not _is_quota(response):
            given = response.headers.get("Retry-After")
            try:
                wait = float(given) if given is not None else delay
            except ValueError:
                wait = delay
            return wait if 0 <= wait <= MAX_RETRY_AFTER_S else None
        if status in RETRYABLE_5XX and method in SAFE_TO_REPEAT:
            return delay
        return None

    def _result(self, route: str, response: httpx.Response) -> Any:
        status = response.status_code
        body = _json(response)
        if status < 300:
            return body
        message = f"{route}: {self._message(body) or one_line(response.text) or response.reason_phrase}"
        if status == 429:
            error = VastQuotaExceeded if _is_quota(response) else VastRateLimited
            raise error(status, message)
        if status in (401, 403):
            raise VastAuthError(status, message)
        if status == 404:
            raise VastNotFound(status, message)
        raise VastError(status, message, ambiguous=status >= 500 and not route.startswith(("GET", "DELETE")))

    def _message(self, body: Any) -> str:
        if not isinstance(body, dict):
            return ""
        parts = [str(body[k]) for k in ("error", "msg") if body.get(k) not in (None, "", True, False)]
        return self._clean(" - ".join(parts))

    def _clean(self, text: str) -> str:
        text = one_line(text)
        return text.replace(self._key, "[redacted]") if self._key else text


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_quota(response: httpx.Response) -> bool:
    """`vastai/api/client.py` is_search_quota_exceeded."""
    body = _json(response)
    return response.status_code == 429 and isinstance(body, dict) and body.get("error") == "search_quota_exceeded"
