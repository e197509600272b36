"""Moderation: the offline lexicon layer (always) and the OpenAI-compatible moderation endpoint (with a key).

Offline: curated Bengali, English and Banglish word lists (engage/ai/lexicons/) matched on the
folded text (spacing, diacritics, leetspeak and homoglyphs normalised: engage.ai.normalize), so
offline mode is safe too. Categories: profanity, insult, threat, sexual, political, religious.

Online: `moderation_call(client=..., model=..., text=..., timeout=...)` asks `POST /v1/moderations`
through the `openai` SDK and returns a `ModerationResult`; a flagged category becomes the reason
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

OFFLINE_CATEGORIES: dict[str, str] = {
    "profanity": "Profanity",
    "insult": "An insult",
    "threat": "A threat",
    "sexual": "Sexual content",
    "political": "Political content",
    "religious": "Religious content",
}
ADVICE = {
    "profanity": "Vulgar words never go out under the company's name: remove them.",
    "insult": "Say it politely or not at all.",
    "threat": "Remove the threat.",
    "sexual": "Remove it.",
    "political": "Messages stay out of politics (parties, leaders, elections).",
    "religious": "Messages stay out of religion (festival greetings are fine).",
}


# "টাকা না দিলে ... দেখে নেব", "taka na dile tule niye jabo": a condition, then a menace, in one clause.
# "দেখে নেব" alone is everyday Bengali ("we'll look into it"); after "if you don't pay" it is a threat.
CONDITIONAL_THREAT = re.compile(unicodedata.normalize("NFC",
    r"(?:না দিলে|না করলে|নইলে|নাহলে|\bna dile|\bna korle|\bnoile|\bnahole|\bor else)"
    r"[^.!?।\n]{0,50}"
    r"(?:দেখে নেব|দেখে নিব|খবর আছে|তুলে নিয়ে যাব|লোক পাঠাব|\bdekhe nebo|\bdekhe nibo|\bkhobor a(?:s|ch)e"
    r"|\btule niye jabo|\blok pathabo)"), re.IGNORECASE)


def moderation_offline(text: str, *, folded: str) -> list[SafetyReason]:
    """One reason per offline category with a match, naming the words found."""
    reasons = []
    for category, label in OFFLINE_CATEGORIES.items():
        found = lexicon(category).find(text, folded=folded)
        if category == "threat" and not found:
            menace = CONDITIONAL_THREAT.search(unicodedata.normalize("NFC", text))
            found = [" ".join(menace.group(0).split())] if menace else []
        if found:
            words = ", ".join(f"“{as_written(text, word)}”" for word in found[:3])
            reasons.append(SafetyReason(category, f"{label} ({words}). {ADVICE[category]}"))
    return reasons


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
        response = client.moderations.create(model=model, input=text, timeout=timeout)
    except openai.OpenAIError as error:
        return ModerationResult(is_called=True, model=model, error=f"{type(error).__name__}: {error}",
                                latency_ms=int((time.monotonic() - started) * 1000))
    latency_ms = int((time.monotonic() - started) * 1000)
    result = response.results[0] if response.results else None
    if result is None:
        return ModerationResult(is_called=True, model=model, error="The moderation service returned no result.",
                                latency_ms=latency_ms)
    categories = result.categories.model_dump(by_alias=True) if hasattr(result.categories, "model_dump") else {}
    flagged_categories = sorted(name for name, value in categories.items() if value)
    return ModerationResult(is_called=True, flagged=bool(result.flagged), categories=flagged_categories,
                            model=getattr(response, "model", model) or model, latency_ms=latency_ms)
