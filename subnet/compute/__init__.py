"""Basilica compute: the GPU policy (pure), settings, the SDK client wrapper and the spend ledger.

Typical use (a validator's Basilica runtime):

    settings = load_settings()
    with Ledger(Settings().ledger_path) as ledger:
        client = BasilicaGPUClient(settings, ledger=ledger)
        offering = client.list_cheap_gpus()[0]            # cheapest allowed box
        deployments = DeploymentClient(client)
        spec = DeploymentSpec.for_offering(offering, name="sn-abc123", image="repo@sha256:...")
        created = deployments.create(spec, owner="validator", hourly_rate=offering.box_hourly_rate)
        ...                                               # call created.access (the token: memory only)
        deployments.delete(spec.name)                     # by UUID; the row closes on proof only
"""

from subnet.compute.basilica import BasilicaGPUClient, RemoteRental, RentOutcome, StopOutcome
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import DeploymentInfo, DeploymentSpec
from subnet.compute.errors import AuthError, BasilicaError, NotFound, NothingAffordable, PolicyRefused, Unavailable
from subnet.compute.ledger import Ledger, LedgerEntry, reconcile
from subnet.compute.policy import AllowedGpu, GpuPolicy, Offering, PolicyFormatError
from subnet.compute.settings import BasilicaSettings, ConfigError, load_settings

__all__ = [
    "AllowedGpu", "AuthError", "BasilicaError", "BasilicaGPUClient", "BasilicaSettings", "ConfigError",
    "DeploymentClient", "DeploymentInfo", "DeploymentSpec", "GpuPolicy", "Ledger", "LedgerEntry", "NotFound", "NothingAffordable",
    "Offering", "PolicyFormatError", "PolicyRefused", "RemoteRental", "RentOutcome", "StopOutcome",
    "Unavailable", "load_settings", "reconcile",
]
