"""Why the safety filter rejects a text: one code per check, with an explanation a marketer can act on.

Every check returns `SafetyReason(code, message)`; `message` names what was found and says what to
change. `REASON_CODES` lists every code with its group and the advice, for the studio, the API's
schema and docs/ai.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SafetyReason:
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# code -> (group, what it means and what to change)
REASON_CODES: dict[str, tuple[str, str]] = {
    "empty": ("form", "The text is empty."),
    "too_long": ("form", "Longer than the channel allows: shorten the text (the link counts too)."),
    "not_bengali": ("form", "A Bengali customer gets Bengali text: most letters must be Bengali."),
    "banned_phrase": ("company", "A phrase on the company's banned list (AI configuration > banned phrases)."),
    "missing_link": ("links", "The message's own booking link is not in the text."),
    "missing_required_link": ("links", "The link the company requires in every AI message is missing."),
    "profanity": ("moderation", "Vulgar words never go to customers or workers: remove them."),
    "insult": ("moderation", "Name-calling or contempt: say it politely or not at all."),
    "threat": ("moderation", "A threat or intimidation: remove it."),
    "sexual": ("moderation", "Sexual content: remove it."),
    "political": ("moderation", "Politics (parties, leaders, elections) stays out of our messages."),
    "religious": ("moderation", "Religious phrases and names of God stay out of our messages (festival greetings are fine)."),
    "moderation_flagged": ("moderation", "The moderation service flagged the text (the category is named)."),
    "moderation_unavailable": ("moderation", "The moderation service did not answer, so the model's text was not used."),
    "credential_request": ("security", "Asks for a PIN, OTP, password or card number: we never ask for secrets."),
    "ai_self_talk": ("security", "The model talks about itself or its instructions instead of writing the message."),
    "prompt_leak": ("security", "The text repeats the prompt's own instructions."),
    "wrong_recipient": ("recipient", "Addressed to someone other than the recipient."),
    "contact_phone": ("recipient", "Another person's phone number: only the recipient's own or the company's may appear."),
    "contact_email": ("recipient", "Another person's email: only the recipient's own or the company's may appear."),
    "customer_details": ("recipient", "A customer's address or contact details in a message to a worker."),
    "placeholder": ("form", "An unfilled placeholder ({name}, {{ x }}, [BOOKING_LINK]): the text was not finished."),
    "markup": ("form", "HTML, script or markdown: messages are plain text."),
    "invisible_characters": ("form", "Invisible or text-direction characters that a reader cannot see."),
    "link_not_allowed": ("links", "A link to a site that is not one of the company's allowed link domains."),
    "link_lookalike": ("links", "A link that imitates the company's own site (look-alike letters or spelling)."),
    "link_shortener": ("links", "A URL shortener hides where a link goes: only our own short links may appear."),
    "link_hidden": ("links", "A link disguised with invisible characters or written as 'site[.]com'."),
    "unapproved_price": ("promises", "A price the context did not give (the service's price is the only one allowed)."),
    "unapproved_percentage": ("promises", "A percentage the context did not give (e.g. a made-up discount)."),
    "unapproved_discount": ("promises", "An offer, discount or freebie with no promotion behind it."),
    "unapproved_guarantee": ("promises", "A guarantee, warranty or refund promise the context did not give."),
    "unapproved_promo_code": ("promises", "A promo code other than the campaign's own."),
    "tone_pressure": ("tone", "Pressure or urgency (\"last chance\", \"hurry\"): invite, do not push."),
    "tone_shouting": ("tone", "Shouting: words in capitals or several exclamation marks."),
    "tone_judge": ("tone", "The tone judge (a model with a rubric) found the text impolite, pushy or blaming."),
    "coaching_threat": ("coaching", "Threatens the worker's account, jobs or income: coaching encourages."),
    "coaching_comparison": ("coaching", "Compares the worker with other workers: talk about their own record only."),
    "coaching_judgement": ("coaching", "Judges the person (lazy, careless ...): describe what happened instead."),
    "coaching_fine": ("coaching", "Demands a fine, deduction or penalty: coaching never does."),
}


def reason_advice(code: str) -> str:
    return REASON_CODES.get(code, ("", ""))[1]
