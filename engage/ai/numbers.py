"""Amounts of money written in words ("পনেরোশো টাকা", "এক হাজার টাকায়", "fifteen hundred taka").

A model told not to invent prices can still write one in words; the claims check (engage.ai.claims)
compares these amounts with the context's prices like any amount in digits. Works on the folded
text (engage.ai.normalize.fold), so spelling variants (পনেরো/পনের, chandrabindu) read alike.
"""

from __future__ import annotations

from decimal import Decimal

from engage.ai.normalize import fold_phrase

_UNITS_RAW = {
    "এক": 1, "দুই": 2, "দু": 2, "তিন": 3, "চার": 4, "পাঁচ": 5, "ছয়": 6, "সাত": 7, "আট": 8, "নয়": 9,
    "দশ": 10, "এগারো": 11, "বারো": 12, "তেরো": 13, "চোদ্দ": 14, "চৌদ্দ": 14, "পনেরো": 15, "পনের": 15, "ষোলো": 16,
    "ষোল": 16, "সতেরো": 17, "আঠারো": 18, "উনিশ": 19, "বিশ": 20, "কুড়ি": 20, "পঁচিশ": 25, "ত্রিশ": 30,
    "তিরিশ": 30, "চল্লিশ": 40, "পঞ্চাশ": 50, "ষাট": 60, "সত্তর": 70, "আশি": 80, "নব্বই": 90,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
    "ek": 1, "dui": 2, "tin": 3, "panch": 5, "das": 10, "dosh": 10, "ponero": 15, "bish": 20, "ponchash": 50,
}
_MULTIPLIERS_RAW = {"শো": 100, "শ": 100, "শত": 100, "হাজার": 1000, "লাখ": 100000, "লক্ষ": 100000,
                    "hundred": 100, "thousand": 1000, "lakh": 100000, "hajar": 1000, "sho": 100}
_FRACTIONS_RAW = {"দেড়": Decimal("1.5"), "আড়াই": Decimal("2.5")}
_HALF_MORE_RAW = ("সাড়ে", "sare")
_CURRENCY_RAW = ("টাকা", "taka", "tk", "takay", "takar", "bdt")

ONE = frozenset(fold_phrase(word) for word in ("এক", "one", "ek"))
UNITS = {fold_phrase(word): Decimal(value) for word, value in _UNITS_RAW.items()}
MULTIPLIERS = {fold_phrase(word): Decimal(value) for word, value in _MULTIPLIERS_RAW.items()}
FRACTIONS = {fold_phrase(word): value for word, value in _FRACTIONS_RAW.items()}
HALF_MORE = frozenset(fold_phrase(word) for word in _HALF_MORE_RAW)
CURRENCY = tuple(fold_phrase(word) for word in _CURRENCY_RAW)


def _glued(token: str) -> Decimal | None:
    """"পনেরোশো" = 15 x 100, "পাঁচশো" = 500 (a unit with শো/শ/শত glued on)."""
    for suffix in ("শো", "শত", "শ"):
        suffix = fold_phrase(suffix)
        if token.endswith(suffix) and token[: -len(suffix)] in UNITS:
            return UNITS[token[: -len(suffix)]] * 100
    return None


def _is_number_word(token: str) -> bool:
    return token in UNITS or token in MULTIPLIERS or token in FRACTIONS or token in HALF_MORE or _glued(token) is not None


def _value(tokens: list[str]) -> Decimal | None:
    total, current, half = Decimal(0), Decimal(0), False
    for token in tokens:
        if token in HALF_MORE:
            half = True
        elif token in FRACTIONS:
            current += FRACTIONS[token]
        elif token in UNITS:
            current += UNITS[token] + (Decimal("0.5") if half else 0)
            half = False
        elif (glued := _glued(token)) is not None:
            current += glued
        elif token in MULTIPLIERS:
            multiplier = MULTIPLIERS[token]
            current = (current or 1) * multiplier
            if multiplier >= 1000:
                total, current = total + current, Decimal(0)
    value = total + current
    return value.normalize() if value else None


def money_in_words(folded: str) -> list[Decimal]:
    """The amounts written in words just before a currency word (টাকা, taka, tk) in the folded text."""
    tokens = folded.split()
    amounts = []
    run: list[str] = []
    for token in tokens:
        if _is_number_word(token):
            run.append(token)
            continue
        # "এক টাকাও লাগবে না", "not one taka": a single "one" is a way of saying none, not a price.
        is_none = len(run) == 1 and run[0] in ONE
        if run and token.startswith(CURRENCY) and any(word not in HALF_MORE for word in run) and not is_none:
            value = _value(run)
            if value is not None:
                amounts.append(value)
        run = []
    return amounts
