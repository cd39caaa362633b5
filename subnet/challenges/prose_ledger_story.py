"""The story generator of `prose-ledger/1`: a key → a short story of money between named people.

Surface variety is the point (a miner should find an LLM cheaper than a parser written from
scratch): every event has several templates with either party first, people are named, called by
their trade ("the potter") or by pronoun, numbers are digits or words, some amounts are in a larger
coin with a stated rate, sentences get connectives, and some sentences move no money at all
(offers turned down, promises, things almost bought). Pronoun rule (the oracle resolves by it):
"she"/"he" in A's place and "her"/"him" in B's place mean the first person mentioned in the last
sentence that mentioned anyone; A is a pronoun only when nobody else in that sentence shares A's
pronoun, and B only when that sentence was about A and B alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from subnet.challenges.prose_ledger_templates import JOBS, OTHER, PAYER, TEMPLATES, Ledger, Template
from subnet.challenges.prose_ledger_words import (
    BIG_RATES, BIG_UNITS, CONNECTIVES, FEMALE, ITEMS, MALE, ROLES, UNITS, HashRng, in_words,
)

BY_KIND: dict[str, list[Template]] = {}
for _t in TEMPLATES:
    BY_KIND.setdefault(_t.kind, []).append(_t)
EVENT_WEIGHTS = (("sale", 5), ("loan", 3), ("repay", 2), ("repay_all", 2), ("repay_half", 1), ("gift", 2),
                 ("wage", 2), ("return", 2))


@dataclass
class Person:
    name: str
    role: str
    female: bool

    def pronoun(self, subject: bool) -> str:
        if subject:
            return "she" if self.female else "he"
        return "her" if self.female else "him"


@dataclass
class Story:
    people: list[Person]
    unit: tuple[str, str, str]
    sentences: list[str] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)  # "kind.index" of each sentence
    balances: dict[str, int] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def answer(self) -> dict:
        return {"balances": dict(self.balances)}

    @property
    def answer_text(self) -> str:
        return json.dumps(self.answer)


class _Writer:
    """Renders sentences for one story, tracking who a pronoun would point to."""

    def __init__(self, rng: HashRng, story: Story, big: tuple[str, str] | None, rate: int) -> None:
        self.rng, self.story, self.big, self.rate = rng, story, big, rate
        self.focus: str | None = None  # first person mentioned in the last sentence mentioning anyone
        self.focus_pair: set[str] = set()
        self.introduced: set[str] = set()

    def number(self, n: int) -> str:
        return str(n) if self.rng.chance(0.5) else in_words(n, use_and=self.rng.chance(0.5))

    def money(self, value: int) -> str:
        singular, plural, symbol = self.story.unit
        if self.big and value % self.rate == 0 and self.rng.chance(0.45):
            count = value // self.rate
            if count == 1 and self.rng.chance(0.5):
                return f"a {self.big[0]}"
            return f"{self.number(count)} {self.big[0] if count == 1 else self.big[1]}"
        if symbol and self.rng.chance(0.5):
            return f"{symbol}{value}"
        return f"{self.number(value)} {singular if value == 1 else plural}"

    def quantity(self, qty: int, item: tuple[str, str]) -> str:
        if qty == 12 and self.rng.chance(0.5):
            return f"a dozen {item[1]}"
        return f"{self.number(qty)} {item[1]}"

    def person(self, who: Person, slot: str, template: Template, a_name: str) -> str:
        if slot == "A" and template.starts_with_a and who.name == self.focus and self._unambiguous(who) and self.rng.chance(0.6):
            return who.pronoun(subject=True)
        if slot == "B" and who.name == self.focus and self.focus_pair == {a_name, who.name} and self.rng.chance(0.6):
            return who.pronoun(subject=False)
        if who.name in self.introduced and self.rng.chance(0.3):
            return f"the {who.role}"
        return who.name

    def _unambiguous(self, who: Person) -> bool:
        """"she"/"he" only when nobody else in the last sentence could be meant by it."""
        others = [p for p in self.story.people if p.name in self.focus_pair and p.name != who.name]
        return all(p.female != who.female for p in others)

    def write(self, kind: str, fields: dict, a: Person | None = None, b: Person | None = None) -> None:
        options = [t for t in BY_KIND[kind] if not fields.get("a_is") or t.a_is == fields["a_is"]]
        options = [t for t in options if all("{" + k + "}" not in t.text or k in fields for k in ("T", "P", "QI", "J", "IP", "K"))]
        template = self.rng.choice(options)
        values = dict(fields)
        if a is not None:
            values["A"] = self.person(a, "A", template, a.name)
        if b is not None:
            values["B"] = self.person(b, "B", template, a.name if a else "")
        text = template.text
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value))
        if template.starts_with_a and self.rng.chance(0.35):
            text = f"{self.rng.choice(CONNECTIVES)}, {text}"
        self.story.sentences.append(text[0].upper() + text[1:])
        self.story.templates.append(f"{kind}.{BY_KIND[kind].index(template)}")
        mentioned = [p for p, slot in ((a, "{A}"), (b, "{B}")) if p is not None and slot in template.text]
        if mentioned:
            ordered = sorted(mentioned, key=lambda p: template.text.index("{A}" if p is a else "{B}"))
            self.focus = ordered[0].name
            self.focus_pair = {p.name for p in mentioned}


def generate(key: bytes) -> Story:
    """The story of `key` (32 bytes: the task key hashed with the miner's hotkey)."""
    rng = HashRng(key)
    count = 3 if rng.chance(0.5) else 4
    pool = [(n, True) for n in FEMALE] + [(n, False) for n in MALE]
    people = [Person(name, role, female) for (name, female), role in zip(rng.sample(pool, count), rng.sample(ROLES, count))]
    story = Story(people, rng.choice(UNITS))
    big = rng.choice(BIG_UNITS) if rng.chance(0.5) else None
    rate = rng.choice(BIG_RATES)
    writer = _Writer(rng, story, big, rate)
    ledger = Ledger()
    _introduce(writer, ledger, rate if big else 1)
    events, noise = rng.between(6, 9), rng.between(2, 3)
    noise_at = set(rng.sample(range(events + noise), noise))
    for slot in range(events + noise):
        if slot in noise_at:
            _noise(writer, rng, people)
        else:
            _event(writer, rng, ledger, people)
    story.balances = {p.name: ledger.balances[p.name] for p in people}
    return story


def _introduce(writer: _Writer, ledger: Ledger, rate: int) -> None:
    rng, story = writer.rng, writer.story
    rate_at = rng.below(len(story.people) + 1) if rate > 1 else -1
    for index, person in enumerate(story.people):
        if index == rate_at:
            _rate(writer)
        start = rng.between(4, 60) * rate if rate > 1 and rng.chance(0.3) else rng.between(20, 300)
        ledger.balances[person.name] = start
        article = "an" if person.role[0] in "aeiou" else "a"
        writer.write("intro", {"N": person.name, "R": person.role, "AR": f"{article} {person.role}", "M": writer.money(start)})
        writer.introduced.add(person.name)
        writer.focus, writer.focus_pair = person.name, {person.name}
    if rate_at == len(story.people):
        _rate(writer)


def _rate(writer: _Writer) -> None:
    assert writer.big is not None
    writer.write("rate", {"BIG": writer.big[0], "RATE": writer.number(writer.rate), "BASEP": writer.story.unit[1]})


def _noise(writer: _Writer, rng: HashRng, people: list[Person]) -> None:
    a, b = rng.sample(people, 2)
    item = rng.choice(ITEMS)
    fields = {"QI": writer.quantity(rng.between(2, 6), item), "P": writer.money(rng.between(2, 20)),
              "M": writer.money(rng.between(5, 80)), "IP": item[1], "J": rng.choice(JOBS)}
    writer.write("weather" if rng.chance(0.3) else "noise", fields, a, b)


def _event(writer: _Writer, rng: HashRng, ledger: Ledger, people: list[Person]) -> bool:
    """Writes one money event that keeps every balance at or above zero; False if none was found."""
    for _ in range(20):
        kind = _weighted_kind(rng)
        a, b = rng.sample(people, 2)
        a_is = rng.choice([t.a_is for t in BY_KIND[kind]])
        parties = {a_is: a.name, OTHER[a_is]: b.name}
        fields = _fields(writer, rng, ledger, kind, parties)
        if fields is None:
            continue
        value = ledger.amount(kind, parties, fields)
        payer = parties[PAYER[kind][0]]
        if value <= 0 or value > ledger.balances[payer]:
            continue
        ledger.apply(kind, parties, fields)
        writer.write(kind, {**fields, "a_is": a_is}, a, b)
        return True
    return False


def _weighted_kind(rng: HashRng) -> str:
    pick = rng.below(sum(w for _, w in EVENT_WEIGHTS))
    for kind, weight in EVENT_WEIGHTS:
        if pick < weight:
            return kind
        pick -= weight
    raise AssertionError("unreachable")


def _fields(writer: _Writer, rng: HashRng, ledger: Ledger, kind: str, parties: dict[str, str]) -> dict | None:
    """The numbers and words of one event, or None when it cannot happen now (no loan to repay…)."""
    if kind == "sale":
        item = rng.choice(ITEMS)
        if (parties["buyer"], parties["seller"], item[1]) in ledger.sales:
            return None  # a return names its sale by buyer, seller and item: keep that unique
        qty = 12 if rng.chance(0.1) else rng.between(2, 6)
        price = rng.between(1, 15)
        return {"qty": qty, "price": price, "item": item[1], "QI": writer.quantity(qty, item),
                "P": writer.money(price), "T": writer.money(qty * price)}
    if kind == "return":
        open_sales = [(key, qp) for key, qp in ledger.sales.items() if key[:2] == (parties["buyer"], parties["seller"]) and qp[0] > 1]
        if not open_sales:
            return None
        (_, _, item), (qty, _) = rng.choice(open_sales)
        k = rng.between(1, qty - 1)
        return {"k": k, "item": item, "K": writer.number(k), "IP": item}
    debt = ledger.owed.get((parties.get("borrower", ""), parties.get("lender", "")), 0)
    if kind in ("repay_all", "repay_half"):
        return {} if debt > 0 and (kind == "repay_all" or debt % 2 == 0) else None
    if kind == "loan" and ledger.owed.get((parties["lender"], parties["borrower"]), 0) > 0:
        return None  # debts both ways between two people would make "in full" read as a net amount
    if kind == "repay":
        if debt < 2:
            return None
        amount = rng.between(1, debt - 1)
    else:
        amount = rng.between(1, 12) * writer.rate if writer.big and rng.chance(0.3) else rng.between(3, 80)
    fields = {"amount": amount, "M": writer.money(amount)}
    if kind == "wage":
        fields["J"] = rng.choice(JOBS)
    return fields
