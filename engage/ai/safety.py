"""The safety filter every AI message passes before it is sent, and the approved fallbacks.

`safety_check(text=..., policy=..., channel=..., locale=..., recipient_phone=..., recipient_email=..., link=...)`
returns `(True, None)` or `(False, reason)`. The policy (banned phrases, SMS segments, allowed
contact details, required link) is loaded once per company with `safety_policy_for(company=...)`,
so the check itself touches no database and can run anywhere.

The filter judges the text as it is sent: a message that carries its own link (SmartEngage's signed
booking link) is judged after `link_insert` has put the link where the model left LINK_PLACEHOLDER.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from django.db.models import Q

from crm.models import Channel, Company
from engage.ai.config import ai_config_for
from engage.ai.models import BannedPhrase, FallbackText

# GSM 03.38 basic set plus its extension table (extension characters take two septets).
GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENDED = set("^{}\\[~]|€\f")

SMS_SINGLE_GSM, SMS_PART_GSM = 160, 153
SMS_SINGLE_UCS2, SMS_PART_UCS2 = 70, 67
MAX_LENGTH_BY_CHANNEL = {
    Channel.WHATSAPP_CLOUD: 4096,
    Channel.WHATSAPP_WEB: 4096,
    Channel.EMAIL: 20000,
    Channel.CONSOLE: 4096,
}
BENGALI_MINIMUM_SHARE = 0.6

URL_PATTERN = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
EMAIL_PATTERN = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, allowing +, spaces, dots, dashes and brackets between them (Latin or Bengali digits).
PHONE_PATTERN = re.compile(r"\+?[\d০-৯][\d০-৯\s().\-]{5,}[\d০-৯]")
BENGALI_DIGITS = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
# Where a prompt asks the model to leave the message's link (the model never sees the signed link).
LINK_PLACEHOLDER = "[BOOKING_LINK]"
_PLACEHOLDER_PATTERN = re.compile(r"[ \t]*" + re.escape(LINK_PLACEHOLDER))


@dataclass(frozen=True)
class SafetyPolicy:
    banned_phrases: tuple[str, ...] = ()
    sms_max_segments: int = 3
    allowed_contact_details: tuple[str, ...] = ()
    required_link: str = ""


@dataclass(frozen=True)
class SafetyVerdict:
    is_ok: bool
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def __iter__(self):  # (ok, reason) unpacking, as the seed's SafetyFilter.check_message
        return iter((self.is_ok, self.reason))


def safety_policy_for(*, company: Company) -> SafetyPolicy:
    """The company's safety policy: its own and the global banned phrases, plus its AIConfig limits."""

    config = ai_config_for(company=company)
    phrases = BannedPhrase.objects.filter(Q(company=company) | Q(company__isnull=True)).values_list("phrase", flat=True)
    return SafetyPolicy(
        banned_phrases=tuple(phrases),
        sms_max_segments=config.sms_max_segments,
        allowed_contact_details=tuple(str(item) for item in (config.allowed_contact_details or [])),
        required_link=config.required_link,
    )


def link_insert(*, text: str, link: str) -> str:
    """The text as sent: `link` where the model left LINK_PLACEHOLDER, else on a line of its own at the end;
    with no link (deep links off) the placeholder is removed."""
    if not link:
        return _PLACEHOLDER_PATTERN.sub("", text).strip()
    if LINK_PLACEHOLDER in text:
        return text.replace(LINK_PLACEHOLDER, link)
    return f"{text.rstrip()}\n{link}"


def is_gsm_text(text: str) -> bool:
    return all(character in GSM_BASIC or character in GSM_EXTENDED for character in text)


def sms_segments(text: str) -> int:
    """How many SMS segments `text` needs (GSM-7: 160/153 characters, UCS-2 e.g. Bengali: 70/67)."""
    if is_gsm_text(text):
        length = sum(2 if character in GSM_EXTENDED else 1 for character in text)
        single, part = SMS_SINGLE_GSM, SMS_PART_GSM
    else:
        # UCS-2 counts UTF-16 code units.
        length = len(text.encode("utf-16-le")) // 2
        single, part = SMS_SINGLE_UCS2, SMS_PART_UCS2
    if length <= single:
        return 1
    return -(-length // part)


@functools.lru_cache(maxsize=1024)
def bengali_share(text: str) -> float:
    """The share of Bengali letters among the letters of `text`, links and emails left out (cached: a
    campaign judges the same approved fallback, its own link left out, for every customer)."""
    text = EMAIL_PATTERN.sub(" ", URL_PATTERN.sub(" ", text))
    bengali = other = 0
    for character in text:
        if "\u0980" <= character <= "\u09ff":
            if character.isalpha() or not character.isdigit():
                bengali += 1
        elif character.isalpha():
            other += 1
    total = bengali + other
    return bengali / total if total else 0.0


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value.translate(BENGALI_DIGITS))


def _same_phone(left: str, right: str) -> bool:
    left_digits, right_digits = _digits(left), _digits(right)
    if not left_digits or not right_digits:
        return False
    # Local and international forms of one number share their last ten digits.
    tail = min(10, len(left_digits), len(right_digits))
    return left_digits[-tail:] == right_digits[-tail:]


def safety_check(
    *,
    text: str,
    policy: SafetyPolicy,
    channel: str,
    locale: str = "bn",
    recipient_phone: str = "",
    recipient_email: str = "",
    link: str | None = None,
) -> SafetyVerdict:
    """Whether `text` (the final text, link included) may be sent to this recipient on this channel, and if not, why.

    `link` is the message's own link when it carries one: it must be in the text (the "required link"
    rule) and the policy's fixed `required_link` does not apply; `""` is a message that could carry
    one but does not this time (deep links off: no link required). `None` (replies and the like): the
    policy's `required_link`, when set, must be in the text. Banned phrases are looked for outside the
    message's own link (its random token could contain a short phrase by chance); the length counts it.
    """
    if not text or not text.strip():
        return SafetyVerdict(False, "Empty message.")
    folded = (text.replace(link, " ") if link else text).casefold()
    for phrase in policy.banned_phrases:
        if phrase and phrase.casefold() in folded:
            return SafetyVerdict(False, f"Contains banned phrase: {phrase}")

    if channel == Channel.SMS:
        segments = sms_segments(text)
        if segments > policy.sms_max_segments:
            return SafetyVerdict(
                False,
                f"Too long for SMS: {segments} segments, at most {policy.sms_max_segments} allowed.",
                {"segments": segments},
            )
    else:
        limit = MAX_LENGTH_BY_CHANNEL.get(channel, 4096)
        if len(text) > limit:
            return SafetyVerdict(False, f"Too long for {channel}: {len(text)} characters, at most {limit}.")

    if locale == "bn":
        share = bengali_share(text.replace(link, " ") if link else text)
        if share < BENGALI_MINIMUM_SHARE:
            return SafetyVerdict(
                False, f"Not mostly Bengali: {share:.0%} of letters are Bengali.", {"bengali_share": share}
            )

    allowed_emails = {recipient_email.lower()} | {
        item.lower() for item in policy.allowed_contact_details if "@" in item
    }
    unlinked = URL_PATTERN.sub(" ", text)
    for email in EMAIL_PATTERN.findall(unlinked):
        if email.lower() not in allowed_emails:
            return SafetyVerdict(False, f"Mentions another person's email: {email}")
    allowed_phones = [recipient_phone, *[item for item in policy.allowed_contact_details if "@" not in item]]
    for match in PHONE_PATTERN.findall(unlinked):
        if len(_digits(match)) < 7:
            continue
        if not any(_same_phone(match, allowed) for allowed in allowed_phones if allowed):
            return SafetyVerdict(False, f"Mentions another person's phone number: {match.strip()}")

    if link is None:
        if policy.required_link and policy.required_link not in text:
            return SafetyVerdict(False, f"Missing the required link {policy.required_link}")
    elif link and link not in text:
        return SafetyVerdict(False, "Missing the message's booking link.")
    return SafetyVerdict(True, None)


# The last resort when the database holds no approved text at all (it is seeded by a migration).
BUILT_IN_FALLBACKS = {
    "bn": "ধন্যবাদ, আপনার বার্তা পেয়েছি। আমাদের একজন প্রতিনিধি শীঘ্রই আপনার সাথে যোগাযোগ করবেন।",
    "en": "Thank you, we have received your message. One of our team will get back to you shortly.",
}


def fallback_text_for(*, company: Company | None, message_type: str, locale: str) -> str:
    """The approved fallback for a message type and locale: the company's own, else the global one."""

    rows = list(
        FallbackText.objects.filter(Q(company=company) | Q(company__isnull=True))
        .filter(message_type__in={message_type, "reply"}, locale__in={locale, "en"})
        .values_list("company_id", "message_type", "locale", "body")
    )

    def preference(row) -> tuple[int, int, int]:
        company_id, row_type, row_locale, _ = row
        return (row_type != message_type, row_locale != locale, company_id is None)

    if rows:
        return min(rows, key=preference)[3]
    return BUILT_IN_FALLBACKS.get(locale, BUILT_IN_FALLBACKS["en"])
