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
    "empty": ("form", "The text is empty: write the message, or check that the model answered."),
    "too_long": ("form", "Longer than the channel allows: shorten the text (the link counts too)."),
    "not_bengali": ("form", "A Bengali customer gets Bengali text: write it in Bengali (at least 60% of the letters; "
                            "names such as AC or Node.js do not count)."),
    "banned_phrase": ("company", "A phrase on the company's banned list (AI configuration > banned phrases): remove it "
                                 "or reword it."),
    "missing_link": ("links", "The message's own booking link is not in the text: keep [BOOKING_LINK] in the template, "
                              "or leave it out and the link is added at the end."),
    "missing_required_link": ("links", "The link the company requires in every AI message (AI configuration) is "
                                       "missing: add it to the text."),
    "profanity": ("moderation", "Vulgar words never go to customers or workers: remove them."),
    "insult": ("moderation", "Name-calling or contempt: say it politely or not at all."),
    "threat": ("moderation", "A threat or intimidation: remove it. To ask for a payment, say what is due and how to pay."),
    "sexual": ("moderation", "Sexual content: remove it."),
    "political": ("moderation", "Politics (parties, leaders, elections, strikes taken sides on) stays out of our "
                                "messages: remove it. A closed office on a holiday is fine to mention."),
    "religious": ("moderation", "Religious phrases, names of God and remarks about anyone's faith stay out of our "
                                "messages: remove them. Festival greetings, সালাম and নমস্কার are fine."),
    "hate": ("moderation", "Contempt for people as a group (region, ethnicity, caste, gender, sexuality, disability) "
                           "or a slur: remove it."),
    "self_harm": ("moderation", "Urges or describes suicide or self-injury: remove it. A person who writes about harming "
                                "themselves is handed to a human."),
    "drugs": ("moderation", "Offers or mentions illegal drugs: remove it."),
    "gambling": ("moderation", "Betting, casinos, lotteries or doubling money: remove it."),
    "medical_claims": ("moderation", "Claims that a service or product cures, treats or prevents a disease: remove the "
                                     "claim; describe what the service does."),
    "opt_out_denied": ("moderation", "Says the recipient cannot stop our messages: never. STOP (বন্ধ) always works."),
    "moderation_flagged": ("moderation", "The moderation service flagged the text (the category is named): remove "
                                         "what it names."),
    "moderation_unavailable": ("moderation", "The moderation service did not answer, so the model's text was not "
                                             "used and the approved fallback went out. Nothing to change in the text."),
    "credential_request": ("security", "Asks for a PIN, OTP, password or card number: we never ask for secrets. Remove "
                                       "the request; a warning never to share them is fine."),
    "ai_self_talk": ("security", "The model talks about itself or the task (\"as an AI\", \"here is the message\", a "
                                 "character count) instead of writing the message: generate again; if it keeps "
                                 "happening, tell the prompt to answer with the message only."),
    "prompt_leak": ("security", "The text repeats the prompt's own instructions or its layout (\"System:\"): generate "
                                "again, and keep rules out of what the prompt asks the model to write."),
    "wrong_recipient": ("recipient", "Addressed to someone other than the recipient: greet them by their own name, or "
                                     "with \"প্রিয় গ্রাহক\"."),
    "contact_phone": ("recipient", "Another person's phone number: remove it. Only the recipient's own number or the "
                                   "company's (AI configuration > allowed contact details) may appear."),
    "contact_email": ("recipient", "Another person's email: remove it. Only the recipient's own address or the "
                                   "company's (AI configuration > allowed contact details) may appear."),
    "customer_details": ("recipient", "A customer's address or contact details in a message to a worker: remove them; "
                                      "the worker finds them in the app."),
    "placeholder": ("form", "An unfilled placeholder ({name}, {{ x }}, [BOOKING_LINK]): the text was not finished. "
                            "Use the template's variables; the model must write no placeholders."),
    "markup": ("form", "HTML, script or markdown: messages are plain text. Remove the tags and symbols."),
    "invisible_characters": ("form", "Invisible or text-direction characters that a reader cannot see: retype the "
                                     "text (copying from a document often brings them)."),
    "link_not_allowed": ("links", "A link to a site that is not one of the company's allowed link domains: remove it, "
                                  "or add the domain in AI configuration > allowed link domains if it is the company's."),
    "link_lookalike": ("links", "A link that imitates the company's own site (look-alike letters or spelling): remove "
                                "it; the real booking link is added by us."),
    "link_shortener": ("links", "A URL shortener hides where a link goes: remove it; our own short links are added "
                                "by us."),
    "link_hidden": ("links", "A link disguised with invisible characters, spaces or 'site[.]com', or something glued "
                             "to the booking link: remove it and write links plainly."),
    "unapproved_price": ("promises", "A price the context did not give: use only the service's price, or no price."),
    "unapproved_percentage": ("promises", "A percentage the context did not give (e.g. a made-up discount): remove it."),
    "unapproved_discount": ("promises", "An offer, discount or freebie with no promotion behind it: remove it, or run "
                                        "it as a campaign with a promo code."),
    "unapproved_guarantee": ("promises", "A guarantee, warranty or refund promise the context did not give: remove "
                                         "it, or add the promise to the knowledge base if the company makes it."),
    "unapproved_promo_code": ("promises", "A promo code other than the campaign's own: use the campaign's code or none."),
    "tone_pressure": ("tone", "Pressure or urgency (\"last chance\", \"hurry\"): invite, do not push. Say what is due "
                              "and how to book."),
    "tone_informal_address": ("tone", "The reader addressed as তুমি or তুই: write with আপনি (আপনার, আপনাকে) and its verbs."),
    "tone_shouting": ("tone", "Shouting: words in capitals or several exclamation marks. Write in normal case with at "
                              "most one exclamation mark."),
    "tone_judge": ("tone", "The tone judge (a model with a rubric) found the text impolite, pushy or blaming: reword "
                           "it politely, with আপনি, and without pressure or blame."),
    "coaching_threat": ("coaching", "Threatens the worker's account, jobs or income: coaching encourages. Say what "
                                    "would help instead."),
    "coaching_comparison": ("coaching", "Compares the worker with other workers: talk about their own record only."),
    "coaching_judgement": ("coaching", "Judges the person (lazy, careless ...): describe what happened instead."),
    "coaching_fine": ("coaching", "Demands a fine, deduction or penalty: coaching never does. Remove it."),
}


def reason_advice(code: str) -> str:
    return REASON_CODES.get(code, ("", ""))[1]
