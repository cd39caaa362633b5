"""The twin's oracle for `prose-ledger/1`: reads a story back into its exact answer, with no model.

This is a parser of the challenge's own grammar (it knows every template, and says so in the
twin's model name `twin/prose-ledger-oracle`). It exists so a dry run and the tests can drive an
LLM env end to end with no key and no network. It is also the honest statement of this
challenge's limit: the grammar is public, so a miner may ship this parser instead of calling a
model (docs/llm-challenge.md, "Limits").
"""

from __future__ import annotations

import json
import re
from typing import Any

from subnet.challenges.prose_ledger_templates import OTHER, TEMPLATES, Ledger, Template, JOBS
from subnet.challenges.prose_ledger_words import (
    BIG_UNITS, CONNECTIVES, FEMALE, ITEMS, MALE, NUMBER_RE, ROLES, UNITS, parse_number,
)


def _alternation(words) -> str:
    return "(?:" + "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True)) + ")"


_NAMES = _alternation(FEMALE + MALE)
_ROLES = _alternation(ROLES)
_PLURALS = _alternation(item[1] for item in ITEMS)
_UNIT_WORDS = _alternation([u[0] for u in UNITS] + [u[1] for u in UNITS] + [b[0] for b in BIG_UNITS] + [b[1] for b in BIG_UNITS])
_MONEY = rf"(?:[$€]\d+|(?:{NUMBER_RE}|an?) {_UNIT_WORDS})"
_SLOTS = {
    "A": rf"(?:{_NAMES}|[Tt]he {_ROLES}|[Ss]he|[Hh]e)",
    "B": rf"(?:{_NAMES}|the {_ROLES}|her|him)",
    "N": _NAMES, "R": _ROLES, "AR": rf"an? {_ROLES}", "M": _MONEY, "P": _MONEY, "T": _MONEY,
    "QI": rf"(?:{NUMBER_RE}|a dozen) {_PLURALS}", "K": NUMBER_RE, "IP": _PLURALS, "J": _alternation(JOBS),
    "BIG": _alternation(b[0] for b in BIG_UNITS), "RATE": NUMBER_RE, "BASEP": _alternation(u[1] for u in UNITS),
}
_CONNECTIVE = rf"(?:{_alternation(CONNECTIVES)}, )?"


def _compile(template: Template) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template.text)
    body = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>{_SLOTS[p]})" for i, p in enumerate(parts))
    return re.compile((_CONNECTIVE if template.starts_with_a else "") + body)


_COMPILED = [(t, _compile(t)) for t in TEMPLATES]
# Where a template can begin inside a longer line: after a separator, at a name, a trade, a
# pronoun, a connective or a template's own first words. Only these places are tried, so an
# env's long instructions around the story cost little.
_STARTS = re.compile(r"(?<![^\s\"'`:(\[])(?=%s)" % "|".join(
    [_NAMES, rf"[Tt]he {_ROLES}", r"[Ss]?[Hh]e\b", _alternation(CONNECTIVES)]
    + [re.escape(t.text.split("{")[0]) for t in TEMPLATES if not t.text.startswith("{")]))


def _match(sentence: str) -> tuple[Template, re.Match] | None:
    """The template a sentence was written from: a whole-sentence match, else a match of its tail
    (the env may glue a label or an instruction onto the story's first sentence)."""
    for start in [0] + [m.start() for m in _STARTS.finditer(sentence, 1)]:
        for template, pattern in _COMPILED:
            found = pattern.fullmatch(sentence, start)
            if found:
                return template, found
    return None


def _sentences(text: str) -> list[str]:
    flat = re.sub(r"\s+", " ", text.replace("`", " "))
    return [s.strip(" \"'") for s in re.split(r"(?<=\.)[\"']?\s+", flat) if s.strip()]


class _Reader:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.roles: dict[str, str] = {}
        self.order: list[str] = []
        self.focus: str | None = None
        self.ledger = Ledger()

    def money(self, text: str) -> int:
        if text[0] in "$€":
            return int(text[1:])
        count, unit = text.rsplit(" ", 1)
        value = 1 if count in ("a", "an") else parse_number(count)
        return value * self.rate if any(unit in b for b in BIG_UNITS) else value

    def person(self, text: str) -> str:
        if text.lower() in ("she", "he", "her", "him"):
            if self.focus is None:
                raise ValueError("a pronoun before anyone was named")
            return self.focus
        if text.lower().startswith("the "):
            return self.roles[text[4:]]
        return text

    def read(self, template: Template, found: re.Match) -> None:
        groups = found.groupdict()
        mentioned = sorted((found.start(s), s) for s in ("A", "B", "N") if groups.get(s))
        if template.kind == "intro":
            name = groups["N"]
            self.roles[groups.get("R") or groups["AR"].split(" ", 1)[1]] = name
            self.order.append(name)
            self.ledger.balances[name] = self.money(groups["M"])
        elif template.a_is:
            a, b = self.person(groups["A"]), self.person(groups["B"])
            self.ledger.apply(template.kind, {template.a_is: a, OTHER[template.a_is]: b}, self._event(groups))
        if mentioned:
            self.focus = self.person(groups[mentioned[0][1]]) if mentioned[0][1] != "N" else groups["N"]

    def _event(self, groups: dict[str, Any]) -> dict:
        event: dict[str, Any] = {}
        if groups.get("QI"):
            count, item = re.fullmatch(rf"({NUMBER_RE}|a dozen) ({_PLURALS})", groups["QI"]).groups()
            event["qty"], event["item"] = (12 if count == "a dozen" else parse_number(count)), item
            event["price"] = self.money(groups["P"]) if groups.get("P") else self.money(groups["T"]) // event["qty"]
        if groups.get("K"):
            event["k"], event["item"] = parse_number(groups["K"]), groups["IP"]
        if groups.get("M"):
            event["amount"] = self.money(groups["M"])
        return event


def solve(text: str) -> dict | None:
    """The answer to the story in `text`, or None when no story is there."""
    matched = [m for m in map(_match, _sentences(text)) if m is not None]
    rate = 1
    for template, found in matched:
        if template.kind == "rate":
            rate = parse_number(found.group("RATE"))
    reader = _Reader(rate)
    for template, found in matched:
        reader.read(template, found)
    if not reader.order:
        return None
    return {"balances": {name: reader.ledger.balances[name] for name in reader.order}}


def _message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def oracle_reply(messages: list[dict]) -> str:
    """The assistant's text for a chat about a prose-ledger story: the exact JSON answer.

    The story is looked for in the latest message that holds one (user turns first, then any other
    role), wherever it sits in that message; with no story the reply says so in one line.
    """
    ordered = [m for m in reversed(messages) if m.get("role") == "user"]
    ordered += [m for m in reversed(messages) if m.get("role") != "user"]
    for message in ordered:
        answer = solve(_message_text(message))
        if answer is not None:
            return json.dumps(answer)
    return "I found no prose-ledger story in the messages."
