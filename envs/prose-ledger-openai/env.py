"""Reference miner env for `prose-ledger/1`: asks an LLM, through the validator's gateway.

Copy this folder to start your own env; the task is specified in docs/llm-challenge.md. The
validator calls `Actor.evaluate(task_id=..., version="prose-ledger/1", story=..., question=...,
answer_schema={...}, timeout=...)` (plus `model=` when it names one) and checks the returned
`balances` exactly. The validator sets OPENAI_BASE_URL (its gateway) and OPENAI_API_KEY (a token
valid for this round only); the `openai` client reads both itself and this file reads nothing
else. Every token is metered by the gateway and counts against this env's score, so the prompt is
short and the answer is one JSON object.
"""

import json
import re
import time

import openai

CHALLENGE = "prose-ledger/1"
# A mid-size open model (the gateway's default allowlist names it; the validator may pass `model`).
DEFAULT_MODEL = "Qwen/Qwen3-32B-TEE"
MAX_TOKENS = 4096  # room for a thinking model's reasoning; the gateway clamps it to the task's budget

SYSTEM = (
    "You are a meticulous bookkeeper. You read a short story about money changing hands and work out "
    "exactly how much money each person has at the end."
)
INSTRUCTIONS = """Rules:
- Start from the amount each person has when introduced.
- A sale moves (count x unit price) from the buyer to the seller; a return refunds the returned items at the price paid.
- A loan moves money from lender to borrower; repayments move it back ("in full" means everything still owed, "half" means half of what is still owed).
- Gifts and payments for work move money from giver to receiver.
- Offers turned down, promises, things almost bought or only asked about move nothing.
- "She"/"he" at the start of a sentence means the first person named in the previous sentence; "the baker" etc. means the person with that trade.
- Numbers may be words or digits; convert larger coins using the stated rate.

Reply with only the JSON object, no code fence and no explanation, of this shape:
{"balances": {"<name>": <integer>, ...}} with every person named exactly as in the story."""


def build_messages(story: str, question: str) -> list[dict]:
    user = f"Story:\n{story}\n\nQuestion: {question}\n\n{INSTRUCTIONS}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _json_objects(text: str):
    """Every JSON object in `text`, in order (decoded from each '{' that starts one)."""
    decoder = json.JSONDecoder()
    at = text.find("{")
    while at != -1:
        try:
            value, end = decoder.raw_decode(text, at)
        except ValueError:
            at = text.find("{", at + 1)
            continue
        if isinstance(value, dict):
            yield value
        at = text.find("{", end)


def _as_int(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?[\d,]+\s*", value):
        return int(value.replace(",", ""))
    return None


def parse_answer(text: str, names=None) -> dict | None:
    """The model's reply as {"balances": {name: int}}, or None when it holds no such object.

    Accepts a bare object, one inside ```json fences or after prose, and skips <think> blocks; the
    last object with "balances" wins (a model may restate its answer). With `names`, only those
    people are kept, so a stray extra key does not spoil a right answer.
    """
    text = re.sub(r"<think>.*?</think>", " ", text or "", flags=re.S)
    fenced = re.findall(r"```(?:json)?\s*(.*?)```", text, flags=re.S)
    found = None
    for candidate in (*fenced, text):
        for obj in _json_objects(candidate):
            if isinstance(obj.get("balances"), dict):
                found = obj["balances"]
        if found is not None:
            break
    if found is None:
        return None
    balances = {str(k): _as_int(v) for k, v in found.items()}
    if names is not None:
        balances = {n: balances.get(n) for n in names}
    if any(v is None for v in balances.values()):
        return None
    return {"balances": balances}


class Actor:
    def __init__(self) -> None:
        self._client = None

    def client(self, timeout: float):
        if self._client is None:
            # Reads OPENAI_BASE_URL and OPENAI_API_KEY; one retry at most (a 402 says not to retry).
            self._client = openai.AsyncOpenAI(timeout=timeout, max_retries=1)
        return self._client

    async def evaluate(self, task_id=0, version=CHALLENGE, story="", question="", answer_schema=None,
                       model=None, timeout=60.0, **_):
        if version != CHALLENGE:
            raise ValueError(f"this env answers {CHALLENGE}, not {version!r}")
        names = list(((answer_schema or {}).get("properties", {}).get("balances", {}).get("properties") or {}))
        started = time.perf_counter()
        reply = await self.client(max(5.0, float(timeout) - 2.0)).chat.completions.create(
            model=model or DEFAULT_MODEL, messages=build_messages(story, question),
            temperature=0, max_tokens=MAX_TOKENS)
        text = reply.choices[0].message.content if reply.choices else ""
        answer = parse_answer(text or "", names or None)
        return {
            "task_id": task_id,
            "balances": answer["balances"] if answer else None,
            # Informational only: the validator measures latency and LLM spend itself.
            "elapsed_ms": (time.perf_counter() - started) * 1000.0,
            "model": reply.model,
        }
