"""Moderation: the offline lexicon layer (always) and the OpenAI-compatible moderation endpoint (with a key).

Offline: curated Bengali, English and Banglish word lists (engage/ai/lexicons/) matched on the
folded text (spacing, diacritics, leetspeak and homoglyphs normalised: engage.ai.normalize), so
offline mode is safe too. Categories: profanity, insult, threat, sexual, political, religious, hate,
self-harm, drugs, gambling, health claims and a denied opt-out.

Online: `moderation_call(client=..., model=..., text=..., timeout=...)` asks `POST /v1/moderations`
through the `openai` SDK's client (engage.ai.sdk) and returns a `ModerationResult`; a flagged category becomes the reason
`moderation_flagged`. The client calls it on the model's text only (an approved fallback is the
company's own text), inside the generation's time budget.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from engage.ai.lexicons import lexicon
from engage.ai.normalize import as_written
from engage.ai.reasons import SafetyReason
from engage.ai.sdk import sdk_post

OFFLINE_CATEGORIES: dict[str, str] = {
    "profanity": "Profanity",
    "insult": "An insult",
    "threat": "A threat",
    "sexual": "Sexual content",
    "political": "Political content",
    "religious": "Religious content",
    "hate": "Contempt for a group of people",
    "self_harm": "Self-harm",
    "drugs": "Illegal drugs",
    "gambling": "Gambling or a get-rich scheme",
    "medical_claims": "A health claim",
    "opt_out_denied": "An opt-out denied",
}
ADVICE = {
    "profanity": "Vulgar words never go out under the company's name: remove them.",
    "insult": "Say it politely or not at all.",
    "threat": "Remove the threat.",
    "sexual": "Remove it.",
    "political": "Messages stay out of politics (parties, leaders, elections).",
    "religious": "Messages stay out of religion (festival greetings are fine).",
    "hate": "Never speak of people by region, ethnicity, caste, gender, sexuality or disability: remove it.",
    "self_harm": "Remove it; a person who writes about harming themselves gets a human, not a message.",
    "drugs": "Remove it.",
    "gambling": "No betting, lotteries or money-doubling: remove it.",
    "medical_claims": "A service or product must not claim to cure, treat or prevent a disease: remove the claim.",
    "opt_out_denied": "Anyone may stop our messages at any time (STOP works): never say otherwise.",
}


# "টাকা না দিলে ... দেখে নেব", "taka na dile tule niye jabo": a condition, then a menace, in one clause.
# "দেখে নেব" alone is everyday Bengali ("we'll look into it"); after "if you don't pay" it is a threat.
CONDITIONAL_THREAT = re.compile(unicodedata.normalize("NFC",
    r"(?:না দিলে|না করলে|নইলে|নাহলে|যদি[^.!?।\n]{0,30}না (?:করেন|দেন)|\bna dile|\bna korle|\bnoile|\bnahole|\bor else"
    r"|\bunless\b"
    r"|\bif you don'?t\b|\bif you do not\b)"
    r"[^.!?।\n]{0,50}"
    r"(?:দেখে নেব|দেখে নিব|খবর আছে|তুলে নিয়ে যাব|লোক পাঠাব|\bdekhe nebo|\bdekhe nibo|\bkhobor a(?:s|ch)e"
    r"|\btule niye jabo|\blok pathabo"
    # A customer's account or service cut off as a menace ("book now or your account will be closed").
    r"|অ্যাকাউন্ট বন্ধ|একাউন্ট বন্ধ|অ্যাকাউন্ট ব্লক|সার্ভিস বন্ধ করে দেওয়া|ব্লক করে দেওয়া হবে"
    r"|\baccount (?:will|would) be (?:closed|blocked|suspended|deactivated|terminated))"), re.IGNORECASE)
# The mirror order: the menace first, then the condition ("your account will be closed unless you book",
# "অ্যাকাউন্ট বন্ধ হয়ে যাবে যদি আজ বুক না করেন").
MENACE_THEN_CONDITION = re.compile(unicodedata.normalize("NFC",
    r"(?:অ্যাকাউন্ট বন্ধ|একাউন্ট বন্ধ|অ্যাকাউন্ট ব্লক|\baccount (?:will|would) be (?:closed|blocked|suspended|deactivated"
    r"|terminated))[^.!?।\n]{0,40}(?:\bunless\b|\bif you don'?t\b|\bif you do not\b|যদি না|না করলে|না দিলে"
    r"|যদি[^.!?।\n]{0,30}না (?:করেন|দেন))"),
    re.IGNORECASE)
# A disease and a cure in one clause ("this spray cures asthma", "ক্যান্সার সারিয়ে দেয়"), either order.
_DISEASE = (r"(?:cancer|asthma|diabetes|covid|corona(?:virus)?|tumou?r|tuberculosis|\btb\b|hepatitis|hiv|aids"
            r"|arthritis|blood pressure|kidney disease|heart disease|any disease|all diseases|ক্যান্সার|ক্যানসার"
            r"|হাঁপানি|হাপানি|অ্যাজমা|ডায়াবেটিস|ডায়াবেটিস|করোনা|টিউমার|যক্ষ্মা|হেপাটাইটিস|রক্তচাপ|কিডনি রোগ"
            r"|হৃদরোগ|সব রোগ|যেকোনো রোগ)")
_CURE = (r"(?:\bcures?\b|\bcured\b|\bheals?\b|\btreats?\b|\bprevents?\b|\beliminates?\b|\bremedy for\b"
         r"|সারিয়ে|সারায়|সারাবে|সেরে যা|নিরাময়|ভালো করে দেয়|ভালো হয়ে যা|প্রতিরোধ করে|দূর করে)")
MEDICAL_CLAIM = re.compile(unicodedata.normalize("NFC",
    rf"{_DISEASE}[^.!?।\n]{{0,40}}{_CURE}|{_CURE}[^.!?।\n]{{0,40}}{_DISEASE}"), re.IGNORECASE)


def moderation_offline(text: str, *, folded: str) -> list[SafetyReason]:
    """One reason per offline category with a match, naming the words found."""
    reasons = []
    for category, label in OFFLINE_CATEGORIES.items():
        found = lexicon(category).find(text, folded=folded)
        if category == "threat" and not found:
            normalized = unicodedata.normalize("NFC", text)
            menace = CONDITIONAL_THREAT.search(normalized) or MENACE_THEN_CONDITION.search(normalized)
            found = [" ".join(menace.group(0).split())] if menace else []
        if category == "medical_claims" and not found:
            claim = MEDICAL_CLAIM.search(unicodedata.normalize("NFC", text))
            found = [" ".join(claim.group(0).split())] if claim else []
        if found:
            words = ", ".join(f"“{as_written(text, word)}”" for word in found[:3])
            reasons.append(SafetyReason(category, f"{label} ({words}). {ADVICE[category]}"))
    return reasons


def crisis_signs(text: str) -> list[str]:
    """Words of someone writing about harming themselves (`lexicons/crisis.txt`), for inbound texts: a
    conversation that shows them goes to a person, not to the model."""
    return lexicon("crisis").find(text)


@dataclass
class ModerationResult:
    """The endpoint's answer, kept on the AISession (`safety.moderation`)."""

    is_called: bool = False
    flagged: bool = False
    categories: list[str] = field(default_factory=list)
    model: str = ""
    error: str = ""
    latency_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"is_called": self.is_called, "flagged": self.flagged, "categories": self.categories,
                "model": self.model, "error": self.error, "latency_ms": self.latency_ms}

    def reasons(self) -> list[SafetyReason]:
        if self.error:
            return [SafetyReason(
                "moderation_unavailable",
                f"The moderation service did not answer ({self.error[:200]}), so the model's text was not used.",
            )]
        if self.flagged:
            names = ", ".join(category.replace("/", " / ").replace("-", " ") for category in self.categories) or "unsafe"
            return [SafetyReason(
                "moderation_flagged",
                f"The moderation service flagged the text as {names}. Rewrite it without that content.",
            )]
        return []


def moderation_call(*, client, model: str, text: str, timeout: float) -> ModerationResult:
    """`POST /v1/moderations` for `text` (no database access: runs in the bulk pool's threads)."""
    import time

    import openai

    started = time.monotonic()
    try:
        response = sdk_post(client, "/moderations", body={"model": model, "input": text}, timeout=timeout)
    except openai.OpenAIError as error:
        return ModerationResult(is_called=True, model=model, error=f"{type(error).__name__}: {error}",
                                latency_ms=int((time.monotonic() - started) * 1000))
    latency_ms = int((time.monotonic() - started) * 1000)
    results = response.get("results")
    result = results[0] if isinstance(results, list) and results and isinstance(results[0], dict) else None
    if result is None:
        return ModerationResult(is_called=True, model=model, error="The moderation service returned no result.",
                                latency_ms=latency_ms)
    categories = result.get("categories")
    categories = categories if isinstance(categories, dict) else {}
    flagged_categories = sorted(str(name) for name, value in categories.items() if value)
    answered_model = response.get("model")
    return ModerationResult(is_called=True, flagged=bool(result.get("flagged")), categories=flagged_categories,
                            model=answered_model if isinstance(answered_model, str) and answered_model else model,
                            latency_ms=latency_ms)
