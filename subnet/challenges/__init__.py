"""Validator-owned task suites. A challenge makes tasks, builds payloads and verifies answers."""

from subnet.challenges.base import Challenge, Claim, Task, Verdict
from subnet.challenges.matrix_chain import MatrixChain
from subnet.challenges.prose_ledger import ProseLedger

CHALLENGES = {MatrixChain.name: MatrixChain, ProseLedger.name: ProseLedger}

__all__ = ["CHALLENGES", "Challenge", "Claim", "MatrixChain", "ProseLedger", "Task", "Verdict"]
