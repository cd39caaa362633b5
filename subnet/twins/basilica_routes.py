"""The Basilica twin's API routes: (method, path regex, handler(state, match, query, body) → (status, payload)).

Paths and JSON are the real API's (see `basilica_twin.py` and `basilica_deployments.py` for sources).
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from typing import Any

from subnet.twins.basilica_deployments import TwinDeployment, new_deployment, validate
from subnet.twins.twin_state import TwinError, TwinState, _public, invalid_request, now_iso


# ---- API routes: (method, path regex, handler(state, match, query, body) -> (status, payload)) ------


def _gpu_prices(st: TwinState, m, q: dict, body) -> tuple[int, Any]:
    nodes = [o for o in st.offerings if o["availability"] or q.get("available_only") != "true"]
    if q.get("spot_only") == "true":
        nodes = [o for o in nodes if o["is_spot"]]
    if q.get("exclude_spot") == "true":
        nodes = [o for o in nodes if not o["is_spot"]]
    return 200, {"nodes": nodes, "count": len(nodes)}


def _list_rentals(st: TwinState, m, q, body) -> tuple[int, Any]:
    rentals = [_public(r) for r in st.rentals.values()]
    return 200, {"rentals": rentals, "total_count": len(rentals)}


def _start_rental(st: TwinState, m, q, body: dict) -> tuple[int, Any]:
    offer = next((o for o in st.offerings if o["id"] == body.get("offering_id") and o["availability"]), None)
    if offer is None:
        raise TwinError(404, f"Offering {body.get('offering_id')} not found or unavailable")
    if not st.ssh_key or body.get("ssh_public_key_id") != st.ssh_key["id"]:
        raise TwinError(400, "ssh_public_key_id does not name your registered SSH key")
    name = body.get("name")
    if name and any(r["name"] == name and r["status"] == "running" for r in st.rentals.values()):
        raise TwinError(409, f"A rental named {name} already exists")
    r = st.add_rental(offer, name=name)
    return 200, {"name": r["name"], "rental_id": r["rental_id"], "deployment_id": f"dep-{r['rental_id'][:8]}",
                 "provider": r["provider"], "status": r["status"], "ip_address": r["ip_address"],
                 "ssh_command": r["ssh_command"], "hourly_cost": r["hourly_cost"], "is_spot": r["is_spot"]}


def _stop_rental(st: TwinState, m, q, body) -> tuple[int, Any]:
    ref = m.group(1)
    r = st.rentals.get(ref) or next((r for r in st.rentals.values() if r["name"] == ref), None)
    if r is None or r["status"] != "running":
        raise TwinError(404, f"Rental {ref} not found")
    hours = (time.time() - r["_started"]) / 3600
    r.update(status="stopped", stopped_at=now_iso(), accumulated_cost=f"{r['hourly_cost'] * hours:.6f}")
    return 200, {"name": r["name"], "rental_id": r["rental_id"], "status": "stopped",
                 "duration_hours": hours, "total_cost": round(r["hourly_cost"] * hours, 6)}


def _get_ssh_key(st: TwinState, m, q, body) -> tuple[int, Any]:
    return 200, st.ssh_key


def _register_ssh_key(st: TwinState, m, q, body: dict) -> tuple[int, Any]:
    if st.ssh_key:
        raise TwinError(409, "An SSH key is already registered")
    if not str(body.get("public_key", "")).startswith(("ssh-", "ecdsa-")):
        raise TwinError(400, "public_key is not an OpenSSH public key")
    st.ssh_key = {"id": str(uuid.uuid4()), "user_id": "twin-user", "name": body.get("name", ""),
                  "public_key": body["public_key"], "created_at": now_iso(), "updated_at": now_iso()}
    return 201, st.ssh_key


def _delete_ssh_key(st: TwinState, m, q, body) -> tuple[int, Any]:
    st.ssh_key = None
    return 204, b""


def _balance(st: TwinState, m, q, body) -> tuple[int, Any]:
    return 200, {"balance": st.balance, "last_updated": now_iso()}


def _usage(st: TwinState, m, q, body) -> tuple[int, Any]:
    """SRV `api/routes/billing.rs` 116-190: rental-centric usage records (active rentals only); `limit`
    defaults to 50 and above 100 is `BadRequest` ("Limit cannot exceed 100", 127-131). Deployments appear
    only when a test sets `bill_deployments` (whether today's server bills them here is open)."""
    if int(q.get("limit", 50) or 50) > 100:
        raise TwinError(400, "Bad request: Limit cannot exceed 100", "BASILICA_API_BAD_REQUEST")
    records = [{"rental_id": r["rental_id"], "node_id": r["provider_instance_id"], "status": r["status"],
                "hourly_rate": str(r["hourly_cost"]), "current_cost": r["accumulated_cost"],
                "start_time": r["created_at"], "last_updated": now_iso()} for r in st.rentals.values()]
    records += [{"rental_id": dep_id, "node_id": "twin-node", "status": "stopped", "hourly_rate": str(rate),
                 "current_cost": str(cost), "start_time": now_iso(), "last_updated": now_iso()}
                for dep_id, (rate, cost) in st.billed.items()]
    offset, limit = int(q.get("offset", 0) or 0), int(q.get("limit", 50) or 50)
    return 200, {"rentals": records[offset:offset + limit], "total_count": len(records)}


def _health(st: TwinState, m, q, body) -> tuple[int, Any]:
    return 200, {"status": "healthy", "version": "twin", "timestamp": now_iso(),
                 "healthy_validators": 1, "total_validators": 1}


def _create_deployment(st: TwinState, m, q, body: dict) -> tuple[int, Any]:
    """SRV handlers.rs `create_deployment`: the name maps to a UUID stable per (user, name); a live
    deployment of that name is returned as it is (200, no second deployment, new body ignored); a
    deleted one is reactivated under the same UUID (200); otherwise a new one (201)."""
    problem = validate(body)
    if problem:
        raise invalid_request(problem)
    known = st.ids_by_name.get(body["instanceName"])
    if known in st.deployments:
        return 200, st.detail(st.deployments[known])
    d = new_deployment(body, st.deployment_url, st.nodes, now_iso(), dep_id=known,
                       fate=st.fate_for(body["instanceName"]), share_tokens=st.generation.share_tokens)
    st.deployments[d.id] = d
    st.ids_by_name[d.friendly_name] = d.id
    if st.host is not None and d.node is not None:
        # The deployment's `env` reaches its container (SDK: basilica/_basilica.pyi,
        # CreateDeploymentRequest(env: Optional[Mapping[str, str]]), sent as the request's `env`).
        st.host.start(d.id, body["image"], delay=d.fate.schedule_s + d.fate.pull_s, env=body.get("env") or {})
    return (200 if known else 201), st.detail(d, with_token=True)


def _deployment(st: TwinState, dep_id: str) -> TwinDeployment:
    if dep_id not in st.deployments:  # by UUID only: a friendly name is not an id (handlers.rs 920-925)
        raise TwinError(404, "Deployment not found")
    return st.deployments[dep_id]


def _deployment_events(st: TwinState, m, q, body) -> tuple[int, Any]:
    """SRV handlers.rs 1381-1412: the newest `limit` (default 10) events of the deployment's current pods."""
    d = _deployment(st, m.group(1))
    return 200, {"events": st.events(d, int(q.get("limit", 10) or 10))}


def _get_deployment(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = _deployment(st, m.group(1))
    d.polls += 1
    return 200, st.detail(d)


def _list_deployments(st: TwinState, m, q, body) -> tuple[int, Any]:
    views = [st.summary(d) for d in st.deployments.values()]
    return 200, {"deployments": views, "total": len(views)}


def _delete_deployment(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = st.deployments.pop(_deployment(st, m.group(1)).id)
    if st.bill_deployments:
        hours = (time.monotonic() - d.born) / 3600
        st.billed[d.id] = (st.bill_deployments, f"{float(st.bill_deployments) * hours:.6f}")
    if st.host is not None:
        threading.Thread(target=st.host.stop, args=(d.id,), daemon=True).start()
    return 200, {"instanceName": d.id, "state": "Terminating", "message": "Deployment deletion initiated"}


def _regenerate_share_token(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = _deployment(st, m.group(1))
    if not st.generation.share_tokens:  # SRV has no such route (api/mod.rs 78-95): axum's plain 404
        return 404, ""
    if not d.private:
        raise TwinError(400, "Deployment is public: it has no share token")
    d.share_token = secrets.token_urlsafe(16)
    return 200, {"token": d.share_token, "shareUrl": f"{d.url}?token={d.share_token}"}


def _deployment_logs(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = _deployment(st, m.group(1))
    hosted = st.host.status(d.id) if st.host is not None else None
    lines = d.logs + ([hosted.error] if hosted is not None and hosted.error else [])
    tail = int(q.get("tail", 0) or 0)
    return 200, "\n".join(lines[-tail:] if tail else lines) + "\n"


_SEG = r"([^/]+)"
ROUTES = [
    ("GET", r"/health", _health),
    ("GET", r"/v2/secure-cloud/gpu-prices", _gpu_prices),
    ("GET", r"/v2/secure-cloud/rentals", _list_rentals),
    ("POST", r"/v2/secure-cloud/rentals/start", _start_rental),
    ("POST", rf"/v2/secure-cloud/rentals/{_SEG}/stop", _stop_rental),
    ("GET", r"/ssh-keys", _get_ssh_key),
    ("POST", r"/ssh-keys", _register_ssh_key),
    ("DELETE", r"/ssh-keys", _delete_ssh_key),
    ("GET", r"/billing/balance", _balance),
    ("GET", r"/billing/usage", _usage),
    ("POST", r"/deployments", _create_deployment),
    ("GET", r"/deployments", _list_deployments),
    ("GET", rf"/deployments/{_SEG}", _get_deployment),
    ("DELETE", rf"/deployments/{_SEG}", _delete_deployment),
    ("GET", rf"/deployments/{_SEG}/logs", _deployment_logs),
    ("GET", rf"/deployments/{_SEG}/events", _deployment_events),
    ("POST", rf"/deployments/{_SEG}/share-token", _regenerate_share_token),
]
