"""Basilica compute: the GPU policy (pure), settings, the SDK client wrapper and the spend ledger.

Typical use (a validator's Basilica runtime):

    settings = load_settings()
    with Ledger(Settings().ledger_path) as ledger:
        client = BasilicaGPUClient(settings, ledger=ledger)
        offering = client.list_cheap_gpus()[0]            # cheapest allowed box
        spec = DeploymentSpec.for_offering(offering, name="sn-abc123", image="repo@sha256:...")
        info = client.create_deployment(spec, owner="validator", hourly_rate=offering.box_hourly_rate)
        ...
        client.delete_deployment(spec.name)
"""

from subnet.compute.basilica import BasilicaGPUClient, RemoteRental, RentOutcome, StopOutcome
from subnet.compute.deployments import DeploymentInfo, DeploymentSpec
from subnet.compute.errors import AuthError, BasilicaError, NotFound, NothingAffordable, PolicyRefused, Unavailable
from subnet.compute.ledger import Ledger, LedgerEntry, reconcile
from subnet.compute.policy import AllowedGpu, GpuPolicy, Offering, PolicyFormatError
from subnet.compute.settings import BasilicaSettings, ConfigError, load_settings

__all__ = [
    "AllowedGpu", "AuthError", "BasilicaError", "BasilicaGPUClient", "BasilicaSettings", "ConfigError",
    "DeploymentInfo", "DeploymentSpec", "GpuPolicy", "Ledger", "LedgerEntry", "NotFound", "NothingAffordable",
    "Offering", "PolicyFormatError", "PolicyRefused", "RemoteRental", "RentOutcome", "StopOutcome",
    "Unavailable", "load_settings", "reconcile",
]
