"""`VastTwin`: the Vast.ai API on loopback, whose instances run their images for real.

A created instance's image runs through `subnet/twins/deployment_host.py` `ActorHost` (our process
runtime for env folders, the Docker runtime for images), after the offer's start delay (production
seconds ÷ `time_scale`: the pull and boot). Its state follows the real fields: `actual_status`
"loading" while it starts, "running" once the Actor serves (port 8000 mapped to the Actor's
loopback port as `ports["8000/tcp"][0]["HostPort"]`, `public_ipaddr` 127.0.0.1), "exited" with the
reason in `status_msg` when the image fails. Vast maps only the ports asked for as env keys
`-p 8000:8000` (the issue's Vast facts), and `runtype: "args"` keeps the image's entrypoint: with any
other runtype Vast starts its ssh/jupyter launcher instead (`vastai/api/instances.py` resolve_runtype),
so here the Actor does not start.

Knobs (Python, in process): `outbid(id)` — an interruptible box stopped for a higher bid
(actual_status "exited", intended_status "stopped", status_msg says outbid); `lose_machine(id)` — the
host went offline (actual_status "offline"); `search_quota(n)` — n more searches, then 429
`search_quota_exceeded`; `rate_limit=(n, s)` or `throttle(endpoint, times)` — 429 "API requests too
frequent" per (endpoint, key), no Retry-After. `created` lists what was rented; `requests` what was
asked (bodies only: headers, hence the key, are never kept).

Open facts (the server is not public): the exact status_msg texts, the error codes other than
`search_quota_exceeded`, whether an outbid box shows "exited" or "stopped", and what a bid search
answers as `dph_total` (here: the on-demand price; the instance's `dph_total` is its bid).
"""

from __future__ import annotations

import inspect
import itertools
import threading
import time
from typing import Any, Callable

from subnet.twins.deployment_host import ActorHost, BusyServer
from subnet.twins.vast.offers import TwinOffer, search
from subnet.twins.vast.server import Answer, error, handler_for, route, run_in_thread
from subnet.twins.vast.state import Created, Limits, TwinInstance, wanted_ports

TOO_FREQUENT = (429, {"success": False, "error": "too_many_requests", "msg": "API requests too frequent"})
QUOTA = (429, {"success": False, "error": "search_quota_exceeded",
               "msg": "Daily search quota exceeded; it resets at 00:00 UTC"})
PAGE_MAX = 100


class VastTwin:
    def __init__(self, runtime: Any = None, resolve: Callable[[str], str] | None = None, time_scale: float = 1.0,
                 offers: list[TwinOffer] | None = None, *, api_key: str = "twin-vast-key", credit: float = 100.0,
                 rate_limit: tuple[int, float] | None = None, host: str = "127.0.0.1") -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the Vast twin listens on loopback only")
        self.api_key = api_key
        self.time_scale = time_scale
        self.credit = credit
        self.book: list[TwinOffer] = list(offers or [])
        self.limits = Limits(rate_limit)
        self.created: list[Created] = []
        self.requests: list[dict] = []
        self.instances: dict[int, TwinInstance] = {}
        self.lock = threading.RLock()
        self._resolve = resolve or (lambda image: image)
        self._ids = itertools.count(4_100_001)  # 7 digits: ActorHost names a session by key[:8]
        self._host = ActorHost(_EnvRuntime(runtime, self._actor_env), self._resolve) if runtime else None
        self._server = BusyServer((host, 0), handler_for(self))
        self._thread: threading.Thread | None = None

    # ---- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/api/v0"

    def start(self) -> str:
        if self._thread is None:
            self._thread = run_in_thread(lambda: self._server.serve_forever(0.05), "vast-twin")
        return self.base_url

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._host is not None:
            self._host.close()

    def __enter__(self) -> "VastTwin":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- knobs -------------------------------------------------------------------------------

    def outbid(self, instance_id: int) -> None:
        """A higher bid took the box: Vast stops an interruptible instance (it resumes only if the
        bid is raised and the box frees: we leave it stopped)."""
        self._knock(instance_id, "outbid", "Instance stopped: outbid by a higher bid on this machine")

    def lose_machine(self, instance_id: int) -> None:
        self._knock(instance_id, "offline", "Machine offline: the host stopped reporting")

    def rented_by_another(self, offer_id: int) -> None:
        """Another account rents the box between our search and our create: it leaves searches
        (`rented eq false`, vast-python `vastai/api/offers.py` search defaults) and a create on it
        answers no_such_ask (`_create` below)."""
        with self.lock:
            next(o for o in self.book if o.id == offer_id).row["rented"] = True

    def search_quota(self, searches: int, key: str | None = None) -> None:
        with self.lock:
            if key is None:
                self.limits.quota_all = searches
                self.limits.quota.clear()
            else:
                self.limits.quota[key] = searches

    def throttle(self, endpoint: str, times: int = 1) -> None:
        """The next `times` calls to `endpoint` (e.g. "POST /bundles/") answer 429 too frequent."""
        with self.lock:
            self.limits.throttle(endpoint, times)

    def set_offers(self, offers: list[TwinOffer]) -> None:
        with self.lock:
            self.book = list(offers)

    def instance_row(self, instance_id: int) -> dict | None:
        with self.lock:
            inst = self.instances.get(instance_id)
            return inst.row(self._hosted(inst)) if inst else None

    # ---- requests ----------------------------------------------------------------------------

    def answer(self, method: str, path: str, query: dict, body: Any, auth: str) -> Answer:
        found = route(method, path)
        if found is None:
            return error(404, "not_found", f"no route for {method} {path}")
        endpoint, name, groups = found
        with self.lock:
            self.requests.append({"method": method, "path": path, "endpoint": endpoint, "query": query,
                                  "body": body, "at": time.time()})
            if auth != f"Bearer {self.api_key}":  # `vastai/api/client.py` _build_headers
                return error(401, "auth_error", "Invalid or missing API key")
            if self.limits.too_frequent(endpoint, self.api_key):
                return TOO_FREQUENT
        try:
            return getattr(self, name)(*groups, query=query, body=body)
        except (ValueError, TypeError, KeyError) as exc:
            return error(400, "invalid_args", f"{type(exc).__name__}: {exc}")

    def _search(self, *, query: dict, body: Any) -> Answer:
        if not isinstance(body, dict):
            return error(400, "invalid_args", "the search body is not an object")
        with self.lock:
            if not self.limits.search_allowed(self.api_key):
                return QUOTA
            return 200, {"offers": search(self.book, body)}

    def _create(self, offer_id: str, *, query: dict, body: Any) -> Answer:
        image, env, price = body.get("image"), body.get("env") or {}, body.get("price")
        if not image or not isinstance(env, dict):
            return error(400, "invalid_args", "image and an env object are required")
        pull_error = self._pull_error(str(image))
        with self.lock:
            offer = next((o for o in self.book if o.id == int(offer_id)), None)
            if offer is None or offer.row.get("rented") or not offer.row.get("rentable", True):
                return error(404, "no_such_ask", f"offer {offer_id} is not available")
            if price is not None and (offer.row.get("min_bid") is None or float(price) < float(offer.row["min_bid"])):
                return error(400, "invalid_price", f"bid {price} is under the minimum bid for offer {offer_id}")
            if price is None:
                offer.row["rented"] = True  # on demand: the box is ours (drops out of `rented eq false`)
            inst = self._new_instance(offer, body, {str(k): str(v) for k, v in env.items()}, pull_error)
        if self._host is not None and inst.runs_actor and not inst.pull_error:
            self._host.start(str(inst.id), inst.image, delay=offer.start_s / self.time_scale)
        return 200, {"success": True, "new_contract": inst.id}

    def _new_instance(self, offer: TwinOffer, body: dict, env: dict[str, str], pull_error: str | None) -> TwinInstance:
        bid = float(body["price"]) if body.get("price") is not None else None
        inst = TwinInstance(next(self._ids), offer.id, str(body["image"]), env, body.get("label"), bid,
                            bid if bid is not None else float(offer.row["dph_total"]), wanted_ports(env),
                            start_s=offer.start_s, runs_actor=body.get("runtype") == "args", pull_error=pull_error)
        self.instances[inst.id] = inst
        self.created.append(Created(offer.id, inst.price, inst.label, tuple(sorted(env))))
        return inst

    def _show(self, instance_id: str, *, query: dict, body: Any) -> Answer:
        return 200, {"instances": self.instance_row(int(instance_id))}  # show_instance: None when gone

    def _list(self, *, query: dict, body: Any) -> Answer:
        limit = max(1, min(int(query.get("limit") or 25), PAGE_MAX))
        after = int(query.get("after_token") or 0)
        with self.lock:
            ids = sorted(i for i in self.instances if i > after)
            rows = [self.instances[i].row(self._hosted(self.instances[i])) for i in ids[:limit]]
            total = len(self.instances)
        more = len(ids) > limit
        return 200, {"instances": rows, "next_token": str(rows[-1]["id"]) if more else None,
                     "total_instances": total}

    def _destroy(self, instance_id: str, *, query: dict, body: Any) -> Answer:
        with self.lock:
            inst = self.instances.pop(int(instance_id), None)
            if inst is None:
                return error(404, "no_such_instance", f"instance {instance_id} not found")
            if inst.price is None:
                for offer in self.book:
                    if offer.id == inst.offer_id:
                        offer.row["rented"] = False
        if self._host is not None:
            self._host.stop(str(inst.id))
        return 200, {"success": True}

    def _change_bid(self, instance_id: str, *, query: dict, body: Any) -> Answer:
        with self.lock:
            inst = self.instances.get(int(instance_id))
            if inst is None:
                return error(404, "no_such_instance", f"instance {instance_id} not found")
            if inst.price is None:
                return error(400, "not_a_bid", f"instance {instance_id} is on demand")
            inst.price = inst.dph_total = float(body["price"])
        return 200, {"success": True}

    def _user(self, *, query: dict, body: Any) -> Answer:
        return 200, {"id": 1, "username": "twin", "email": "twin@vast.invalid", "credit": self.credit,
                     "balance": 0.0, "has_billing": True}

    # ---- internals ---------------------------------------------------------------------------

    def _hosted(self, inst: TwinInstance) -> Any:
        if self._host is not None and inst.runs_actor and not inst.pull_error:
            return self._host.status(str(inst.id))
        started = (time.time() - inst.start_date) * self.time_scale >= inst.start_s
        if not started:
            return _Simulated("starting")
        return _Simulated("failed", inst.pull_error) if inst.pull_error else _Simulated("running")

    def _knock(self, instance_id: int, how: str, msg: str) -> None:
        with self.lock:
            inst = self.instances[instance_id]
            if how == "outbid" and inst.price is None:
                raise ValueError(f"instance {instance_id} is on demand: only a bid can be outbid")
            inst.knocked, inst.knocked_msg = how, msg
        if self._host is not None:
            self._host.stop(str(instance_id))

    def _actor_env(self, session_name: str) -> dict[str, str]:
        """The instance's env as the container sees it: docker options (`-p ...`) are not variables."""
        with self.lock:
            for inst in self.instances.values():
                if session_name == f"twin-{str(inst.id)[:8]}":
                    return {k: v for k, v in inst.env.items() if not k.startswith("-")}
        return {}

    def _pull_error(self, image: str) -> str | None:
        """An image `resolve` does not know is one the registry lacks: the text `docker pull` prints."""
        if self._host is None:
            return None
        try:
            self._resolve(image)
        except (KeyError, LookupError):
            return f"Error response from daemon: manifest for {image} not found: manifest unknown"
        return None


class _Simulated:
    """Host-less mode (offers and billing only): the instance 'runs' after its start delay, nothing listens."""

    def __init__(self, state: str, error: str | None = None) -> None:
        self.state, self.url, self.error = state, None, error


class _EnvRuntime:
    """Passes each instance's env to the runtime when its `open` takes `environment=` (so a per-instance
    token reaches the Actor as on Vast); a runtime without it opens the Actor as it always does."""

    def __init__(self, inner: Any, env_of: Callable[[str], dict[str, str]]) -> None:
        self.inner, self.env_of = inner, env_of
        self.takes_env = "environment" in inspect.signature(inner.open).parameters

    def open(self, submission: Any) -> Any:
        env = self.env_of(submission.hotkey)
        return self.inner.open(submission, environment=env) if self.takes_env and env else self.inner.open(submission)
