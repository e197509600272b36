"""What the safety filter knows about one message besides its text: who gets it and what it may claim."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal


@dataclass(frozen=True)
class SafetyContext:
    """The recipient and the facts the model was given.

    - `recipient_*`: the person the text goes to (their own phone and email may appear; a greeting
      must name them, or nobody).
    - `message_type`: reminder, reply, followup, sequence_step, coaching ... (tone and coaching rules).
    - `prices`, `promo_codes`: the claims the context allows (the service's price, the campaign's code).
    - `facts`: text the model was given as facts (knowledge-base passages): a price, percentage,
      offer or guarantee stated there may be repeated.
    - `instructions`: the prompt's own instructions; repeating them is a prompt leak.
    - `brand`: the company's name (a sign-off is not a wrong recipient).
    """

    recipient_name: str = ""
    recipient_phone: str = ""
    recipient_email: str = ""
    message_type: str = ""
    prices: tuple[Decimal, ...] = ()
    promo_codes: tuple[str, ...] = ()
    facts: str = ""
    instructions: str = ""
    brand: str = ""

    def with_recipient(self, *, phone: str = "", email: str = "") -> SafetyContext:
        """This context with the recipient's phone and email filled where they are empty."""
        if (self.recipient_phone or not phone) and (self.recipient_email or not email):
            return self
        return replace(self, recipient_phone=self.recipient_phone or phone, recipient_email=self.recipient_email or email)


PROACTIVE_MESSAGE_TYPES = frozenset({"reminder", "followup", "sequence_step", "coaching"})
