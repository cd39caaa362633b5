"""A local stand-in for a subtensor node, behind the bittensor SDK's `Substrate` protocol.

The real SDK (`bt.Subtensor("local", substrate=FakeSubstrate())`) composes calls, runs its
preflights and decodes what this node returns, exactly as against a websocket endpoint. The node
keeps the state the tests need (registrations, commitments, LastUpdate, rate limits), applies
the two extrinsics the adapter sends with the chain's own rules, and records every composed and
submitted call so tests can assert on them. Connection trouble can be injected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

import bittensor as bt
from bittensor.balance import Balance

MAX_FIELDS = 3
OWNER_HOTKEY = "5SubnetOwnerHotkey"
_RAW = re.compile(r"^Raw(\d+)$")


@dataclass
class Submitted:
    module: str
    function: str
    params: dict
    signer: str  # ss58 of the key that signed


@dataclass
class Subnet:
    hotkeys: list[str] = field(default_factory=list)
    coldkeys: list[str] = field(default_factory=list)
    permits: list[bool] = field(default_factory=list)
    last_update: list[int] = field(default_factory=list)
    weights_rate_limit: int = 100
    commit_reveal: bool = False
    commitments: dict[str, dict] = field(default_factory=dict)  # hotkey -> Registration record
    weights: dict[str, dict[int, int]] = field(default_factory=dict)  # hotkey -> {uid: u16}
    weights_version_key: int = 0
    stakes: dict[str, int] = field(default_factory=dict)  # hotkey -> alpha, in rao
    pending_reveals: dict[str, bytes] = field(default_factory=dict)  # hotkey -> timelocked commit
    owner_hotkey: str = ""  # SubtensorModule.SubnetOwnerHotkey


class FakeSubstrate:
    def __init__(self, block: int = 1000) -> None:
        self.token_symbols: dict[int, str] = {}
        self.head = block
        self.subnets: dict[int, Subnet] = {}
        self.composed: list[bt.calls.Call] = []
        self.submitted: list[Submitted] = []
        self.connected = False
        self.connects = 0
        self.closes = 0
        self.refuse_connects = 0  # next N connect() calls fail
        self.drop_reads = 0  # next N reads find the websocket dead
        self.drop_submits = 0  # next N submits lose the websocket before inclusion
        self.drop_after_apply = 0  # next N submits land, then the websocket dies before the receipt
        self.reject_next: Optional[bt.ChainError] = None  # chain-side dispatch error for the next submit
        self.genesis = "0x" + "ab" * 32
        self.stake_threshold = 0  # rao; the chain-wide minimum stake to set weights

    # -- test setup ----------------------------------------------------------------------------
    def add_subnet(self, netuid: int, owner: str | None = OWNER_HOTKEY, **params: Any) -> Subnet:
        """A subnet as `register_network` leaves it: the owner's hotkey is its first neuron (uid 0)
        and is recorded as `SubnetOwnerHotkey` (opentensor/subtensor,
        pallets/subtensor/src/subnets/subnet.rs, `do_register_network` steps 12 and "ownership").
        `owner=None` leaves the storage at its default (no owner hotkey registered here)."""
        self.subnets[netuid] = Subnet(**params)
        if owner is not None:
            self.subnets[netuid].owner_hotkey = owner
            self.register(netuid, owner)
        return self.subnets[netuid]

    def register(self, netuid: int, hotkey: str, coldkey: str = "", permit: bool = False) -> int:
        net = self.subnets[netuid]
        net.hotkeys.append(hotkey)
        net.coldkeys.append(coldkey or hotkey)
        net.permits.append(permit)
        net.last_update.append(0)
        self.head += 1
        return len(net.hotkeys) - 1

    def reveal(self, netuid: int, weights: dict[int, int]) -> None:
        """What the chain does at the drand reveal round: pending commits take effect (the
        stand-in cannot decrypt them, so the test says what they held)."""
        net = self.subnets[netuid]
        for hotkey in list(net.pending_reveals):
            net.weights[hotkey] = dict(weights)
            del net.pending_reveals[hotkey]

    def put_commitment(self, netuid: int, hotkey: str, data: bytes, block: int | None = None) -> None:
        """A commitment as another miner left it, stored the way the node decodes it."""
        fields = [{f"Raw{len(data)}": "0x" + data.hex()}] if data else []
        self.subnets[netuid].commitments[hotkey] = {
            "block": self.head if block is None else block,
            "deposit": 0,
            "info": {"fields": fields},
        }

    # -- Substrate protocol: lifecycle ---------------------------------------------------------
    def balance(self, rao: int, netuid: int = 0) -> Balance:
        return Balance(int(rao), netuid, None)

    async def connect(self) -> None:
        self.connects += 1
        if self.refuse_connects:
            self.refuse_connects -= 1
            raise bt.RpcConnectionError("could not connect to any endpoint: [Errno 111] Connection refused")
        self.connected = True

    async def close(self) -> None:
        self.closes += 1
        self.connected = False

    def _live(self) -> None:
        if self.drop_reads:
            self.drop_reads -= 1
            self.connected = False
            raise bt.RpcConnectionError("no response from ws://127.0.0.1:9944 in 60.0s")
        if not self.connected:
            raise bt.ConnectionNotReady("Client connection is not open.")

    # -- reads ---------------------------------------------------------------------------------
    async def block_hash(self, block: Optional[int] = None) -> str:
        self._live()
        return f"0x{(self.head if block is None else block):064x}"

    async def block_number(self) -> int:
        self._live()
        return self.head

    async def finalized_block_number(self) -> int:
        self._live()
        return self.head

    async def block_time(self) -> float:
        return 12.0

    async def spec_version(self) -> int:
        return 400

    async def query(self, module: str, storage_function: str, params: Optional[list] = None, block_hash=None) -> Any:
        self._live()
        params = list(params or [])
        if (module, storage_function) == ("System", "BlockHash"):
            return self.genesis if params == [0] else None
        if (module, storage_function) == ("SubtensorModule", "StakeThreshold"):
            return self.stake_threshold
        if (module, storage_function) == ("SubtensorModule", "SubnetOwnerHotkey"):
            net = self.subnets.get(params[0])
            return (net.owner_hotkey or None) if net else None
        if (module, storage_function) == ("SubtensorModule", "TotalHotkeyAlpha"):
            net = self.subnets.get(params[1])
            return net.stakes.get(params[0], 0) if net else 0
        if module == "SubtensorModule":
            return self._subtensor_item(storage_function, params)
        if module == "Commitments" and storage_function == "CommitmentOf":
            net = self.subnets.get(params[0])
            return net.commitments.get(params[1]) if net else None
        return None

    def _subtensor_item(self, name: str, params: list) -> Any:
        net = self.subnets.get(params[0]) if params else None
        if net is None:
            return None
        if name == "Uids":
            return net.hotkeys.index(params[1]) if params[1] in net.hotkeys else None
        if name == "Weights":
            uid = params[1]
            row = net.weights.get(net.hotkeys[uid]) if uid < len(net.hotkeys) else None
            return sorted(row.items()) if row else []
        return {
            "WeightsSetRateLimit": net.weights_rate_limit,
            "LastUpdate": list(net.last_update),
            "CommitRevealWeightsEnabled": net.commit_reveal,
            "WeightsVersionKey": net.weights_version_key,
            "MinAllowedWeights": 0,
            "MaxWeightsLimit": 65535,
            "SubnetEpochConsensus": "Yuma",
            "ValidatorPermit": list(net.permits),
            # Epoch schedule, read by the timelocked (commit-reveal) weights path.
            "Tempo": 360,
            "RevealPeriodEpochs": 1,
            "LastEpochBlock": self.head - 10,
            "PendingEpochAt": 0,
            "SubnetEpochIndex": 5,
            "BlocksSinceLastStep": 10,
        }.get(name)

    async def query_map(self, module: str, storage_function: str, params: Optional[list] = None, block_hash=None):
        self._live()
        net = self.subnets.get((params or [None])[0])
        if module == "Commitments" and storage_function == "CommitmentOf" and net:
            return list(net.commitments.items())
        if module == "SubtensorModule" and storage_function == "Uids" and net:
            return [(hk, uid) for uid, hk in enumerate(net.hotkeys)]
        return []

    async def query_batch(self, module, storage_function, param_sets, block_hash=None):
        return [await self.query(module, storage_function, p, block_hash) for p in param_sets]

    async def runtime_call(self, api: str, method: str, params: list, block_hash=None) -> Any:
        self._live()
        if (api, method) != ("SubnetInfoRuntimeApi", "get_metagraph"):
            return None
        net = self.subnets.get(params[0])
        if net is None:
            return None
        return {
            "netuid": params[0], "name": list(b"fake"), "symbol": list(b"F"), "block": self.head,
            "tempo": 360, "last_step": self.head - 10, "blocks_since_last_step": 10,
            "owner_hotkey": net.owner_hotkey, "owner_coldkey": "",
            "network_registered_at": 1, "num_uids": len(net.hotkeys), "max_uids": 256,
            "hotkeys": list(net.hotkeys), "coldkeys": list(net.coldkeys),
            "validator_permit": list(net.permits), "last_update": list(net.last_update),
        }

    async def constant(self, module: str, name: str) -> Any:
        return None

    async def events(self, block_hash=None) -> list:
        return []

    # -- calls ---------------------------------------------------------------------------------
    async def compose(self, call):
        self._live()
        self.composed.append(call)
        return call

    async def estimate_fee(self, call, keypair) -> Balance:
        return Balance.from_rao(1000)

    async def account_next_index(self, address: str) -> int:
        return 0

    async def submit(self, call, keypair, *, nonce=None, period=None, wait_for_inclusion=True, wait_for_finalization=True):
        self._live()
        if self.drop_submits:
            self.drop_submits -= 1
            self.connected = False
            # What RpcSubstrate does when the socket dies between signing and inclusion.
            try:
                raise ConnectionResetError("websocket closed (1006)")
            except ConnectionResetError as error:
                raise bt.ChainError(str(error)) from error
        signer = keypair.ss58_address
        self.submitted.append(Submitted(call.module, call.function, dict(call.params), signer))
        if self.reject_next is not None:
            error, self.reject_next = self.reject_next, None
            return bt.ExtrinsicResult(success=False, message=error.message, error=error)
        error = self._apply(call, signer)
        if self.drop_after_apply:
            self.drop_after_apply -= 1
            self.connected = False
            try:
                raise ConnectionResetError("websocket closed (1006) while watching the extrinsic")
            except ConnectionResetError as lost:
                raise bt.ChainError(str(lost)) from lost
        if error is not None:
            return bt.ExtrinsicResult(success=False, message=error.message, error=error)
        return bt.ExtrinsicResult(success=True, message="Success", extrinsic_id=f"{self.head}-0001")

    def _apply(self, call, signer: str) -> Optional[bt.ChainError]:
        """Dispatch with the pallets' rules; returns the dispatch error, if any."""
        self.head += 1
        net = self.subnets.get(call.params.get("netuid"))
        if net is None:
            return bt.ChainError("The subnet does not exist.", "SubnetNotExists")
        if signer not in net.hotkeys:
            name = "AccountNotAllowedCommit" if call.module == "Commitments" else "HotKeyNotRegisteredInSubNet"
            return bt.ChainError("Account is not allowed to commit / not registered.", name)
        uid = net.hotkeys.index(signer)
        if (call.module, call.function) == ("Commitments", "set_commitment"):
            fields = call.params["info"]["fields"]
            if len(fields) > MAX_FIELDS:
                return bt.ChainError("Too many fields.", "TooManyFieldsInCommitmentInfo")
            stored = []
            for entry in fields:
                (variant, value), = entry.items()
                size = _RAW.match(variant)
                if not size or int(size.group(1)) > 128 or len(bytes(value)) != int(size.group(1)):
                    return bt.ChainError(f"cannot encode {variant} with {len(bytes(value))} bytes", "Codec")
                stored.append({variant: "0x" + bytes(value).hex()})
            net.commitments[signer] = {"block": self.head, "deposit": 0, "info": {"fields": stored}}
            return None
        if (call.module, call.function) == ("SubtensorModule", "set_mechanism_weights"):
            last = net.last_update[uid]
            if last and self.head - last < net.weights_rate_limit:
                return bt.ChainError("Setting weights too fast.", "SettingWeightsTooFast")
            if call.params["version_key"] < net.weights_version_key:
                return bt.ChainError("Incorrect version key.", "IncorrectWeightVersionKey")
            net.weights[signer] = dict(zip(call.params["dests"], call.params["weights"]))
            net.last_update[uid] = self.head
            return None
        if (call.module, call.function) == ("SubtensorModule", "commit_timelocked_mechanism_weights"):
            net.last_update[uid] = self.head
            net.pending_reveals[signer] = bytes(call.params["commit"])
            return None
        return bt.ChainError(f"call {call.module}.{call.function} not supported by the stand-in")
