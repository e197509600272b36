"""The safety filter every AI message passes before it is sent, and the approved fallbacks.

`safety_check(text=..., policy=..., channel=..., locale=..., recipient_phone=..., recipient_email=...,
link=..., context=..., draft=...)` returns a `SafetyVerdict`: `is_ok`, and every reason found
(`reasons`: code + message, see engage.ai.reasons.REASON_CODES; `reason`: the messages joined). It
unpacks as `(ok, reason)`. The policy (banned phrases, SMS segments, allowed contact details and
link hosts, the company's region) is loaded once per company with `safety_policy_for(company=...)`,
so the check itself touches no database and no network and can run anywhere.

The checks (all run, all reported): length per channel, the script of a Bengali text, banned
phrases, other people's phone numbers (parsed with `phonenumbers`) and emails, the message's own
link, offline moderation (engage.ai.moderation: profanity, insults, threats, sexual, political and
religious content), credential requests, AI self-talk and prompt leaks, a greeting naming someone
other than the recipient, unfilled placeholders, HTML/script/markdown, invisible and bidi
characters, links (engage.ai.links), promises (engage.ai.claims), shouting, and for proactive
messages pressure and, for coaching, the coaching rules (engage.ai.tone). The moderation endpoint
and the tone judge need the model's API and run in the client (engage.ai.client).

The filter judges the text as it is sent: a message that carries its own link (SmartEngage's
signed booking link) is judged after `link_insert` has put the link where the model left
LINK_PLACEHOLDER, and the model's own text (`draft`) is judged for links before it.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

from crm.models import Channel, Company
from engage.ai import checks, claims, links, moderation, tone
from engage.ai.bengali import first_name
from engage.ai.config import ai_config_for, allowed_link_hosts
from engage.ai.models import AIConfig, BannedPhrase, FallbackText
from engage.ai.normalize import fold, is_invisible
from engage.ai.reasons import REASON_CODES, SafetyReason
from engage.ai.safety_context import SafetyContext

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
EMAIL_PATTERN = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Where a prompt asks the model to leave the message's link (the model never sees the signed link).
LINK_PLACEHOLDER = "[BOOKING_LINK]"
_PLACEHOLDER_PATTERN = re.compile(r"[ \t]*" + re.escape(LINK_PLACEHOLDER))


@dataclass(frozen=True)
class SafetyPolicy:
    banned_phrases: tuple[str, ...] = ()
    sms_max_segments: int = 3
    allowed_contact_details: tuple[str, ...] = ()
    required_link: str = ""
    # The hosts links may point to (engage.ai.config.allowed_link_hosts); None: our own link hosts.
    allowed_link_hosts: tuple[str, ...] | None = None
    # The company's phone region: numbers without a country code are read as this country's.
    region: str = "BD"


@dataclass(frozen=True)
class SafetyVerdict:
    is_ok: bool
    reason: str | None = None
    details: dict = field(default_factory=dict)
    # Every reason found, in the order of the checks (`reason` joins their messages).
    reasons: tuple[SafetyReason, ...] = ()

    def __iter__(self):  # (ok, reason) unpacking, as the seed's SafetyFilter.check_message
        return iter((self.is_ok, self.reason))

    @property
    def codes(self) -> list[str]:
        return [reason.code for reason in self.reasons]

    def as_dict(self) -> dict:
        return {"safe": self.is_ok, "reasons": [reason.as_dict() for reason in self.reasons]}

    @classmethod
    def of(cls, reasons: list[SafetyReason], details: dict | None = None) -> SafetyVerdict:
        unique = tuple(dict.fromkeys(reasons))
        return cls(not unique, REASON_SEPARATOR.join(reason.message for reason in unique) or None, details or {}, unique)


REASON_SEPARATOR = "; "


# Per-process cache of the rows every AI reply reads: a company's banned phrases and fallback texts
# (with the global ones): {(kind, company id): (expires at, monotonic; rows)}. A banned phrase,
# fallback text or company saved or deleted in this process clears it at once (signals below, see
# EngageConfig.ready); one changed elsewhere (another worker, a queryset update) takes effect
# within SAFETY_ROWS_CACHE_SECONDS, like the channel settings and hand-off keyword caches.
SAFETY_ROWS_CACHE_SECONDS = 10.0

_rows_cache: dict[tuple[str, int | None], tuple[float, tuple]] = {}
_rows_cache_lock = threading.Lock()


def safety_rows_cache_clear(**kwargs: Any) -> None:
    """Forget every cached banned phrase and fallback text of this process."""
    with _rows_cache_lock:
        _rows_cache.clear()


def safety_rows_cache_connect() -> None:
    """Clear the cache when a banned phrase, fallback text or company is saved or deleted in this process."""
    for signal in (post_save, post_delete):
        for sender in (BannedPhrase, FallbackText, Company):
            signal.connect(
                safety_rows_cache_clear, sender=sender,
                dispatch_uid=f"safety_rows_cache_clear_{signal is post_save}_{sender.__name__}",
            )


def _company_rows(*, kind: str, company_id: int | None) -> tuple:
    """The company's and the global banned phrases (`kind="banned"`: the phrases) or fallback texts
    (`"fallback"`: (company id, message type, locale, body) rows), cached (see above)."""
    key = (kind, company_id)
    now = time.monotonic()
    cached = _rows_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    scope = Q(company_id=company_id) | Q(company__isnull=True) if company_id is not None else Q(company__isnull=True)
    if kind == "banned":
        rows = tuple(BannedPhrase.objects.filter(scope).values_list("phrase", flat=True))
    else:
        rows = tuple(FallbackText.objects.filter(scope).values_list("company_id", "message_type", "locale", "body"))
    with _rows_cache_lock:
        _rows_cache[key] = (now + SAFETY_ROWS_CACHE_SECONDS, rows)
    return rows


def safety_policy_for(*, company: Company, config: AIConfig | None = None) -> SafetyPolicy:
    """The company's safety policy: its own and the global banned phrases, plus its AIConfig limits
    (`config`: the company's AIConfig when the caller has it already)."""

    config = config if config is not None else ai_config_for(company=company)
    return SafetyPolicy(
        banned_phrases=_company_rows(kind="banned", company_id=company.pk),
        sms_max_segments=config.sms_max_segments,
        allowed_contact_details=tuple(str(item) for item in (config.allowed_contact_details or [])),
        required_link=config.required_link,
        allowed_link_hosts=allowed_link_hosts(company=company, config=config),
        region=company.default_region or "BD",
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


# Names of technologies and acronyms ("Node.js", "ASP.NET", "API", "AC") are written in Latin letters in
# Bengali text too: they count for neither script.
LATIN_NAMES = re.compile(r"\b[A-Za-z]+(?:\.[A-Za-z]+)+\b|\b[A-Z]{2,}s?\b")


@functools.lru_cache(maxsize=1024)
def bengali_share(text: str) -> float:
    """The share of Bengali letters among the letters of `text`, links, emails and technology names left
    out (cached: a campaign judges the same approved fallback, its own link left out, for every customer)."""
    text = LATIN_NAMES.sub(" ", EMAIL_PATTERN.sub(" ", URL_PATTERN.sub(" ", text)))
    bengali = other = 0
    for character in text:
        if "\u0980" <= character <= "\u09ff":
            if character.isalpha() or not character.isdigit():
                bengali += 1
        elif character.isalpha():
            other += 1
    total = bengali + other
    return bengali / total if total else 0.0


def _link_hosts(policy: SafetyPolicy) -> tuple[str, ...]:
    hosts = policy.allowed_link_hosts if policy.allowed_link_hosts is not None else links.default_link_hosts()
    required = links.settings_host(policy.required_link) if policy.required_link else ""
    return (*hosts, required) if required and required not in hosts else hosts


def _form_reasons(
    text: str, *, policy: SafetyPolicy, channel: str, locale: str, unlinked: str, details: dict
) -> list[SafetyReason]:
    reasons = []
    folded_text = unlinked.casefold()
    for phrase in policy.banned_phrases:
        if phrase and phrase.casefold() in folded_text:
            reasons.append(SafetyReason("banned_phrase", f"Contains banned phrase: {phrase}"))
    if channel == Channel.SMS:
        segments = details["segments"] = sms_segments(text)
        if segments > policy.sms_max_segments:
            reasons.append(SafetyReason(
                "too_long", f"Too long for SMS: {segments} segments, at most {policy.sms_max_segments} allowed."
            ))
    else:
        limit = MAX_LENGTH_BY_CHANNEL.get(channel, 4096)
        if len(text) > limit:
            reasons.append(SafetyReason("too_long", f"Too long for {channel}: {len(text)} characters, at most {limit}."))
    if locale == "bn":
        share = bengali_share(unlinked)
        if share < BENGALI_MINIMUM_SHARE:
            reasons.append(SafetyReason("not_bengali", f"Not mostly Bengali: {share:.0%} of letters are Bengali."))
    return reasons


NAME_STAND_IN = "গ্রাহক"


def _glued_to_link(text: str, link: str) -> str:
    """The invisible characters written right after an occurrence of `link` ("" when there are none)."""
    start = text.find(link)
    while start != -1:
        end = start + len(link)
        glued = "".join(character for character in text[end : end + 4] if is_invisible(character))
        if glued and is_invisible(text[end]):
            return ", ".join(f"U+{ord(character):04X}" for character in dict.fromkeys(glued))
        start = text.find(link, end)
    return ""


NAME_SPLIT = re.compile(r"[\s,.;]+")


def _without_recipient_name(text: str, name: str) -> str:
    """`text` with the recipient's own name replaced by a neutral word: their name is never a violation
    (a customer called "Allah Rakha" is greeted by name), and texts that differ only by it judge alike."""
    if not name:
        return text
    for word in sorted((word for word in NAME_SPLIT.split(name) if len(word) >= 2), key=len, reverse=True):
        if word.isascii():
            # A Latin name as a whole word only ("Ali" is not masked inside "Alive" or a link).
            text = _whole_word_masked(text, word)
        else:
            text = text.replace(word, NAME_STAND_IN)  # a Bengali name keeps its case ending: রুমানাকে
    return text


def _is_word_glue(character: str) -> bool:
    """Whether `character` continues a word, a domain or a path (the regex class [\\w.\\-/])."""
    return character.isalnum() or character in "_.-/"


def _whole_word_masked(text: str, word: str) -> str:
    """`text` with each whole-word, case-insensitive occurrence of the ASCII `word` replaced by NAME_STAND_IN.

    A scan instead of a regex made from the word: every customer's name is another pattern, so a campaign
    compiled one per message (Python's regex cache holds 512), ~1.5 % of a send's CPU."""
    lowered, needle = text.lower(), word.lower()
    if len(lowered) != len(text):  # a character whose lower case is longer (İ): positions would not line up
        return re.sub(rf"(?<![\w.\-/]){re.escape(word)}(?![\w.\-/])", NAME_STAND_IN, text, flags=re.IGNORECASE)
    parts, start, position = [], 0, lowered.find(needle)
    while position >= 0:
        end = position + len(needle)
        if (position == 0 or not _is_word_glue(text[position - 1])) and (
            end == len(text) or not _is_word_glue(text[end])
        ):
            parts += (text[start:position], NAME_STAND_IN)
            start = end
            position = lowered.find(needle, end)
        else:
            position = lowered.find(needle, position + 1)
    if not parts:
        return text
    parts.append(text[start:])
    return "".join(parts)


@functools.lru_cache(maxsize=4096)
def _content_reasons(
    masked: str, policy: SafetyPolicy, message_type: str, prices: tuple, promo_codes: tuple, facts: str,
    instructions: str, draft: str | None,
) -> tuple[SafetyReason, ...]:
    """The checks that depend only on the text (recipient's name masked), the policy and the claims context:
    cached, so the same approved fallback for a whole campaign is judged once (its link and name aside)."""
    context = SafetyContext(message_type=message_type, prices=prices, promo_codes=promo_codes, facts=facts,
                            instructions=instructions)
    folded = fold(masked)
    reasons: list[SafetyReason] = []
    reasons += moderation.moderation_offline(masked, folded=folded)
    reasons += checks.check_credentials(masked, folded=folded)
    reasons += checks.check_self_talk(masked, folded=folded)
    reasons += checks.check_prompt_leak(masked, folded=folded, instructions=context.instructions)
    if not any(reason.code == "prompt_leak" for reason in reasons):
        reasons += checks.check_prompt_marks(masked)
    reasons += checks.check_placeholders(masked)
    reasons += checks.check_markup(masked)
    reasons += checks.check_invisible(masked)
    hosts = _link_hosts(policy)
    reasons += links.links_judge(text=masked, allowed_hosts=hosts)
    if draft is not None:
        reasons += links.links_judge(text=draft.replace(LINK_PLACEHOLDER, " "), allowed_hosts=hosts)
    reasons += claims.check_claims(masked, context=context)
    reasons += checks.check_shouting(masked, promo_codes=context.promo_codes)
    reasons += tone.tone_offline(masked, folded=folded, message_type=context.message_type)
    if context.message_type == "coaching":
        reasons += checks.check_customer_details(masked)
    return tuple(reasons)


def safety_check(
    *,
    text: str,
    policy: SafetyPolicy,
    channel: str,
    locale: str = "bn",
    recipient_phone: str = "",
    recipient_email: str = "",
    link: str | None = None,
    context: SafetyContext | None = None,
    draft: str | None = None,
) -> SafetyVerdict:
    """Whether `text` (the final text, link included) may be sent to this recipient on this channel, and every
    reason why not.

    `link` is the message's own link when it carries one: it must be in the text (the "required link"
    rule) and the policy's fixed `required_link` does not apply; `""` is a message that could carry
    one but does not this time (deep links off: no link required). `None` (replies and the like): the
    policy's `required_link`, when set, must be in the text. Content is judged outside the message's
    own link (its random token could contain a short word by chance); the length counts it.
    `context` says who the recipient is and what the text may claim (engage.ai.safety_context);
    `draft` is the model's text before our link was put in, judged for links as well.
    """
    if not text or not text.strip():
        return SafetyVerdict.of([SafetyReason("empty", "Empty message.")])
    context = (context or SafetyContext()).with_recipient(phone=recipient_phone, email=recipient_email)
    unlinked = text.replace(link, " ") if link else text
    masked = _without_recipient_name(unlinked, context.recipient_name)
    details: dict = {}
    reasons = _form_reasons(text, policy=policy, channel=channel, locale=locale, unlinked=masked, details=details)
    reasons += checks.check_contacts(
        unlinked, context=context, allowed_contact_details=policy.allowed_contact_details, region=policy.region
    )
    if link is None:
        if policy.required_link and policy.required_link not in text:
            reasons.append(SafetyReason("missing_required_link", f"Missing the required link {policy.required_link}"))
    elif link and link not in text:
        reasons.append(SafetyReason("missing_link", "Missing the message's booking link."))
    elif link and (glued := _glued_to_link(text, link)):
        reasons.append(SafetyReason(
            "link_hidden",
            f"Invisible characters right after the booking link ({glued}): a reader cannot see where the link "
            "ends, and what follows can turn it into another address. Nothing may touch the link.",
        ))
    # The content checks do not depend on who the recipient is (their name is masked): cached per text.
    content = _content_reasons(masked, policy, context.message_type, context.prices, context.promo_codes,
                               context.facts, context.instructions, draft)
    recipient = checks.check_recipient(masked, context=context)
    return SafetyVerdict.of([*reasons, *_in_check_order(content, recipient)], details)


def _in_check_order(content: tuple[SafetyReason, ...], recipient: list[SafetyReason]) -> list[SafetyReason]:
    """The content reasons with the recipient's in its place (after prompt leaks, before placeholders)."""
    if not recipient:
        return list(content)
    early = {"profanity", "insult", "threat", "sexual", "political", "religious", "credential_request",
             "ai_self_talk", "prompt_leak"}
    split = next((index for index, reason in enumerate(content) if reason.code not in early), len(content))
    return [*content[:split], *recipient, *content[split:]]


def reason_codes() -> dict[str, tuple[str, str]]:
    """Every reason code with its group and advice (engage.ai.reasons.REASON_CODES)."""
    return dict(REASON_CODES)


# The last resort when the database holds no approved text at all (it is seeded by a migration).
BUILT_IN_FALLBACKS = {
    "bn": "ধন্যবাদ, আপনার বার্তা পেয়েছি। আমাদের একজন প্রতিনিধি শীঘ্রই আপনার সাথে যোগাযোগ করবেন।",
    "en": "Thank you, we have received your message. One of our team will get back to you shortly.",
}


def fallback_text_for(*, company: Company | None, message_type: str, locale: str) -> str:
    """The approved fallback for a message type and locale: the company's own, else the global one."""

    wanted_types, wanted_locales = {message_type, "reply"}, {locale, "en"}
    rows = [
        row for row in _company_rows(kind="fallback", company_id=company.pk if company is not None else None)
        if row[1] in wanted_types and row[2] in wanted_locales
    ]

    def preference(row) -> tuple[int, int, int]:
        company_id, row_type, row_locale, _ = row
        return (row_type != message_type, row_locale != locale, company_id is None)

    if rows:
        return min(rows, key=preference)[3]
    return BUILT_IN_FALLBACKS.get(locale, BUILT_IN_FALLBACKS["en"])


_fallback_environment = SandboxedEnvironment(autoescape=False)


@functools.lru_cache(maxsize=256)
def _fallback_template(body: str):
    return _fallback_environment.from_string(body)


_NAME_SLOT, _FULL_NAME_SLOT = "\x00first\x00", "\x00full\x00"


@functools.lru_cache(maxsize=1024)
def _fallback_rendered(body: str, values: tuple[tuple[str, Any], ...]) -> str:
    return _fallback_template(body).render(**dict(values)).strip()


def fallback_render(*, body: str, company: Company | None, contact=None, context: dict | None = None) -> str:
    """An approved fallback with its variables filled: {{ company_name }}, {{ customer_name }},
    {{ customer_first_name }} (the contact's), plus `context` ({{ service_name_bn }} ...). A missing
    variable renders empty (write `{% if x %}...{% endif %}` around it); a body that does not render
    is returned as it is, and the filter then rejects its placeholders.

    The template is rendered once per company, service and kind of name (none, or one), with slots
    for the names that are then filled in: a campaign does not run Jinja for every customer."""
    if "{" not in body:
        return body
    name = contact.name if contact is not None else ""
    given = first_name(name)
    values = {
        "company_name": company.name if company is not None else "",
        "customer_name": _FULL_NAME_SLOT if name else "",
        "customer_first_name": _NAME_SLOT if given else "",
        "contact_name": _FULL_NAME_SLOT if name else "",
        "worker_name": _FULL_NAME_SLOT if name else "",
        **(context or {}),
    }
    try:
        rendered = _fallback_rendered(body, tuple(sorted(values.items())))
        rendered = rendered.replace(_NAME_SLOT, given).replace(_FULL_NAME_SLOT, name)
        if "\x00" in rendered:  # a filter changed a slot ({{ customer_first_name|upper }}): render it for real
            real = {**values, "customer_name": name, "customer_first_name": given, "contact_name": name,
                    "worker_name": name}
            rendered = _fallback_template(body).render(**real).strip()
    except (TemplateError, TypeError):
        return body
    return rendered
