"""Writing for Bengali readers: digits, dates, money and first names as a native speaker writes them.

The prompts feed the model Bengali-formatted facts ("১৫ নভেম্বর ২০২৬", "৳১,৫০০", "৪৫ দিন") so it
writes them back the same way, never ISO dates or Latin digits inside Bengali text.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from engage.ai.normalize import bengali_digits

MONTHS_BN = ("জানুয়ারি", "ফেব্রুয়ারি", "মার্চ", "এপ্রিল", "মে", "জুন", "জুলাই", "আগস্ট", "সেপ্টেম্বর", "অক্টোবর",
             "নভেম্বর", "ডিসেম্বর")
# Titles and honorifics that come before a given name ("মোঃ রফিকুল ইসলাম" -> "রফিকুল").
NAME_PREFIXES = frozenset({
    "md", "md.", "mohd", "mohammad", "mohammed", "muhammad", "mr", "mr.", "mrs", "mrs.", "ms", "ms.", "dr", "dr.",
    "engr", "engr.", "sheikh", "sk", "sk.", "syed", "kazi", "মোঃ", "মো:", "মোহাম্মদ", "মুহাম্মদ", "মোছাঃ", "মোসাঃ",
    "মিসেস", "মিস্টার", "ডাঃ", "ডা.", "ডঃ", "শেখ", "সৈয়দ", "কাজী", "জনাব", "বেগম", "শ্রী", "শ্রীমতী",
})


_BARE_PREFIXES = frozenset(prefix.rstrip(".:ঃ") for prefix in NAME_PREFIXES)


def first_name(name: str) -> str:
    """The given name to address someone by: the first word that is not a title ("" when there is none)."""
    for word in (name or "").split():
        cleaned = word.strip(",;")
        if len(cleaned) > 1 and cleaned.casefold().rstrip(".:ঃ") not in _BARE_PREFIXES:
            return cleaned
    return ""


def number_bn(value: int | Decimal | float | str) -> str:
    """A number in Bengali digits with thousands separators ("১,৫০০")."""
    if isinstance(value, str):
        return bengali_digits(value)
    if isinstance(value, float | Decimal) and value != int(value):
        return bengali_digits(f"{value:,.2f}")
    return bengali_digits(f"{int(value):,}")


def date_bn(value: dt.date | dt.datetime) -> str:
    """"১৫ নভেম্বর ২০২৬"."""
    return f"{bengali_digits(value.day)} {MONTHS_BN[value.month - 1]} {bengali_digits(value.year)}"


def money_bn(value: Decimal | int | float | None) -> str:
    """"৳১,৫০০" ("" for no amount)."""
    if value is None:
        return ""
    amount = Decimal(value)
    return "৳" + number_bn(int(amount) if amount == int(amount) else amount)
