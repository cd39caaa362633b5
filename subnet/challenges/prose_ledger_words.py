"""Vocabulary and number words of `prose-ledger/1`, and its deterministic random stream.

Everything a story is drawn from lives here so the generator (`prose_ledger_story`) and the twin's
oracle (`prose_ledger_oracle`) read the same lists. Changing any list changes every story: it is a
new challenge version (docs/llm-challenge.md).
"""

from __future__ import annotations

import hashlib
import re

FEMALE = (
    "Ada Alma Amara Ana Aurora Beatriz Bianca Carmen Celia Dalia Daria Edith Elena Elif Esme Fatima Freya "
    "Greta Hana Ines Ingrid Iris Isla Jana Joy Kaia Keiko Lara Leila Lena Lucia Mara Marta Maya Mei Mina "
    "Nadia Naomi Nell Nina Noor Olga Paula Priya Rosa Ruth Sara Selma Sofia Tara Thea Una Vera Wanda Yara Zoe"
).split()
MALE = (
    "Abel Adam Amir Anton Arlo Bruno Caleb Carlos Cyril Dario Dev Elias Emil Ezra Felix Finn Gus Hamid "
    "Hugo Ivan Jack Jonas Jude Kai Kenji Lars Leo Luca Malik Marco Milo Nico Noah Omar Oscar Otto Pablo "
    "Pavel Quinn Raul Rene Rohan Sam Silas Tariq Teo Tomas Ugo Victor Viktor Wade Xavi Yusuf Zane"
).split()
ROLES = (
    "baker blacksmith butcher carpenter cobbler potter weaver tailor miller brewer fisher farmer "
    "mason glassblower jeweler locksmith apothecary innkeeper shepherd beekeeper cooper tanner "
    "chandler saddler dyer barber florist grocer printer bookbinder ferryman gardener herbalist "
    "astronomer engineer clockmaker"
).split()
# (singular, plural): what is bought, sold and returned.
ITEMS = (
    ("loaf", "loaves"), ("horseshoe", "horseshoes"), ("pot", "pots"), ("basket", "baskets"),
    ("candle", "candles"), ("jar of honey", "jars of honey"), ("sack of flour", "sacks of flour"),
    ("bolt of cloth", "bolts of cloth"), ("pair of boots", "pairs of boots"), ("lantern", "lanterns"),
    ("knife", "knives"), ("barrel", "barrels"), ("bottle of ink", "bottles of ink"), ("rope", "ropes"),
    ("wheel of cheese", "wheels of cheese"), ("bucket", "buckets"), ("chair", "chairs"), ("lock", "locks"),
    ("blanket", "blankets"), ("map", "maps"), ("clock", "clocks"), ("pie", "pies"), ("hat", "hats"),
)
# (singular, plural, symbol or ""): the story's base currency; answers are in it.
UNITS = (
    ("coin", "coins", ""), ("penny", "pennies", ""), ("dollar", "dollars", "$"), ("shell", "shells", ""),
    ("mark", "marks", ""), ("credit", "credits", ""), ("copper", "coppers", ""), ("bead", "beads", ""),
    ("token", "tokens", ""), ("euro", "euros", "€"),
)
# (singular, plural): a larger coin some stories also use, worth a whole number of base units.
BIG_UNITS = (("crown", "crowns"), ("florin", "florins"), ("sovereign", "sovereigns"), ("ducat", "ducats"),
             ("guilder", "guilders"), ("noble", "nobles"))
BIG_RATES = (5, 10, 12, 20, 25)
CONNECTIVES = (
    "Later", "After that", "The next day", "That afternoon", "On Monday", "On Tuesday", "By evening",
    "Soon after", "Then", "Before noon", "The following week", "Meanwhile", "At the market", "Around midday",
)
WEATHER = (
    "It rained all afternoon.", "The market was crowded that day.", "A cold wind blew in from the hills.",
    "Nobody could remember a busier week.", "The bell in the square rang twice.", "Prices were the talk of the town.",
    "The river was high after the storm.", "A fair was announced for the spring.",
)

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
       "sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
NUMBER_WORDS = set(ONES) | set(TENS[2:]) | {"hundred", "thousand", "and"}
# A number in digits or in words ("two hundred and six", "forty-five"): both forms appear in stories.
NUMBER_RE = r"(?:\d+|(?:%s)(?:(?:-| | and )(?:%s))*)" % (("|".join(sorted(NUMBER_WORDS - {"and"}, key=len, reverse=True)),) * 2)


def in_words(n: int, use_and: bool = True) -> str:
    """English words for 0 ≤ n < 1,000,000 ("two hundred and six", or without "and")."""
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + ONES[n % 10])
    if n < 1000:
        head = ONES[n // 100] + " hundred"
        return head if n % 100 == 0 else head + (" and " if use_and else " ") + in_words(n % 100, use_and)
    head = in_words(n // 1000, use_and) + " thousand"
    return head if n % 1000 == 0 else head + (" and " if use_and and n % 1000 < 100 else " ") + in_words(n % 1000, use_and)


def parse_number(text: str) -> int:
    """The value of a number written by `in_words` or in digits; ValueError otherwise."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    total, current = 0, 0
    for word in re.split(r"[- ]+", text):
        if word == "and":
            continue
        if word in ONES:
            current += ONES.index(word)
        elif word in TENS[2:]:
            current += 10 * TENS.index(word)
        elif word == "hundred":
            current *= 100
        elif word == "thousand":
            total, current = total + current * 1000, 0
        else:
            raise ValueError(f"not a number word: {word!r}")
    return total + current


class HashRng:
    """A deterministic stream: block i is sha256(key ‖ i); no process-wide state, same on every Python."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._counter = 0
        self._pool = b""

    def _bytes(self, n: int) -> bytes:
        while len(self._pool) < n:
            self._pool += hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        out, self._pool = self._pool[:n], self._pool[n:]
        return out

    def below(self, n: int) -> int:
        """Uniform in [0, n) by rejection (no modulo bias)."""
        if n <= 0:
            raise ValueError("below() needs n > 0")
        limit = (1 << 64) - (1 << 64) % n
        while True:
            x = int.from_bytes(self._bytes(8), "big")
            if x < limit:
                return x % n

    def between(self, lo: int, hi: int) -> int:
        """Uniform in [lo, hi]."""
        return lo + self.below(hi - lo + 1)

    def chance(self, p: float) -> bool:
        return self.below(1 << 20) < p * (1 << 20)

    def choice(self, seq):
        return seq[self.below(len(seq))]

    def sample(self, seq, k: int) -> list:
        pool = list(seq)
        return [pool.pop(self.below(len(pool))) for _ in range(k)]
