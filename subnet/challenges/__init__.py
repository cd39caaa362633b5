"""Validator-owned task suites. A challenge makes tasks, builds payloads and verifies answers."""

from subnet.challenges.base import Challenge, Claim, Task, Verdict
from subnet.challenges.matrix_chain import MatrixChain

CHALLENGES = {MatrixChain.name: MatrixChain}

__all__ = ["CHALLENGES", "Challenge", "Claim", "MatrixChain", "Task", "Verdict"]
