"""Promises: every price, percentage, offer, guarantee or promo code must come from the context.

The model is told not to invent them; this checks it did not. A claim passes when the context
gave it: the service's price and the campaign's promo code (`SafetyContext.prices`,
`promo_codes`), or the facts the model was given (`SafetyContext.facts`: knowledge-base passages),
from which the same extractor takes the allowed claims. Numbers are compared as values, in Latin
or Bengali digits ("৳১,৫০০" = "1500 taka"). Percentages in coaching are performance figures, not
offers, and are not claims there.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from engage.ai.lexicons import lexicon
from engage.ai.normalize import as_written, bengali_digits, fold, fold_phrase, latin_digits
from engage.ai.numbers import money_in_words
from engage.ai.reasons import SafetyReason
from engage.ai.safety_context import SafetyContext

_NUMBER = r"(\d{1,3}(?:,\d{2,3})+|\d+)(?:\.(\d{1,2}))?"
_MULTIPLIER = r"(?:\s*(হাজার|thousand|k)(?![a-z]))?"
_BEFORE = r"(?:৳|(?<![a-z])tk\.?|(?<![a-z])taka|(?<![a-z])bdt|(?<![a-z])rs\.?|\$|(?<![a-z])usd)\s*"
_AFTER = r"\s*(?:/-|৳|tk\b\.?|taka\b|টাকা[\u0980-\u09ff]*|bdt\b|usd\b|dollars?\b)"
MONEY = re.compile(rf"{_BEFORE}{_NUMBER}{_MULTIPLIER}|{_NUMBER}{_MULTIPLIER}{_AFTER}", re.IGNORECASE)
PERCENT = re.compile(rf"{_NUMBER}\s*(?:%|percent\b|per cent\b|শতাংশ|পার্সেন্ট|পারসেন্ট)", re.IGNORECASE)
URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)

_CODE_WORDS = r"(?:promo\s*code|coupon\s*code|discount\s*code|voucher\s*code|code|coupon|promo|voucher|কোড|কুপন|প্রোমো|ভাউচার)"
PROMO_AFTER = re.compile(_CODE_WORDS + r"(?:টি|টা|ে)?\s*[:：\-–]?\s*[\"'“‘]?([A-Za-z0-9][A-Za-z0-9_-]{2,19})\b", re.IGNORECASE)
PROMO_BEFORE = re.compile(r"\b([A-Z][A-Z0-9_-]{2,19})[\"'”’]?\s*" + _CODE_WORDS)
PROMO_ALONE = re.compile(r"\b([A-Z]{3,}[0-9]{1,3})\b")
# A percentage of work done ("আপনি কোর্সের ৬০% শেষ করেছেন", "80% complete") is progress, not an offer,
# unless an offer word shares its clause.
PROGRESS_AFTER = re.compile(
    r"^[^.!?।\n,]{0,25}?(?:শেষ কর|শেষ হ|সম্পন্ন|complete|done|finished|attendance|উপস্থিতি|progress|অগ্রগতি)",
    re.IGNORECASE,
)
OFFER_WORDS = re.compile(r"ছাড়|ক্যাশব্যাক|গ্যারান্টি|নিশ্চয়তা|ফেরত|\b(?:off|discount|cashback|guarantee\w*|refund|save)\b",
                         re.IGNORECASE)
ORDER_WORDS = re.compile(r"(?:order|booking|invoice|ref|id|no|অর্ডার|বুকিং|নং|নম্বর|#)\W{0,3}$", re.IGNORECASE)


def _looks_like_code(token: str) -> bool:
    has_letter = any(character.isalpha() for character in token)
    return has_letter and (any(character.isdigit() for character in token) or token.isupper())


def _amount(whole: str, fraction: str | None, multiplier: str | None) -> Decimal | None:
    try:
        value = Decimal(whole.replace(",", "") + (f".{fraction}" if fraction else ""))
    except InvalidOperation:
        return None
    if multiplier:
        value *= 1000
    return value.normalize()


@dataclass(frozen=True)
class Claims:
    prices: tuple[Decimal, ...] = ()
    percentages: tuple[Decimal, ...] = ()
    promo_codes: tuple[str, ...] = ()
    discounts: tuple[str, ...] = ()
    guarantees: tuple[str, ...] = ()


@functools.lru_cache(maxsize=1024)
def claims_extract(text: str) -> Claims:
    """The claims `text` makes: money amounts, percentages, promo codes, offer and guarantee words."""
    plain = latin_digits(URL.sub(" ", text))
    prices, percentages, codes = [], [], []
    for match in MONEY.finditer(plain):
        groups = match.groups()
        whole, fraction, multiplier = (groups[0], groups[1], groups[2]) if groups[0] else (groups[3], groups[4], groups[5])
        amount = _amount(whole, fraction, multiplier)
        if amount is not None:
            prices.append(amount)
    for match in PERCENT.finditer(plain):
        clause = re.split(r"[.!?।\n]", plain[match.end():], maxsplit=1)[0]
        if PROGRESS_AFTER.match(plain[match.end():]) and not OFFER_WORDS.search(clause):
            continue
        amount = _amount(match.group(1), match.group(2), None)
        if amount is not None:
            percentages.append(amount)
    for pattern in (PROMO_AFTER, PROMO_BEFORE):
        for match in pattern.finditer(plain):
            token = match.group(1)
            if _looks_like_code(token) and not token.isdigit():
                codes.append(token)
    for match in PROMO_ALONE.finditer(plain):
        if not ORDER_WORDS.search(plain[max(0, match.start() - 14) : match.start()]):
            codes.append(match.group(1))
    folded = fold(text)
    prices += money_in_words(folded)
    return Claims(
        prices=tuple(dict.fromkeys(prices)),
        percentages=tuple(dict.fromkeys(percentages)),
        promo_codes=tuple(dict.fromkeys(codes)),
        discounts=_offered(text, "discount", folded),
        guarantees=_offered(text, "guarantee", folded),
    )


def _fold_all(*words: str) -> frozenset[str]:
    return frozenset(fold_phrase(word) for word in words)


# An offer or guarantee that the sentence denies ("no discount", "we can't guarantee", "কোনো ছাড় চলছে না",
# "kono discount nai") is no claim. English negates before the word, Bengali after it; only these filler
# words may stand between ("don't miss our discount" is not a denial: "miss" is no filler).
NEGATIONS_BEFORE = _fold_all("no", "not", "never", "t", "cannot", "nor")
FILLERS_BEFORE = _fold_all("any", "a", "an", "the", "have", "has", "had", "offer", "offering", "give", "giving",
                           "provide", "providing", "currently", "right", "now", "running", "available", "exact",
                           "make", "promise", "be", "we", "i", "can", "do", "does", "is", "are", "there")
NEGATIONS_AFTER = _fold_all("না", "নেই", "নাই", "নয়", "nai", "nei", "na", "noy", "nahi")
FILLERS_AFTER = _fold_all("চলছে", "চলে", "দেওয়া", "দেয়া", "দিতে", "দেওয়ার", "পারছি", "পারব", "পারি", "সম্ভব",
                          "হচ্ছে", "হবে", "যাবে", "যায়", "এখন", "আপাতত", "আর", "কোনো", "cholche", "dewa", "deya",
                          "dite", "parbo", "parchi", "pari", "jabe", "hobe", "ekhon", "apatoto", "chole", "ar")


def _is_denied(before: list[str], after: list[str]) -> bool:
    for token in reversed(before[-5:]):
        if token in NEGATIONS_BEFORE:
            return True
        if token not in FILLERS_BEFORE:
            break
    for token in after[:4]:
        if token in NEGATIONS_AFTER:
            return True
        if token not in FILLERS_AFTER:
            break
    return False


def _offered(text: str, name: str, folded: str) -> tuple[str, ...]:
    """The words of lexicon `name` (offers, guarantees) that a sentence of `text` states and does not deny."""
    if not lexicon(name).find(text, folded=folded):
        return ()
    offered: list[str] = []
    for sentence in re.split(r"(?<=[.!?।])\s+|\n+", text):
        sentence_folded = fold(sentence)
        for word in lexicon(name).find(sentence, folded=sentence_folded):
            at = sentence_folded.find(f" {word} ")
            if at == -1 or not _is_denied(sentence_folded[:at].split(), sentence_folded[at + len(word) + 2 :].split()):
                if word not in offered:
                    offered.append(word)
    return tuple(offered)


def _money(value: Decimal) -> str:
    return "৳" + bengali_digits(f"{value:,.2f}".removesuffix(".00"))


def check_claims(text: str, *, context: SafetyContext) -> list[SafetyReason]:
    """A reason per kind of claim the context did not give."""
    claims = claims_extract(text)
    if not (claims.prices or claims.percentages or claims.promo_codes or claims.discounts or claims.guarantees):
        return []
    facts = claims_extract(context.facts) if context.facts else Claims()
    reasons = []
    allowed_prices = {Decimal(value).normalize() for value in context.prices} | set(facts.prices)
    made_up = [price for price in claims.prices if price not in allowed_prices]
    if made_up:
        given = ", ".join(_money(price) for price in sorted(allowed_prices)) or "none"
        reasons.append(SafetyReason(
            "unapproved_price",
            f"A price the context did not give ({', '.join(_money(price) for price in made_up[:3])}). Prices the "
            f"model may state: {given}. Remove or correct it.",
        ))
    if context.message_type != "coaching":
        made_up_percent = [value for value in claims.percentages if value not in set(facts.percentages)]
        if made_up_percent:
            reasons.append(SafetyReason(
                "unapproved_percentage",
                f"A percentage the context did not give ({', '.join(bengali_digits(f'{value:f}%') for value in made_up_percent[:3])}): "
                "a made-up discount or claim. Remove it.",
            ))
    allowed_codes = {code.casefold() for code in (*context.promo_codes, *facts.promo_codes) if code}
    made_up_codes = [code for code in claims.promo_codes if code.casefold() not in allowed_codes]
    if made_up_codes:
        given = ", ".join(context.promo_codes) or "none"
        reasons.append(SafetyReason(
            "unapproved_promo_code",
            f"A promo code the campaign did not give ({', '.join(made_up_codes[:3])}; the campaign's: {given}). Remove it.",
        ))
    if claims.discounts and not (context.promo_codes or facts.discounts or facts.promo_codes):
        reasons.append(SafetyReason(
            "unapproved_discount",
            f"An offer with no promotion behind it ({', '.join(f'“{as_written(text, word)}”' for word in claims.discounts[:3])}). "
            "Offers and discounts go out only with a campaign's promo code.",
        ))
    if claims.guarantees and not facts.guarantees:
        reasons.append(SafetyReason(
            "unapproved_guarantee",
            f"A guarantee or refund promise the context did not give ({', '.join(f'“{as_written(text, word)}”' for word in claims.guarantees[:3])}). "
            "Promise only what the company's facts say.",
        ))
    return reasons
