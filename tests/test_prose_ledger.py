"""`prose-ledger/1`: docs/llm-challenge.md's vectors, per-miner stories, exact verification, the oracle."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import re
from pathlib import Path

from subnet.challenges import CHALLENGES
from subnet.challenges import prose_ledger_oracle as oracle
from subnet.challenges.base import Task
from subnet.challenges.prose_ledger import VERSION, ProseLedger, oracle_reply, story_for
from subnet.challenges.prose_ledger_templates import TEMPLATES
from subnet.challenges.prose_ledger_words import in_words, parse_number
from subnet.protocol import FaultKind

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "llm-challenge.md"
ENV = ROOT / "envs" / "prose-ledger-openai" / "env.py"


def load_env():
    spec = importlib.util.spec_from_file_location("prose_ledger_openai_env", ENV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def doc_vectors() -> list[dict]:
    block = re.search(r"<!-- test-vectors:begin -->\s*```json\n(.*?)```\s*<!-- test-vectors:end -->", DOC.read_text(), re.S)
    assert block, "docs/llm-challenge.md lost its test-vector block"
    return json.loads(block.group(1))


def task_of(round_seed: bytes, index: int = 0) -> Task:
    return ProseLedger().make_tasks(round_seed, index + 1)[index]


def judge(task: Task, hotkey: str, answer) -> tuple[bool, FaultKind | None]:
    challenge = ProseLedger()
    verdict = challenge.verify(task, [challenge.receive(task, hotkey, answer)])[0]
    return verdict.ok, verdict.fault


def test_document_vectors_match_the_code():
    vectors = doc_vectors()
    assert len(vectors) >= 3
    for v in vectors:
        round_seed = hashlib.sha256(v["round_seed_text"].encode()).digest()
        task = task_of(round_seed, v["task_index"])
        assert task.payload["task_key"] == v["task_key"]
        story = story_for(task, v["hotkey"])
        assert hashlib.sha256(story.text.encode()).hexdigest() == v["story_sha256"]
        assert story.sentences[0] == v["first_sentence"]
        assert story.answer == v["answer"]
        assert judge(task, v["hotkey"], v["answer"]) == (True, None)


def test_the_doc_prints_the_first_vectors_story_whole():
    v = doc_vectors()[0]
    story = story_for(task_of(hashlib.sha256(v["round_seed_text"].encode()).digest(), v["task_index"]), v["hotkey"])
    assert story.text in re.sub(r"\s+", " ", DOC.read_text())


def test_stories_are_deterministic_and_differ_per_miner_and_task():
    seed = b"\x07" * 32
    first = ProseLedger().payload(task_of(seed), "hotkey-a")
    assert ProseLedger().payload(task_of(seed), "hotkey-a") == first
    stories = {ProseLedger().payload(task_of(seed), f"hotkey-{i}")["story"] for i in range(100)}
    assert len(stories) == 100, "two miners got the same story: an answer could be relayed"
    assert ProseLedger().payload(task_of(seed, 1), "hotkey-a")["story"] != first["story"]
    assert first["version"] == VERSION and set(first) == {"version", "story", "question", "answer_schema"}


def test_another_miners_answer_is_refused():
    task = task_of(b"relay" * 8)
    theirs = story_for(task, "miner-b").answer
    assert judge(task, "miner-a", theirs)[0] is False


def test_the_oracle_answers_every_task_right_over_500_seeds():
    build_messages = load_env().build_messages  # the reference env's own prompt around the story
    for seed in range(500):
        task = task_of(seed.to_bytes(8, "big"))
        hotkey = f"5Hot{seed}"
        payload = ProseLedger().payload(task, hotkey)
        answer = json.loads(oracle_reply(build_messages(payload["story"], payload["question"])))
        assert judge(task, hotkey, answer) == (True, None), f"seed {seed}: {payload['story']}"


def test_the_oracle_finds_the_story_wherever_the_env_puts_it():
    story = story_for(task_of(b"where" * 8), "hk")
    expected = story.answer
    one_per_line = story.text.replace(". ", ".\n")
    wrappers = [
        [{"role": "user", "content": story.text}],
        [{"role": "user", "content": f"Here is the story: \"{story.text}\" Answer in JSON."}],
        [{"role": "system", "content": "Be exact."}, {"role": "user", "content": f"Read this\n\n{one_per_line}\nthen answer"}],
        [{"role": "user", "content": [{"type": "text", "text": "Story:"}, {"type": "text", "text": story.text}]}],
        [{"role": "user", "content": f"```\n{story.text}\n```"}, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "go"}],
    ]
    for messages in wrappers:
        assert json.loads(oracle_reply(messages)) == expected, messages
    assert "no prose-ledger story" in oracle_reply([{"role": "user", "content": "What is 2 + 2?"}])


def test_a_pronoun_never_has_two_candidates():
    """"She"/"he" is used only when no one else in the sentence before shares it (section 4's rule)."""
    pronouns = 0
    for i in range(300):
        story = story_for(task_of(i.to_bytes(8, "big"), 1), f"hk{i}")
        female = {p.name: p.female for p in story.people}
        reader, last = oracle._Reader(rate=1), []
        reader.roles.update({p.role: p.name for p in story.people})
        for sentence in story.sentences:
            template, found = oracle._match(sentence)
            groups = found.groupdict()
            names = [groups["N"]] if groups.get("N") else [reader.person(groups[s]) for s in ("A", "B") if groups.get(s)]
            if groups.get("A", "").lower() in ("she", "he"):
                pronouns += 1
                a = names[0]
                assert all(female[other] != female[a] for other in last if other != a), (sentence, last)
            if names:
                first = min((found.start(s), s) for s in ("A", "B", "N") if groups.get(s))[1]
                reader.focus = groups["N"] if first == "N" else reader.person(groups[first])
                last = names
    assert pronouns > 100


def test_wrong_and_malformed_answers_get_the_right_fault():
    task = task_of(b"faults" * 6)
    right = story_for(task, "hk").answer["balances"]
    names = list(right)
    off_by_one = {**right, names[0]: right[names[0]] + 1}
    cases = [
        ([1, 2, 3], FaultKind.BAD_OUTPUT),
        ("{}", FaultKind.BAD_OUTPUT),
        ({"score": 1.0}, FaultKind.BAD_OUTPUT),
        ({"balances": [1, 2]}, FaultKind.BAD_OUTPUT),
        ({"balances": {n: right[n] for n in names[1:]}}, FaultKind.BAD_OUTPUT),
        ({"balances": {**right, "Nobody": 0}}, FaultKind.BAD_OUTPUT),
        ({"balances": {**right, names[0]: float(right[names[0]])}}, FaultKind.BAD_OUTPUT),
        ({"balances": {**right, names[0]: str(right[names[0]])}}, FaultKind.BAD_OUTPUT),
        ({"balances": {**right, names[0]: True}}, FaultKind.BAD_OUTPUT),
        ({"balances": off_by_one}, FaultKind.WRONG_ANSWER),
        ({"balances": {n: 0 for n in names}}, FaultKind.WRONG_ANSWER),
    ]
    for answer, fault in cases:
        assert judge(task, "hk", answer) == (False, fault), answer
    assert judge(task, "hk", {"balances": dict(reversed(right.items())), "task_id": 0, "model": "x"}) == (True, None)


def test_number_words_round_trip():
    for n in range(0, 3000):
        assert parse_number(in_words(n)) == n and parse_number(in_words(n, use_and=False)) == n
    assert in_words(189) == "one hundred and eighty-nine" and in_words(45, False) == "forty-five"


def test_surface_variety_over_200_tasks():
    """The figure reported in docs/llm-challenge.md ("Surface variety")."""
    templates_seen, skeletons, sentences = set(), set(), 0
    person = r"\b(?:%s|[Tt]he %s|[Ss]he|[Hh]e|her|him)\b" % (oracle._NAMES, oracle._ROLES)
    for i in range(200):
        story = story_for(task_of(i.to_bytes(8, "big")), f"hk{i}")
        templates_seen |= set(story.templates)
        for sentence in story.sentences:
            sentences += 1
            shape = re.sub(oracle._SLOTS["M"], "<M>", sentence)
            shape = re.sub(oracle._SLOTS["QI"], "<QI>", shape)
            shape = re.sub(person, "<P>", shape)
            shape = re.sub(oracle.NUMBER_RE, "<#>", re.sub(oracle._SLOTS["J"], "<J>", re.sub(oracle._SLOTS["IP"], "<I>", shape)))
            skeletons.add(shape)
    print(f"\nsurface variety over 200 tasks: {len(templates_seen)}/{len(TEMPLATES)} templates, "
          f"{len(skeletons)} distinct sentence shapes in {sentences} sentences")
    assert len(templates_seen) >= 0.9 * len(TEMPLATES) and len(skeletons) >= 400
    doc = re.sub(r"\s+", " ", DOC.read_text())
    stated = re.search(r"\*\*(\d+) of the (\d+) templates\*\* appear, and the ([\d,]+) sentences have \*\*(\d+) distinct shapes", doc)
    assert stated, "docs/llm-challenge.md lost its surface-variety figure"
    assert stated.groups() == (str(len(templates_seen)), str(len(TEMPLATES)), f"{sentences:,}", str(len(skeletons)))


def test_registered_and_declares_what_it_needs():
    assert CHALLENGES[VERSION] is ProseLedger
    assert ProseLedger.needs_gpu is False and 0 < ProseLedger.llm_task_budget_usd <= 0.05
    assert ProseLedger.verify_in_thread is False
    tree = ast.parse(ENV.read_text())
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    assert constants["CHALLENGE"] == VERSION


def test_env_parser_accepts_fenced_and_bare_json():
    env = load_env()
    want = {"balances": {"Ana": 12, "Tom": -3}}
    replies = [
        '{"balances": {"Ana": 12, "Tom": -3}}',
        '```json\n{"balances": {"Ana": 12, "Tom": -3}}\n```',
        '```\n{"balances": {"Ana": 12, "Tom": -3}}\n```',
        'Working it out: Ana ends with 12.\n{"balances": {"Ana": 12, "Tom": -3}}',
        '<think>maybe {"balances": {"Ana": 1, "Tom": 1}}</think>{"balances": {"Ana": 12.0, "Tom": "-3"}}',
        'first guess {"balances": {"Ana": 9, "Tom": 0}} no wait: {"balances": {"Ana": 12, "Tom": -3}}',
    ]
    for reply in replies:
        assert env.parse_answer(reply, ["Ana", "Tom"]) == want, reply
    assert env.parse_answer('{"balances": {"Ana": 12, "Tom": -3, "Ghost": 1}}', ["Ana", "Tom"]) == want
    for bad in ("", "no idea", '{"Ana": 12}', '{"balances": {"Ana": "twelve", "Tom": 1}}', '{"balances": {"Ana": 1.5, "Tom": 1}}'):
        assert env.parse_answer(bad, ["Ana", "Tom"]) is None, bad
    assert env.parse_answer('{"balances": {"Ana": 1}}', ["Ana", "Tom"]) is None
