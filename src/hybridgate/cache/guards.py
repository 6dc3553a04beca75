"""Guards against the semantic cache's known false hits: two questions close in embedding space
that ask different things.

A mean-pooled word embedding barely moves when one word changes, so "What is 2+2?" and "What is
2+3?", "Is X safe?" and "Is X not safe?", or "Visa rules for Canada" and "Visa rules for Germany"
look alike. A guard compares the two texts' surface features and names the first difference
found; the matcher rejects the hit. Measured on held-out Quora question pairs
(docs/benchmarks.md, "Response cache"): numbers, negation and named entities each raise precision
at a fixed recall; a question-word guard ("how" vs "why") lowered it and is not used.

- ``number``: the sets of numbers differ (digits, and the number words two to twenty);
- ``date``: the sets of years, month or weekday names differ;
- ``negation``: one text is negated and the other is not;
- ``entity``: a capitalised word (not the first of the text, not a stop word) or an acronym in
  one text does not occur, in any case, in the other;
- ``antonym``: one text has a word of a short list of opposites ("good"/"bad", "before"/"after",
  "buy"/"sell") where the other has its opposite (rare in the data, cheap, kept);
- ``order``: the numbers and names both texts share come in another order ("Is 5 greater than
  3?" / "Is 3 greater than 5?", "USD to EUR" / "EUR to USD"). Added after a review for safety,
  not tuned: on the held-out pairs it moves the operating point along the same curve (precision
  0.782 -> 0.785, recall 0.248 -> 0.245). Swapped common nouns ("guys like girls" / "girls like
  guys") still pass: a variant over all content words cost 13% of recall for what a higher
  threshold buys, so it was not kept.

Pure functions on strings; part of the cache (step 4 of the flow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


def _words(text: str) -> list[str]:
    return text.split()


WORD = re.compile(r"\d+(?:[.,:/]\d+)*|[^\W\d_][\w'\u2019\-]*")
NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
            "fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
    if i >= 2  # "one" is mostly a pronoun ("which one"), "zero" rare
}
MONTHS_AND_DAYS = frozenset(
    _words(
        "january february march april may june july august september october november december "
        "jan feb mar apr jun jul aug sep sept oct nov dec "
        "monday tuesday wednesday thursday friday saturday sunday"
    )
) - {"may", "march"}  # also common verbs; counted as dates only when capitalised mid-text
NEGATIONS = frozenset(_words("not no never nor without cannot none nothing nobody neither nowhere"))
STOP_WORDS = frozenset(
    _words(
        "a an the is are was were be been being am do does did have has had i me my we us our you "
        "your he him his she her it its they them their this that these those of in on at to for "
        "from by with about as into than then so and or but if what which who whom whose when where "
        "why how can could would should will shall may might must there here some any all each "
        "very just also more most much many one get got if yes ok please hi hello thanks"
    )
)
ANTONYMS = dict(
    pair
    for a, b in (
        p.split("/")
        for p in _words(
            "good/bad best/worst better/worse more/less most/least increase/decrease before/after "
            "pros/cons advantages/disadvantages advantage/disadvantage buy/sell buying/selling "
            "win/lose cheap/expensive cheapest/most-expensive fast/slow faster/slower easy/hard "
            "easiest/hardest hot/cold high/low higher/lower highest/lowest positive/negative "
            "start/stop legal/illegal safe/unsafe true/false right/wrong love/hate male/female "
            "men/women man/woman boys/girls boy/girl guys/girls old/new older/newer import/export "
            "input/output min/max minimum/maximum add/remove open/close rich/poor strong/weak"
        )
    )
    for pair in ((a, b), (b, a))
)


@dataclass(frozen=True)
class Surface:
    """What the guards compare, extracted once per text."""

    numbers: frozenset[str]
    dates: frozenset[str]
    negated: bool
    entities: frozenset[str]  # lower-cased
    words: frozenset[str]  # every word, lower-cased
    sequence: tuple[str, ...] = ()  # numbers and names in the order they come, lower-cased
    tokens: tuple[str, ...] = ()  # every word in order, lower-cased, possessive 's dropped


def surface(text: str) -> Surface:
    """The guard features of one text."""
    tokens = WORD.findall(text)
    lower = [t.lower() for t in tokens]
    numbers = {_number(t) for t in tokens if t[0].isdigit()} | {
        NUMBER_WORDS[w] for w in lower if w in NUMBER_WORDS
    }
    years = {n for n in numbers if len(n) == 4 and n[:2] in {"19", "20"}}
    named = {t.lower() for i, t in enumerate(tokens) if i > 0 and _is_name(t)}
    dates = years | {w for w in named if w in MONTHS_AND_DAYS or w in {"may", "march"}}
    dates |= {w for w in lower if w in MONTHS_AND_DAYS}
    return Surface(
        numbers=frozenset(numbers - years),
        dates=frozenset(dates),
        negated=any(w in NEGATIONS or w.endswith(("n't", "n\u2019t")) for w in lower),
        entities=frozenset(named - dates),
        words=frozenset(lower),
        sequence=tuple(_number(t) if t[0].isdigit() else t.lower() for t in _ordered_facts(tokens)),
        tokens=tuple(_plain(w) for w in lower),
    )


def difference(a: Surface, b: Surface) -> str | None:
    """The name of the first guard the two texts trip, or None if they pass all of them."""
    if a.dates != b.dates:
        return "date"
    if a.numbers != b.numbers:
        return "number"
    if a.negated != b.negated:
        return "negation"
    if (a.entities - b.words) or (b.entities - a.words):
        return "entity"
    if _opposed(a.words, b.words) or _opposed(b.words, a.words):
        return "antonym"
    if _swapped(a.sequence, b.sequence):
        return "order"
    if _roles_swapped(a.tokens, b.tokens):
        return "roles"
    if _measure(a.tokens) != _measure(b.tokens):
        return "measure"
    return None


def _measure(tokens: tuple[str, ...]) -> str | None:
    """What a "how" question measures: "How tall is Everest?" / "How old is Everest?" share every
    other word. None when "how" is followed by a stop word ("how do I", "how can I")."""
    at = tokens.index("how") if "how" in tokens else -1
    if at < 0 or at + 1 >= len(tokens) or tokens[at + 1] in STOP_WORDS:
        return None
    return tokens[at + 1]


def _roles_swapped(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Two words trade places around a word both texts use once: "from savings to current" /
    "from current to savings", "cats chase mice" / "mice chase cats", "Is A faster than B?" /
    "Is B faster than A?". A mean-pooled embedding cannot tell these apart (similarity 1.0)."""
    if a == b:
        return False
    once_a, once_b = _once(a), _once(b)
    for anchor in (once_a.keys() & once_b.keys()) - SYMMETRIC:
        left_a, right_a = _neighbours(a, once_a[anchor])
        left_b, right_b = _neighbours(b, once_b[anchor])
        if left_a and right_a and left_a != right_a and (left_a, right_a) == (right_b, left_b):
            return True
    # "from X ... to Y": the first content words after each end of a direction.
    return _direction(a) is not None and _direction(a) == _reversed(_direction(b))


# "A and B" is "B and A": words that join without giving either side a role.
SYMMETRIC = frozenset(_words("and or nor vs versus between & plus"))


def _once(tokens: tuple[str, ...]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for i, word in enumerate(tokens):
        seen[word] = -1 if word in seen else i
    return {word: i for word, i in seen.items() if i >= 0}


def _neighbours(tokens: tuple[str, ...], at: int) -> tuple[str | None, str | None]:
    """The nearest content words (not stop words) left and right of position ``at``."""
    left = next((w for w in reversed(tokens[:at]) if w not in STOP_WORDS), None)
    right = next((w for w in tokens[at + 1 :] if w not in STOP_WORDS), None)
    return left, right


def _direction(tokens: tuple[str, ...]) -> tuple[str, str] | None:
    if "from" not in tokens:
        return None
    start = tokens.index("from")
    end = next((i for i in range(start + 1, len(tokens)) if tokens[i] in ("to", "into")), None)
    if end is None:
        return None
    source = next((w for w in tokens[start + 1 : end] if w not in STOP_WORDS), None)
    target = next((w for w in tokens[end + 1 :] if w not in STOP_WORDS), None)
    return (source, target) if source and target and source != target else None


def _reversed(pair: tuple[str, str] | None) -> tuple[str, str] | None:
    return None if pair is None else (pair[1], pair[0])


def _plain(word: str) -> str:
    return word[:-2] if word.endswith(("'s", "\u2019s")) else word


def _ordered_facts(tokens: list[str]) -> list[str]:
    return [t for i, t in enumerate(tokens) if t[0].isdigit() or (i > 0 and _is_name(t))]


def _swapped(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """The numbers and names both texts share come in another order: "Is 5 greater than 3?" /
    "Is 3 greater than 5?", "100 USD to EUR" / "100 EUR to USD"."""
    shared = set(a) & set(b)
    first_a = [w for i, w in enumerate(a) if w in shared and w not in a[:i]]
    first_b = [w for i, w in enumerate(b) if w in shared and w not in b[:i]]
    return len(shared) >= 2 and first_a != first_b


def _opposed(a: frozenset[str], b: frozenset[str]) -> bool:
    """``a`` has a word whose opposite is in ``b`` but not in ``a`` (and the word is not in ``b``)."""
    return any(w in ANTONYMS and ANTONYMS[w] in b and ANTONYMS[w] not in a and w not in b for w in a)


def _is_name(token: str) -> bool:
    """A capitalised or all-caps word that is not a stop word (and not "I")."""
    return token[0].isupper() and token.lower() not in STOP_WORDS and len(token) > 1


def _number(token: str) -> str:
    """Digits without thousands separators or trailing zeros after a point: "1,000" == "1000"."""
    plain = token.replace(",", "")
    if "." in plain and plain.replace(".", "", 1).isdigit():
        plain = plain.rstrip("0").rstrip(".")
    return plain
