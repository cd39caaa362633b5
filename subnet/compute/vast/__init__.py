"""Vast.ai: a small async client (offers, create, instances, destroy, bid, balance) and key resolution.

    key = resolve_vast_key(flag)
    async with VastClient(key) as vast:
        offers = await vast.search_offers(OfferQuery(gpu_names=["RTX 4090"], max_dph=Decimal("0.40")))
        new_id = await vast.create_instance(offers[0].id, image=ref, env={"-p 8000:8000": "1"}, label=name)

Shapes from vast-python (vastai 1.9.1): see the module docstrings for the file behind each.
"""

from subnet.compute.vast.client import DEFAULT_URL, VastClient
from subnet.compute.vast.errors import VastAuthError, VastError, VastNotFound, VastQuotaExceeded, VastRateLimited
from subnet.compute.vast.keys import KEY_ENV, resolve_vast_key
from subnet.compute.vast.models import OfferQuery, VastInstance, VastOffer

__all__ = ["DEFAULT_URL", "KEY_ENV", "OfferQuery", "VastAuthError", "VastClient", "VastError", "VastInstance",
           "VastNotFound", "VastOffer", "VastQuotaExceeded", "VastRateLimited", "resolve_vast_key"]
