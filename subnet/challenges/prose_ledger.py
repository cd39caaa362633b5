"""`prose-ledger/1`: read a short story of money between people, answer every final balance exactly.

Task (normative text and test vectors: docs/llm-challenge.md). The payload carries a story
generated from `story_key` = sha256(task_key ‖ hotkey) (`prose_ledger_story.generate`), so two
miners never get the same story and relaying another miner's answer fails. The answer is the JSON
object {"balances": {name: integer, ...}} naming exactly the story's people; the validator
regenerates the story from the keys and compares every balance exactly: there is nothing to sample
and nothing to tolerate. An env needs language, not a GPU: it calls an LLM through the validator's
gateway (OPENAI_BASE_URL / OPENAI_API_KEY), and the gateway meters what that costs.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping, Sequence

from subnet.challenges.base import Claim, Task, Verdict, task_seed
from subnet.challenges.prose_ledger_oracle import oracle_reply, solve
from subnet.challenges.prose_ledger_story import Story, generate
from subnet.protocol import FaultKind

VERSION = "prose-ledger/1"
# A story is ~200 words: a ~600-token prompt and a ~40-token answer cost ~$0.0002 at mid-size
# open-model prices ($0.2-0.5 per 1M tokens). A thinking model spends ~1,000-3,000 tokens first;
# the budget covers ~4,000 completion tokens at $1 per 1M, so a careful model is not cut off.
LLM_TASK_BUDGET_USD = 0.005
QUESTION = ("Every person in the story ends with a whole number of {unit}. How many {unit} does each "
            "person have at the end of the story? Convert any larger coins to {unit}. Answer with a JSON object "
            "{{\"balances\": {{name: integer}}}} naming every person exactly once, nothing else.")

__all__ = ["ProseLedger", "VERSION", "oracle_reply", "solve", "story_for", "story_key"]


def task_key(round_seed: bytes, index: int) -> bytes:
    return hashlib.sha256(b"prose-ledger/1" + round_seed + index.to_bytes(8, "big")).digest()


def story_key(task_key_bytes: bytes, hotkey: str) -> bytes:
    return hashlib.sha256(task_key_bytes + hotkey.encode("utf-8")).digest()


def story_for(task: Task, hotkey: str) -> Story:
    return generate(story_key(bytes.fromhex(task.payload["task_key"]), hotkey))


def answer_schema(names: Sequence[str]) -> dict:
    """JSON Schema of the answer (for an env's prompt or a structured-output request)."""
    balances = {"type": "object", "properties": {n: {"type": "integer"} for n in names},
                "required": list(names), "additionalProperties": False}
    return {"type": "object", "properties": {"balances": balances}, "required": ["balances"]}


class ProseLedger:
    name = VERSION
    version = VERSION  # names the challenge already: the result cache uses it as is
    verify_in_thread = False  # regenerating a story and comparing a few integers takes ~1 ms
    needs_gpu = False
    llm_task_budget_usd = LLM_TASK_BUDGET_USD

    def make_tasks(self, round_seed: bytes, count: int) -> list[Task]:
        return [Task(i, task_seed(round_seed, i), {"version": VERSION, "task_key": task_key(round_seed, i).hex()})
                for i in range(count)]

    def payload(self, task: Task, hotkey: str) -> Mapping[str, Any]:
        story = story_for(task, hotkey)
        names = list(story.balances)
        return {"version": VERSION, "story": story.text, "question": QUESTION.format(unit=story.unit[1]),
                "answer_schema": answer_schema(names)}

    def receive(self, task: Task, hotkey: str, answer: Any) -> Claim:
        expected = story_for(task, hotkey).balances
        balances, problem = _parse_answer(answer, list(expected))
        if problem:
            return Claim(hotkey, Verdict.reject(FaultKind.BAD_OUTPUT, problem))
        wrong = sorted(name for name in expected if balances[name] != expected[name])
        if wrong:
            return Claim(hotkey, Verdict.reject(FaultKind.WRONG_ANSWER, f"{len(wrong)}/{len(expected)} balances wrong ({', '.join(wrong)})"))
        return Claim(hotkey, Verdict.accept())

    def verify(self, task: Task, claims: Sequence[Claim]) -> list[Verdict]:
        # `receive` already judged every answer exactly; nothing is shared between miners to batch.
        return [claim.verdict or Verdict.reject(FaultKind.BAD_OUTPUT, "no verdict") for claim in claims]


def _parse_answer(answer: Any, names: list[str]) -> tuple[dict[str, int], str]:
    """The answer's balances, or an empty dict and the one-line reason it is not of the schema."""
    if not isinstance(answer, dict):
        return {}, f"answer is a {type(answer).__name__}, not a JSON object"
    balances = answer.get("balances")
    if not isinstance(balances, dict):
        keys = ", ".join(sorted(map(str, answer))[:5]) or "none"
        return {}, f"no 'balances' object in the answer (keys: {keys})"
    missing = [n for n in names if n not in balances]
    extra = sorted(str(k) for k in balances if k not in names)
    if missing or extra:
        return {}, f"balances must name exactly {', '.join(names)} (missing: {', '.join(missing) or '-'}; extra: {', '.join(extra[:5]) or '-'})"
    not_int = [n for n in names if not isinstance(balances[n], int) or isinstance(balances[n], bool)]
    if not_int:
        return {}, f"balances must be integers ({', '.join(not_int)} is not)"
    return dict(balances), ""
