"""The safety filter and the approved fallbacks."""

from decimal import Decimal

import pytest

from crm.tests.factories import ContactFactory
from engage.ai.reasons import REASON_CODES, SafetyReason
from engage.ai.safety import (
    LINK_PLACEHOLDER,
    SafetyPolicy,
    fallback_render,
    fallback_text_for,
    link_insert,
    safety_check,
    safety_policy_for,
    sms_segments,
)
from engage.ai.safety_context import SafetyContext
from engage.models import AIConfig, BannedPhrase, FallbackText

RECIPIENT_PHONE = "+8801711000001"
BENGALI = "আপনার সার্ভিসের সময় হয়েছে"


LINK = "https://app.sheba.xyz/book?token=.eJyrVkrOV7IyNNJRSgZRxiamZjpKJUpW%3A1xa2JJ%3A9OqlhHz2w0ur&utm_source=smartengage"


def check(
    text, *, policy=None, channel="whatsapp_cloud", locale="en", phone=RECIPIENT_PHONE, email="rahim@example.test",
    link=None, context=None, draft=None,
):
    return safety_check(
        text=text, policy=policy or SafetyPolicy(), channel=channel, locale=locale,
        recipient_phone=phone, recipient_email=email, link=link, context=context, draft=draft,
    )


def test_a_clean_message_passes_and_unpacks_as_ok_reason():
    ok, reason = check("Your booking is confirmed.")
    assert (ok, reason) == (True, None)


def test_banned_phrases_are_found_case_insensitively_and_every_other_reason_is_reported_too():
    policy = SafetyPolicy(banned_phrases=("Guaranteed Results",))
    verdict = check("We promise GUARANTEED results!", policy=policy)
    assert not verdict.is_ok
    assert verdict.reasons[0] == SafetyReason("banned_phrase", "Contains banned phrase: Guaranteed Results")
    # not the first reason only: the made-up promise and the shouting are named as well
    assert verdict.codes == ["banned_phrase", "unapproved_guarantee", "tone_shouting"]
    assert verdict.reason == "; ".join(reason.message for reason in verdict.reasons)


def test_empty_text_is_rejected():
    assert check("   ").reason == "Empty message."


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 306, 2), ("a" * 307, 3), ("[" * 80, 1), ("[" * 81, 2),
     ("ক" * 70, 1), ("ক" * 71, 2), ("ক" * 134, 2), ("ক" * 135, 3)],
)
def test_sms_segments_follow_gsm_and_ucs2_sizes(text, segments):
    assert sms_segments(text) == segments


def test_sms_longer_than_the_allowed_segments_is_rejected():
    policy = SafetyPolicy(sms_max_segments=2)
    assert check("ক" * 134, policy=policy, channel="sms", locale="bn").is_ok
    verdict = check("ক" * 135, policy=policy, channel="sms", locale="bn")
    assert verdict.reason == "Too long for SMS: 3 segments, at most 2 allowed."


def test_other_channels_have_their_own_length_limit():
    assert not check("a" * 4097, channel="whatsapp_cloud").is_ok
    assert check("a" * 4097, channel="email").is_ok


def test_bengali_contacts_get_mostly_bengali_text():
    assert check(BENGALI + " https://app.sheba.xyz/book?code=ABC", locale="bn").is_ok
    assert check(BENGALI + " OK", locale="bn").is_ok
    verdict = check("Your service is due, book now", locale="bn")
    assert not verdict.is_ok and verdict.reason == "Not mostly Bengali: 0% of letters are Bengali."


def test_the_recipients_own_phone_in_any_form_is_allowed_another_is_not():
    assert check("We will call you on 01711-000001.").is_ok
    assert check("We will call you on +880 1711 000001.").is_ok
    assert check("আমরা ০১৭১১০০০০০১ নম্বরে কল করব।", locale="bn").is_ok
    verdict = check("Call Karim on 01819-123456 instead.")
    assert verdict.reason == "Mentions another person's phone number: 01819-123456"
    assert not check("আমরা ০১৮১৯১২৩৪৫৬ নম্বরে কল করব।", locale="bn").is_ok


def test_the_companys_own_contact_details_are_allowed():
    policy = SafetyPolicy(allowed_contact_details=("+8809612000000", "help@shokti.test"))
    assert check("Call us on 09612-000000 or write to help@shokti.test", policy=policy).is_ok


def test_another_persons_email_is_rejected_the_recipients_is_not():
    assert check("We wrote to rahim@example.test.").is_ok
    assert check("Ask karim@example.test.").reason == "Mentions another person's email: karim@example.test"


def test_short_numbers_prices_and_links_are_not_phone_numbers():
    policy = SafetyPolicy(allowed_link_hosts=("x.test",))
    context = SafetyContext(prices=(Decimal("5000"),))
    verdict = check("The course costs 5000 taka, 3 months, see https://x.test/c/1234567890", policy=policy,
                    context=context)
    assert verdict.is_ok, verdict.reason


def test_a_required_link_must_be_present():
    policy = SafetyPolicy(required_link="https://shokti.test/b")
    assert check("Book at https://shokti.test/b?x=1", policy=policy).is_ok
    assert check("Book now", policy=policy).reason == "Missing the required link https://shokti.test/b"


def test_the_link_goes_where_the_model_left_the_placeholder_else_at_the_end_and_none_leaves_no_placeholder():
    assert link_insert(text=f"{BENGALI}: {LINK_PLACEHOLDER}", link=LINK) == f"{BENGALI}: {LINK}"
    assert link_insert(text=f"{BENGALI}।", link=LINK) == f"{BENGALI}।\n{LINK}"
    assert link_insert(text=f"{BENGALI} {LINK_PLACEHOLDER} ধন্যবাদ", link="") == f"{BENGALI} ধন্যবাদ"
    assert link_insert(text=f"{BENGALI}: {LINK_PLACEHOLDER}", link="") == f"{BENGALI}:"


def test_the_messages_own_link_must_be_in_it_and_replaces_the_fixed_required_link():
    policy = SafetyPolicy(required_link="https://shokti.test/b")
    assert check(f"Book at {LINK}", policy=policy, link=LINK).is_ok
    assert check("Book now", policy=policy, link=LINK).reason == "Missing the message's booking link."
    # a message that carries no link this time (deep links off) needs none, the fixed one included
    assert check("Book now", policy=policy, link="").is_ok
    assert check("Book now", policy=policy).reason == "Missing the required link https://shokti.test/b"


def test_the_link_counts_towards_the_sms_length():
    text = "ক" * 60
    assert check(text, policy=SafetyPolicy(sms_max_segments=1), channel="sms", locale="bn").is_ok
    # Bengali makes the whole SMS UCS-2: the ASCII link costs a UCS-2 unit a character
    verdict = check(f"{text} {LINK}", policy=SafetyPolicy(sms_max_segments=2), channel="sms", locale="bn", link=LINK)
    assert verdict.reason == f"Too long for SMS: {sms_segments(f'{text} {LINK}')} segments, at most 2 allowed."
    assert sms_segments(f"{text} {LINK}") == 3


def test_banned_phrases_are_not_looked_for_inside_the_messages_own_link():
    # the random token of a signed link could hold a short banned word by chance
    policy = SafetyPolicy(banned_phrases=("token",))
    assert check(f"{BENGALI} {LINK}", policy=policy, locale="bn", link=LINK).is_ok
    assert check(f"{BENGALI} token {LINK}", policy=policy, locale="bn", link=LINK).reason == (
        "Contains banned phrase: token"
    )
    # a link the model wrote itself is text like any other
    assert not check(f"{BENGALI} {LINK}", policy=policy, locale="bn").is_ok


@pytest.mark.django_db
def test_the_policy_joins_global_and_company_phrases_but_not_other_companies(company, other_company):
    BannedPhrase.objects.create(company=company, phrase="free money")
    BannedPhrase.objects.create(company=other_company, phrase="beta only")
    AIConfig.objects.create(company=company, sms_max_segments=4, required_link="https://a.test/x")

    policy = safety_policy_for(company=company)

    assert "free money" in policy.banned_phrases
    assert "guaranteed results" in policy.banned_phrases  # seeded globally
    assert "beta only" not in policy.banned_phrases
    assert (policy.sms_max_segments, policy.required_link) == (4, "https://a.test/x")


@pytest.mark.django_db
def test_fallbacks_prefer_the_companys_text_then_the_global_one_then_english(company, other_company):
    FallbackText.objects.create(company=company, message_type="followup", locale="bn", body="কোম্পানির নিজস্ব বার্তা")

    assert fallback_text_for(company=company, message_type="followup", locale="bn") == "কোম্পানির নিজস্ব বার্তা"
    assert fallback_text_for(company=other_company, message_type="followup", locale="bn") == (
        "আপনার কোনো প্রশ্ন থাকলে আমাদের জানান, আমরা সাহায্য করতে প্রস্তুত।"
    )
    assert fallback_text_for(company=company, message_type="followup", locale="fr").startswith("Just checking in")
    assert fallback_text_for(company=company, message_type="unknown", locale="en").startswith("Thank you")


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["রুমানা সরকার", ""])
def test_every_seeded_fallback_rendered_passes_the_filter_for_its_locale(company, name):
    policy = safety_policy_for(company=company)
    contact = ContactFactory(company=company, name=name)
    link = "https://app.sheba.xyz/l/AbCdEf12"
    for fallback in FallbackText.objects.filter(company__isnull=True):
        message_link = link if fallback.message_type == "reminder" else None
        text = fallback_render(body=fallback.body, company=company, contact=contact,
                               context={"service_name_bn": "এসি সার্ভিসিং", "service_name": "AC servicing"})
        text = link_insert(text=text, link=message_link) if message_link else text
        verdict = safety_check(text=text, policy=policy, channel="sms", locale=fallback.locale, link=message_link,
                               context=SafetyContext(recipient_name=name, message_type=fallback.message_type,
                                                     brand=company.name))
        assert verdict.is_ok, (fallback.message_type, fallback.locale, verdict.reason)


# --- the checks that judge meaning (issue 15) -------------------------------------------------------

OWN = "https://app.sheba.xyz/l/AbCdEf12"
HOSTS = SafetyPolicy(allowed_link_hosts=("app.sheba.xyz", "sheba.xyz"))
RUMANA = SafetyContext(recipient_name="রুমানা সরকার", message_type="reminder", brand="Sheba Home")


def reminder(draft, *, context=RUMANA, policy=HOSTS, channel="sms", locale="bn"):
    """A SmartEngage reminder judged as it is sent: our link put where the model left the placeholder."""
    text = link_insert(text=draft, link=OWN)
    return safety_check(text=text, policy=policy, channel=channel, locale=locale, link=OWN, context=context,
                        draft=draft)


@pytest.mark.parametrize(
    ("text", "date_kind"),
    [("টেকনিশিয়ান ২০২৬-১১-১৫ তারিখে আসবেন।", "ISO date"), ("Between 10.30-12.30 on Friday.", "time range"),
     ("Order 4581236 is confirmed.", "order number"), ("অর্ডার নম্বর ২০২৬১১১৫০০৪২।", "long order number"),
     ("Reference 0042-1115-2026.", "reference"), ("Visit on 15/11/2026 at 14:00.", "date")],
)
def test_dates_times_and_order_numbers_are_not_phone_numbers(text, date_kind):
    verdict = check(text, locale="bn" if "টেক" in text or "অর্ডার" in text else "en")
    assert "contact_phone" not in verdict.codes, (date_kind, verdict.reason)


def test_a_phone_number_is_parsed_for_the_companys_region():
    assert check("Call 01819-123456.").codes == ["contact_phone"]
    # a number written the Indian way is a number there, not in Bangladesh
    assert check("Call 098765 43210.", policy=SafetyPolicy(region="IN")).codes == ["contact_phone"]
    assert "contact_phone" not in check("Call 098765 43210.").codes


@pytest.mark.parametrize(
    ("draft", "code"),
    [
        ("প্রিয় রুমানা, বিস্তারিত www.ac-offer-bd.com এ। [BOOKING_LINK]", "link_not_allowed"),
        ("প্রিয় রুমানা, লগইন করুন https://shebа.xyz/login [BOOKING_LINK]", "link_lookalike"),  # Cyrillic а
        ("প্রিয় রুমানা, দেখুন sheba-booking.com [BOOKING_LINK]", "link_lookalike"),
        ("প্রিয় রুমানা, দেখুন https://app.sheba.xyz.booking-now.net/ac [BOOKING_LINK]", "link_lookalike"),
        ("প্রিয় রুমানা, দেখুন bit.ly/3xYz9Qa [BOOKING_LINK]", "link_shortener"),
        ("প্রিয় রুমানা, দেখুন sheba\u200b.xyz.secure-pay.com [BOOKING_LINK]", "link_hidden"),
        ("প্রিয় রুমানা, অ্যাপ নিন sheba[.]xyz/app থেকে। [BOOKING_LINK]", "link_hidden"),
    ],
)
def test_links_other_than_the_companys_are_rejected_beside_our_own(draft, code):
    verdict = reminder(draft)
    assert code in verdict.codes, verdict.reason


def test_the_companys_hosts_and_subdomains_pass_and_punycode_is_decoded():
    assert reminder("প্রিয় রুমানা, বিস্তারিত help.sheba.xyz এ। [BOOKING_LINK]").is_ok
    # xn--shba-... is punycode for a host with a non-Latin letter: decoded, it imitates sheba.xyz
    punycode = "shеba.xyz".encode("idna").decode()
    verdict = check(f"Pay at https://{punycode}/pay", policy=HOSTS)
    assert verdict.codes == ["link_lookalike"]


def test_the_draft_is_judged_before_our_link_and_the_final_text_after():
    # the model put a foreign host right where our link goes: the final text has both
    draft = "প্রিয় রুমানা, বুক করুন: https://evil.test/[BOOKING_LINK]"
    verdict = reminder(draft)
    assert "link_not_allowed" in verdict.codes


@pytest.mark.parametrize(
    "text",
    ["আপনার বুকিং নিশ্চিত করতে বিকাশ পিন নম্বরটি পাঠান।", "Send your bKash PIN to confirm the booking.",
     "OTP ta share koren, booking hoye jabe.", "পি ন নম্বরটা দিন।", "Reply with the 0TP you received."],
)
def test_credential_requests_are_rejected(text):
    assert "credential_request" in check(text).codes


@pytest.mark.parametrize(
    "text",
    ["আমরা কখনো আপনার বিকাশ পিন বা ওটিপি চাই না।", "Please never share your OTP or PIN with anyone.",
     "টেকনিশিয়ান পৌঁছানোর পর লোকেশন পিন পাঠালে সুবিধা হয়।"],
)
def test_warnings_about_secrets_and_location_pins_pass(text):
    assert "credential_request" not in check(text).codes


def test_ai_self_talk_and_prompt_leaks_are_rejected():
    assert check("As an AI language model, I cannot visit you.").codes == ["ai_self_talk"]
    instructions = "Use only the facts you are given, and never invent prices or promises."
    verdict = check("Use only the facts you are given: the job takes two hours.",
                    context=SafetyContext(instructions=instructions))
    assert verdict.codes == ["prompt_leak"]
    assert check("The job takes two hours.", context=SafetyContext(instructions=instructions)).is_ok


@pytest.mark.parametrize(
    ("text", "name", "is_wrong"),
    [("প্রিয় করিম, আপনার সার্ভিসের সময় হয়েছে।", "রুমানা সরকার", True),
     ("Dear Karim, your service is due.", "Rumana Sarkar", True),
     ("Hello Mr. Hasan, your cleaning is booked.", "Rumana Sarkar", True),
     ("Hi Nusrat, thanks!", "", True),
     ("Dear Rumana, your service is due.", "রুমানা সরকার", False),  # another script, the same name
     ("প্রিয় শিরিন, আপনার সার্ভিসের সময় হয়েছে।", "Shirin Akhter", False),
     ("প্রিয় গ্রাহক, আপনার সার্ভিসের সময় হয়েছে।", "", False),
     ("Hello from Sheba Home! Your service is due.", "Rumana Sarkar", False),
     ("প্রিয় মোঃ রফিকুল, সময় হয়েছে।", "মোঃ রফিকুল ইসলাম", False)],
)
def test_a_greeting_must_name_the_recipient_or_nobody(text, name, is_wrong):
    context = SafetyContext(recipient_name=name, brand="Sheba Home")
    codes = check(text, context=context, locale="bn" if text[0] > "\u0900" else "en").codes
    assert ("wrong_recipient" in codes) is is_wrong, codes


def test_a_latin_name_is_masked_as_the_whole_word_regex_would():
    # The scan that replaced a regex compiled per name: the same masking on texts built to trip it
    # (case, glued words, domains, paths, underscores, digits, Bengali around it, repeats).
    import random
    import re

    from engage.ai.safety import NAME_STAND_IN, _whole_word_masked

    pieces = ["Ali", "ali", "ALI", "Alive", "Kali", "ali.com", "/ali", "ali-", "_ali", "ali2", "2ali", "আলি", "Ali,",
              "Ali।", "(Ali)", "ali ali", "Ali's", "ai", " ", " ", "\n", "প্রিয়", "Alİ", "x", "."]
    generator = random.Random(23)
    for _ in range(3000):
        text = "".join(generator.choice(pieces) for _ in range(generator.randint(0, 8)))
        for word in ("Ali", "ai", "Li"):
            expected = re.sub(rf"(?<![\w.\-/]){re.escape(word)}(?![\w.\-/])", NAME_STAND_IN, text,
                              flags=re.IGNORECASE)
            assert _whole_word_masked(text, word) == expected, (text, word)


def test_the_recipients_own_name_is_never_a_violation():
    # a customer called Allah Rakha is greeted by name; the word is not religious content there
    context = SafetyContext(recipient_name="আল্লাহ রাখা")
    assert check("প্রিয় আল্লাহ রাখা, আপনার সার্ভিসের সময় হয়েছে।", locale="bn", context=context).is_ok
    assert "religious" in check("আল্লাহ রাখা ভালো রাখুন।", locale="bn").codes


@pytest.mark.parametrize(
    ("text", "code"),
    [("প্রিয় {customer_name}, সময় হয়েছে।", "placeholder"), ("Hi {{ name }}!", "placeholder"),
     ("Your link: [BOOKING_LINK]", "placeholder"), ("Dear [Customer Name], hello.", "placeholder"),
     ("<b>Hello</b> there", "markup"), ("<script>alert(1)</script>", "markup"), ("**Offer** today", "markup"),
     ("Book [here](https://app.sheba.xyz/b)", "markup"), ("Hello\u200b there", "invisible_characters"),
     ("Hello \u202eereht\u202c", "invisible_characters")],
)
def test_placeholders_markup_and_invisible_characters_are_rejected(text, code):
    assert code in check(text, policy=HOSTS).codes


def test_bengali_joiners_and_emoji_sequences_are_not_invisible_tricks():
    assert check("র\u200d্যাব এর কাছে 👨\u200d🔧 আসবেন।", locale="bn").is_ok


@pytest.mark.parametrize(
    ("text", "code", "context"),
    [("এই মাসে মাত্র ৯৯৯ টাকায়!", "unapproved_price", SafetyContext(prices=(Decimal("1500"),))),
     ("Get 20% off this week.", "unapproved_percentage", SafetyContext()),
     ("Use code SAVE30 today.", "unapproved_promo_code", SafetyContext(promo_codes=("EID25",))),
     ("একটি ফিল্টার ফ্রি পাবেন।", "unapproved_discount", SafetyContext()),
     ("কাজ পছন্দ না হলে টাকা ফেরত।", "unapproved_guarantee", SafetyContext())],
)
def test_promises_the_context_did_not_give_are_rejected(text, code, context):
    assert code in check(text, context=context, locale="bn" if "৯" in text or "ফ" in text else "en").codes


def test_promises_the_context_gave_pass_in_either_digits():
    context = SafetyContext(prices=(Decimal("1500.00"),), promo_codes=("EID25",),
                            facts="প্লাম্বিং: ৩০ দিনের সার্ভিস ওয়ারেন্টি। ২০% ছাড় শুক্রবারে।")
    assert check("দাম ৳১,৫০০; কোড EID25 দিয়ে বুক করুন।", context=context, locale="bn").is_ok
    assert check("It costs 1500 taka with code eid25.", context=context).is_ok
    assert check("৩০ দিনের ওয়ারেন্টি আছে, শুক্রবারে ২০% ছাড়।", context=context, locale="bn").is_ok
    # "free" as in free time is no offer
    assert check("Whenever you are free, feel free to book.").is_ok


def test_pressure_applies_to_proactive_messages_only():
    pushy = "Last chance, hurry up and book!"
    assert "tone_pressure" in check(pushy, context=SafetyContext(message_type="reminder")).codes
    assert "tone_pressure" in check("এসি সার্ভিসিং এখনই বুক করুন!", locale="bn",
                                    context=SafetyContext(message_type="followup")).codes
    assert "tone_pressure" not in check(pushy, context=SafetyContext(message_type="reply")).codes
    assert check("There is no hurry; book whenever it suits you.",
                 context=SafetyContext(message_type="reminder")).is_ok


@pytest.mark.parametrize(
    ("text", "code"),
    [("Karim, one more late arrival and your account will be deactivated.", "coaching_threat"),
     ("Karim, other technicians arrive on time every day.", "coaching_comparison"),
     ("Karim, you are lazy and careless.", "coaching_judgement"),
     ("Karim, a penalty will be deducted from your payout.", "coaching_fine"),
     ("Karim, the customer at House 7, Road 11 complained.", "customer_details"),
     ("KARIM, YOU WERE LATE AGAIN!!", "tone_shouting")],
)
def test_coaching_rules(text, code):
    context = SafetyContext(recipient_name="Karim Mia", message_type="coaching")
    assert code in check(text, context=context).codes
    # the coaching rules are for coaching: a reply may say "suspended ceiling" or "fined"
    if code.startswith("coaching_"):
        assert code not in check(text, context=SafetyContext(message_type="reply")).codes


def test_coaching_that_encourages_passes():
    context = SafetyContext(recipient_name="Karim Mia", message_type="coaching")
    text = "Karim, your on-time rate went from 70% to 90% since last month. You did a fine job, thank you!"
    assert check(text, context=context).is_ok


def test_offline_moderation_sees_through_spacing_leetspeak_homoglyphs_and_masks():
    for text in ["f u c k this", "sh1t happens", "ＦＵＣＫ", "f*ck", "what the fuuuuck", "তুই একটা শা লা"]:
        assert "profanity" in check(text).codes, text
    for text in ["Have a good day", "The class starts at 10", "Scunthorpe is a town", "আপনার জন্য সুখবর আছে"]:
        assert check(text, locale="bn" if text[0] > "\u0900" else "en").is_ok, text


def test_every_reason_code_has_an_explanation():
    assert all(group and advice for group, advice in REASON_CODES.values())


@pytest.mark.django_db
def test_the_admins_allowed_link_domains_join_our_own_hosts(company, settings):
    settings.DEEP_LINK_BASE_URL = "https://app.sheba.xyz/book"
    settings.SHORT_LINK_BASE_URL = "https://s.sheba.xyz/l/"
    config = AIConfig.objects.create(company=company, allowed_link_domains=["Partner.Example.com"])
    config.full_clean()
    config.save()
    from engage.ai.config import allowed_link_hosts

    hosts = allowed_link_hosts(company=company)
    assert {"app.sheba.xyz", "s.sheba.xyz", "partner.example.com"} <= set(hosts)
    assert safety_policy_for(company=company).allowed_link_hosts == hosts


@pytest.mark.django_db
@pytest.mark.parametrize("value", [["not a domain"], ["bit.ly"], "sheba.xyz", [3]])
def test_bad_allowed_link_domains_are_refused(company, value):
    from django.core.exceptions import ValidationError

    config = AIConfig(company=company, allowed_link_domains=value)
    with pytest.raises(ValidationError) as refused:
        config.full_clean()
    assert "allowed_link_domains" in refused.value.message_dict
