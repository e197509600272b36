"""The safety filter and the approved fallbacks."""

import pytest

from engage.ai.safety import (
    LINK_PLACEHOLDER,
    SafetyPolicy,
    fallback_text_for,
    link_insert,
    safety_check,
    safety_policy_for,
    sms_segments,
)
from engage.models import AIConfig, BannedPhrase, FallbackText

RECIPIENT_PHONE = "+8801711000001"
BENGALI = "আপনার সার্ভিসের সময় হয়েছে"


LINK = "https://app.sheba.xyz/book?token=.eJyrVkrOV7IyNNJRSgZRxiamZjpKJUpW%3A1xa2JJ%3A9OqlhHz2w0ur&utm_source=smartengage"


def check(
    text, *, policy=None, channel="whatsapp_cloud", locale="en", phone=RECIPIENT_PHONE, email="rahim@example.test",
    link=None,
):
    return safety_check(
        text=text, policy=policy or SafetyPolicy(), channel=channel, locale=locale,
        recipient_phone=phone, recipient_email=email, link=link,
    )


def test_a_clean_message_passes_and_unpacks_as_ok_reason():
    ok, reason = check("Your booking is confirmed.")
    assert (ok, reason) == (True, None)


def test_banned_phrases_are_found_case_insensitively():
    policy = SafetyPolicy(banned_phrases=("Guaranteed Results",))
    assert tuple(check("We promise GUARANTEED results!", policy=policy)) == (
        False, "Contains banned phrase: Guaranteed Results",
    )


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
    assert check(BENGALI + " https://shokti.test/book?code=ABC", locale="bn").is_ok
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
    assert check("The course costs 5000 taka, 3 months, see https://x.test/c/1234567890").is_ok


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
def test_every_seeded_fallback_passes_the_filter_for_its_locale(company):
    policy = safety_policy_for(company=company)
    for fallback in FallbackText.objects.filter(company__isnull=True):
        verdict = safety_check(text=fallback.body, policy=policy, channel="sms", locale=fallback.locale)
        assert verdict.is_ok, (fallback.message_type, fallback.locale, verdict.reason)
