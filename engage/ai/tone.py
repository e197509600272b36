"""Tone: rule-based checks for pressure and for coaching harms (offline), and an optional model judge.

Offline, for every message: the reader addressed as তুমি or তুই instead of আপনি. For proactive messages
(reminders, follow-ups, sequence steps, coaching): pressure words and urgent commands ("শেষ সুযোগ",
"hurry", "এখনই বুক করুন!"). For coaching (messages to workers,
issue 20 builds on these): threats to their account or income, comparison with other workers,
judging the person, demands for fines.

The judge (`AIConfig.is_tone_judge_enabled`, SmartEngage reminders and coaching): the same SDK asks
the company's model to grade the text against a small rubric (polite, respectful address, no
pressure, no blame) and answer JSON; a failed criterion rejects the text (`tone_judge`), and the
verdict is recorded on the AISession (`safety.tone`). A judge that fails to answer is recorded and
does not reject: the offline rules have judged the text already.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from engage.ai.lexicons import lexicon
from engage.ai.normalize import as_written
from engage.ai.reasons import SafetyReason
from engage.ai.safety_context import PROACTIVE_MESSAGE_TYPES
from engage.ai.sdk import completion_text, sdk_post

# An urgent command: "এখনই বুক করুন!", "Book now!", "আজই অর্ডার করুন!".
URGENT_COMMAND = re.compile(
    r"(?:এখনই|এক্ষুনি|আজই|\bnow\b|\btoday\b)[^.!?।\n]{0,30}(?:বুক|book|করুন|order|অর্ডার|call|কল)[^.!?।\n]{0,15}!"
    r"|\b(?:book|order|call)\s+(?:now|today)\s*!",
    re.IGNORECASE,
)
COACHING_RULES = {
    "coaching_threat": ("coaching_threat", "Threatens the worker's account, jobs or income ({words}). Coaching "
                        "encourages and explains; it never threatens."),
    "coaching_comparison": ("coaching_comparison", "Compares the worker with other workers ({words}). Talk about "
                            "their own record and how it can improve."),
    "coaching_judgement": ("coaching_judgement", "Judges the person ({words}). Describe what happened (late to "
                           "3 of 10 bookings) and what would help, not what they are."),
    "coaching_fine": ("coaching_fine", "Demands a fine, deduction or penalty ({words}). Coaching never does."),
}
TONE_JUDGE_TYPES = frozenset({"reminder", "coaching"})


def _words(found: list[str], text: str) -> str:
    return ", ".join(f"“{as_written(text, word)}”" for word in found[:3])


def tone_offline(text: str, *, folded: str, message_type: str) -> list[SafetyReason]:
    """Informal address (every message), pressure (proactive messages) and coaching harms (coaching), by rule."""
    reasons: list[SafetyReason] = []
    informal = lexicon("informal_address").find(text, folded=folded)
    if informal:
        reasons.append(SafetyReason(
            "tone_informal_address",
            f"Addresses the reader as তুমি or তুই ({_words(informal, text)}). Customers and workers are addressed "
            "with আপনি (আপনার, আপনাকে) and the verbs that go with it.",
        ))
    if message_type in PROACTIVE_MESSAGE_TYPES:
        found = lexicon("pressure").find(text, folded=folded)
        command = URGENT_COMMAND.search(text)
        if found or command:
            detail = _words(found, text) if found else f"“{command.group(0).strip()}”"
            reasons.append(SafetyReason(
                "tone_pressure",
                f"Pressure or urgency ({detail}). A reminder invites the customer; it never rushes, frightens or "
                "commands. Say what is due and how to book, calmly.",
            ))
    if message_type == "coaching":
        for name, (code, message) in COACHING_RULES.items():
            found = lexicon(name).find(text, folded=folded)
            if found:
                reasons.append(SafetyReason(code, message.format(words=_words(found, text))))
    return reasons


# --- the model judge -------------------------------------------------------------------------------

TONE_RUBRIC = (
    "You check the tone of one short message a home-services company sends to a {audience}. "
    "Answer only with a JSON object with the boolean keys polite, respectful_address, no_pressure, "
    "no_blame and a short English string explanation. polite: courteous, no rudeness or sarcasm. "
    "respectful_address: addresses the reader respectfully (in Bengali with আপনি, never তুমি or তুই). "
    "no_pressure: no urgency, threats, guilt or commands. no_blame: does not blame or judge the reader."
)
CRITERIA = ("polite", "respectful_address", "no_pressure", "no_blame")
JUDGE_HEADER = {"X-Shokti-Purpose": "tone_judge"}


@dataclass
class ToneVerdict:
    """The judge's grades, kept on the AISession (`safety.tone`)."""

    is_called: bool = False
    grades: dict[str, bool] = field(default_factory=dict)
    explanation: str = ""
    error: str = ""
    latency_ms: int = 0

    @property
    def failed(self) -> list[str]:
        return [name for name in CRITERIA if self.grades.get(name) is False]

    def as_dict(self) -> dict[str, Any]:
        return {"is_called": self.is_called, "grades": self.grades, "explanation": self.explanation,
                "error": self.error, "latency_ms": self.latency_ms}

    def reasons(self) -> list[SafetyReason]:
        if not self.failed:
            return []
        names = ", ".join(name.replace("_", " ") for name in self.failed)
        explanation = f" ({self.explanation[:200]})" if self.explanation else ""
        return [SafetyReason("tone_judge", f"The tone judge found the text not {names}{explanation}.")]


def tone_judge_call(*, client, model: str, text: str, message_type: str, timeout: float) -> ToneVerdict:
    """Ask the model to grade `text` against the rubric (no database access)."""
    import openai

    audience = "worker (coaching)" if message_type == "coaching" else "customer"
    started = time.monotonic()
    try:
        completion = sdk_post(
            client, "/chat/completions",
            body={"model": model,
                  "messages": [{"role": "system", "content": TONE_RUBRIC.format(audience=audience)},
                               {"role": "user", "content": text}],
                  "temperature": 0, "max_tokens": 200, "response_format": {"type": "json_object"}},
            timeout=timeout, headers=JUDGE_HEADER,
        )
    except openai.OpenAIError as error:
        return ToneVerdict(is_called=True, error=f"{type(error).__name__}: {error}",
                           latency_ms=int((time.monotonic() - started) * 1000))
    latency_ms = int((time.monotonic() - started) * 1000)
    content = completion_text(completion)
    try:
        data = json.loads(content[content.find("{") : content.rfind("}") + 1])
    except ValueError:
        return ToneVerdict(is_called=True, error=f"The judge did not answer JSON: {content[:100]!r}",
                           latency_ms=latency_ms)
    if not isinstance(data, dict):
        return ToneVerdict(is_called=True, error="The judge did not answer a JSON object.", latency_ms=latency_ms)
    grades = {name: bool(data[name]) for name in CRITERIA if isinstance(data.get(name), bool)}
    return ToneVerdict(is_called=True, grades=grades, explanation=str(data.get("explanation", ""))[:500],
                       latency_ms=latency_ms)
