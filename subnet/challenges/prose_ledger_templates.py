"""Sentence templates of `prose-ledger/1` and the ledger that gives them meaning.

A template's person slots are {A} (mentioned first) and {B}; `a_is` says which party A plays, so
one event reads many ways ("Ana sold Tom two pots", "Tom bought two pots from Ana"). Placeholders:
{M} an amount of money, {P} a unit price, {T} a sale's total, {QI} a count with an item, {K} a count,
{IP} an item's plural, {J} a job, {N} a name, {R} a role, {AR} a role with its article.
In every template {B} sits where an object pronoun ("her", "him") is grammatical, and {A} is a
grammatical subject when the template starts with it (only then may A be "she"/"he").
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Template:
    kind: str
    text: str
    a_is: str = ""  # the party A plays: seller/buyer, lender/borrower, giver/taker ("" for no transfer)

    @property
    def starts_with_a(self) -> bool:
        return self.text.startswith("{A}")


def _many(kind: str, a_is: str, *texts: str) -> list[Template]:
    return [Template(kind, text, a_is) for text in texts]


TEMPLATES: list[Template] = [
    *_many("intro", "", "{N}, the {R}, had {M}.", "{N} the {R} started with {M}.", "{N}, {AR}, began the week with {M}.",
           "The {R}, {N}, had {M} saved up.", "{N} works as {AR} and had {M} at the start.",
           "At the start, {N} the {R} held {M}.", "{N}, who is {AR}, kept {M} in a tin box.",
           "Everyone knew {N} the {R}, who had {M} to spend."),
    *_many("rate", "", "One {BIG} is worth {RATE} {BASEP}.", "Here a {BIG} is worth {RATE} {BASEP}.",
           "In this town {RATE} {BASEP} make one {BIG}.", "A single {BIG} trades for {RATE} {BASEP}."),
    *_many("sale", "seller", "{A} sold {B} {QI} at {P} each.", "{A} sold {QI} to {B} for {P} apiece.",
           "{A} let {B} have {QI} at {P} each.", "{A} charged {B} {P} each for {QI}.",
           "{A} sold {B} {QI} for {T} in total.", "For {T} altogether, {A} sold {QI} to {B}."),
    *_many("sale", "buyer", "{A} bought {QI} from {B} for {P} each.", "{A} bought {QI} from {B}, paying {P} for each one.",
           "{A} paid {B} {P} apiece for {QI}.", "{A} purchased {QI} from {B} at a price of {P} each.",
           "{A} bought {QI} from {B} and paid {T} for the lot.", "{A} picked up {QI} from {B} at {P} a piece."),
    *_many("loan", "lender", "{A} lent {B} {M}.", "{A} loaned {M} to {B}.", "{A} advanced {B} {M}, to be paid back later.",
           "{A} agreed to lend {B} {M} and handed it over."),
    *_many("loan", "borrower", "{A} borrowed {M} from {B}.", "{A} asked {B} for a loan of {M} and got it.",
           "{A} took out a loan of {M} from {B}."),
    *_many("repay", "borrower", "{A} paid back {M} to {B}.", "{A} repaid {B} {M}.", "{A} handed {B} {M} toward the loan."),
    *_many("repay", "lender", "{A} got {M} of the loan back from {B}.", "{A} was repaid {M} by {B}."),
    *_many("repay_all", "borrower", "{A} repaid {B} in full.", "{A} paid off the whole debt to {B}.",
           "{A} cleared everything that was owed to {B}."),
    *_many("repay_all", "lender", "{A} was paid back in full by {B}.", "{A} collected the entire loan back from {B}."),
    *_many("repay_half", "borrower", "{A} paid {B} back half of what was owed.", "{A} repaid half of the debt to {B}."),
    *_many("repay_half", "lender", "{A} got half of the loan back from {B}."),
    *_many("gift", "giver", "{A} gave {B} {M} as a gift.", "{A} handed {B} {M}, asking nothing in return.",
           "{A} gifted {M} to {B}.", "{A} surprised {B} with a present of {M}."),
    *_many("gift", "taker", "{A} received {M} from {B} as a present.", "{A} was given {M} by {B}, no strings attached."),
    *_many("wage", "giver", "{A} paid {B} {M} for {J}.", "{A} hired {B} for {J} and paid {M}."),
    *_many("wage", "taker", "{A} earned {M} from {B} for {J}.", "{A} was paid {M} by {B} for {J}."),
    *_many("return", "buyer", "{A} returned {K} of the {IP} to {B} and got the money back.",
           "{A} brought {K} of the {IP} back to {B} for a full refund."),
    *_many("return", "seller", "{A} took back {K} of the {IP} from {B} and refunded them.",
           "{A} refunded {B} for {K} of the {IP}, which came back unused."),
    *_many("noise", "", "{A} thought about buying {QI} from {B} for {P} each but decided against it.",
           "{A} offered to lend {B} {M}, but the offer was turned down.", "{A} promised to give {B} {M} next month.",
           "{A} asked {B} the price of the {IP} but bought none.", "{A} counted the money twice and spent nothing.",
           "{A} almost paid {B} {M} for {J}, but the job was cancelled.", "{A} waved at {B} across the square."),
    *_many("weather", "", "It rained all afternoon.", "The market was crowded that day.",
           "A cold wind blew in from the hills.", "Nobody could remember a busier week.",
           "The bell in the square rang twice.", "At the stall, {IP} were going for {P} each.",
           "The river was high after the storm."),
]
# Which template kinds move money, and who pays whom: (payer party, payee party).
PAYER = {"sale": ("buyer", "seller"), "loan": ("lender", "borrower"), "repay": ("borrower", "lender"),
         "repay_all": ("borrower", "lender"), "repay_half": ("borrower", "lender"), "gift": ("giver", "taker"),
         "wage": ("giver", "taker"), "return": ("seller", "buyer")}
# The party that is not A: a template's B.
OTHER = {"seller": "buyer", "buyer": "seller", "lender": "borrower", "borrower": "lender", "giver": "taker", "taker": "giver"}
JOBS = ("mending the fence", "a day's work in the field", "fixing the roof", "carrying sacks to the mill",
        "painting the shutters", "minding the shop", "a lesson in bookkeeping", "clearing the snow")


@dataclass
class Ledger:
    """Balances, open loans and past sales: the meaning a story's events add up to."""

    balances: dict[str, int] = field(default_factory=dict)
    owed: dict[tuple[str, str], int] = field(default_factory=dict)  # (borrower, lender) -> outstanding
    sales: dict[tuple[str, str, str], tuple[int, int]] = field(default_factory=dict)  # (buyer, seller, item) -> (qty, price)

    def amount(self, kind: str, parties: dict[str, str], event: dict) -> int:
        """What an event moves from payer to payee (loans and returns are looked up here)."""
        if kind == "sale":
            return event["qty"] * event["price"]
        if kind in ("repay_all", "repay_half"):
            debt = self.owed.get((parties["borrower"], parties["lender"]), 0)
            return debt if kind == "repay_all" else debt // 2
        if kind == "return":
            _, price = self.sales[(parties["buyer"], parties["seller"], event["item"])]
            return event["k"] * price
        return event["amount"]

    def apply(self, kind: str, parties: dict[str, str], event: dict) -> int:
        value = self.amount(kind, parties, event)
        payer, payee = (parties[p] for p in PAYER[kind])
        self.balances[payer] -= value
        self.balances[payee] += value
        if kind == "sale":
            self.sales[(parties["buyer"], parties["seller"], event["item"])] = (event["qty"], event["price"])
        elif kind == "return":
            key = (parties["buyer"], parties["seller"], event["item"])
            qty, price = self.sales[key]
            self.sales[key] = (qty - event["k"], price)
        elif kind == "loan":
            key = (parties["borrower"], parties["lender"])
            self.owed[key] = self.owed.get(key, 0) + value
        elif kind.startswith("repay"):
            key = (parties["borrower"], parties["lender"])
            self.owed[key] = self.owed.get(key, 0) - value
        return value
