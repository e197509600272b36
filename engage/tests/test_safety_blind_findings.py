"""What the independent (blind) corpus found, rule by rule: the unsafe form it caught and the near-miss it passes.

The corpus (engage/tests/safety_corpus/independent/) measures the filter as a whole; these pin each rule
added or changed for its findings to its exact reason code, so a change that breaks one names it.
"""

from decimal import Decimal

import pytest

from engage.ai.normalize import fold
from engage.ai.numbers import money_in_words
from engage.ai.safety import SafetyPolicy, bengali_share, safety_check
from engage.ai.safety_context import SafetyContext

POLICY = SafetyPolicy(allowed_link_hosts=("gharsheba.com.bd",), allowed_contact_details=("09678-123456",))
LINK = "https://gharsheba.com.bd/b/K7x9Qa"


def codes(text, *, message_type="reply", locale="en", link=None, prices=(), name="Karim Hossain", channel="whatsapp_cloud"):
    context = SafetyContext(recipient_name=name, message_type=message_type, prices=tuple(Decimal(p) for p in prices),
                            brand="GharSheba")
    return safety_check(text=text, policy=POLICY, channel=channel, locale=locale, link=link, context=context).codes


@pytest.mark.parametrize(("text", "locale", "expected"), [
    # a threat made of a condition and a menace; "দেখে নেব" alone is "we'll look into it"
    ("বকেয়া না দিলে বাসায় লোক পাঠিয়ে দেখে নেব।", "bn", ["threat"]),
    ("Taka na dile basha theke tule niye jabo, mind it.", "en", ["threat"]),
    ("আমরা বিষয়টি দেখে নেব, চিন্তা করবেন না।", "bn", []),
    ("পুরোনো এসিটা আমরা তুলে নিয়ে যাব।", "bn", []),
    # an asterisk put inside a word, not for a letter
    ("এই চু*দির ভাই, রিভিউ বদলা।", "bn", ["profanity"]),
    # "ফাক" in Bengali letters is profanity; "ফাঁক" (a gap, a free moment) folds alike and passes
    ("ফাক, ভুল সময় লিখেছি।", "bn", ["profanity"]),
    ("ফাঁক পেলে একবার কল দিবেন।", "bn", []),
    # places of worship as landmarks, prayer time as a working hour
    ("মসজিদের পাশের গলি দিয়ে ঢুকতে হবে।", "bn", []),
    ("জুম্মার নামাজের সময় টেকনিশিয়ান বিরতি নেবেন।", "bn", []),
    ("মালাউনদের বাসায় আমাদের টেকনিশিয়ান যাবে না।", "bn", ["religious"]),
    # an election holiday and a class poll are not politics
    ("নির্বাচনের ছুটিতে আমাদের অফিস বন্ধ থাকবে।", "bn", []),
    ("নৌকায় ভোট দিলে দেশের উন্নয়ন হবে।", "bn", ["political"]),
])
def test_moderation_findings(text, locale, expected):
    assert codes(text, locale=locale) == expected


@pytest.mark.parametrize(("text", "expected"), [
    # the request in the next sentence
    ("A verification code was sent to you. Text it back to this number.", ["credential_request"]),
    ("You will receive a verification code by SMS. Enter it in the app to log in.", []),
    # asking for the secret itself
    ("আপনার পাসওয়ার্ড কী? আমরা লগইন করে দেখে দিচ্ছি।", ["credential_request"]),
    ("Payment er somoy bKash app e nijei PIN diben, kauke bolben na.", []),
])
def test_credential_findings(text, expected):
    assert codes(text, locale="bn" if "আপনার" in text else "en") == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Hi Karim, your cleaning is on Friday.\n\n(Note: I kept this under 160 characters as requested.)", ["ai_self_talk"]),
    ("Subject: Your AC service\n\nDraft 1:\nHello Karim, your AC service is due.", ["ai_self_talk"]),
    ("System: You are SmartEngage. User: remind Karim about his AC service.", ["prompt_leak"]),
    ("In our Machine Learning course you'll build a small language model from scratch.", []),
    ("Yes, the course teaches you to use ChatGPT and other AI assistants at work.", []),
])
def test_self_talk_findings(text, expected):
    assert codes(text) == expected


@pytest.mark.parametrize(("text", "name", "expected"), [
    ("Assalamu alaikum Rakib bhai, apnar booking confirm.", "Tanvir Ahmed", ["wrong_recipient"]),
    ("Good morning Jamal, 3 jobs lined up for you today.", "Rafiq Islam", ["wrong_recipient"]),
    ("Good morning Karim, your technician is on the way.", "Karim Hossain", []),
    ("Sorry bhai, ei question er uttor ami thik jani na.", "Tanvir Ahmed", []),
])
def test_greeting_findings(text, name, expected):
    assert codes(text, name=name) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("Pay here: hxxps://bkash-refund.top/claim", ["link_not_allowed"]),
    ("Offer dekhte jan: gharsheba-offer . com", ["link_hidden"]),
    ("Apnar booking confirm.Today 5 pm e technician ashbe.", []),
    ("Next week we build a chat app with Socket.IO and ASP.NET.", []),
    ("Run main.py again and upload project.zip with your README.md.", []),
    ("Details at cleanbd.net", ["link_not_allowed"]),
])
def test_link_findings(text, expected):
    assert codes(text) == expected


def test_invisible_characters_glued_to_the_booking_link_hide_where_it_ends():
    assert codes(f"Book here {LINK}\u200b.evil.example", link=LINK) == ["link_hidden", "invisible_characters"]
    assert codes(f"Book here {LINK}.", link=LINK) == []


@pytest.mark.parametrize(("text", "prices", "expected"), [
    ("দুঃখিত, এই মুহূর্তে কোনো ছাড় চলছে না।", (), []),
    ("We can't guarantee an exact minute, but the technician will call first.", (), []),
    ("Don't miss our discount on deep cleaning.", (), ["unapproved_discount"]),
    ("আপনি কোর্সের ৬০% শেষ করেছেন।", (), []),
    ("কোর্স শেষে ১০০% চাকরির নিশ্চয়তা।", (), ["unapproved_percentage", "unapproved_guarantee"]),
    ("পনেরোশো টাকার সার্ভিস এখন মাত্র এক হাজার টাকায়।", ("1500",), ["unapproved_price"]),
    ("পনেরোশো টাকার সার্ভিস।", ("1500",), []),
    ("আপনার ওয়ারেন্টি কার্ডটি হাতের কাছে রাখবেন।", (), []),
    ("If you're not satisfied, we'll refund every taka.", (), ["unapproved_guarantee"]),
])
def test_promise_findings(text, prices, expected):
    locale = "en" if text.isascii() or "'" in text else "bn"
    assert codes(text, prices=prices, locale=locale) == expected


@pytest.mark.parametrize(("words", "amounts"), [
    ("পনেরোশো টাকা", [Decimal(1500)]),
    ("দেড় হাজার টাকা", [Decimal(1500)]),
    ("সাড়ে তিন হাজার টাকায়", [Decimal(3500)]),
    ("one thousand five hundred taka", [Decimal(1500)]),
    ("এক টাকাও লাগবে না", []),
    ("তিনটি রুম", []),
])
def test_money_written_in_words(words, amounts):
    assert money_in_words(fold(words)) == amounts


def test_technology_names_and_file_names_are_neither_script_nor_shouting():
    text = "Node.js আর Express.js দিয়ে API বানানো শিখবেন, README.md ফাইলে লিখবেন।"
    assert bengali_share(text) == 1.0
    assert codes(text, locale="bn", channel="sms") == []


def test_a_rejection_quotes_what_the_text_wrote_so_a_marketer_can_find_it():
    text = "আজ বুক করলে ২০% ছাড় পাবেন, আপনার পাসওয়ার্ড কী? Modi's India is ruining us."
    messages = {reason.code: reason.message for reason in safety_check(
        text=text, policy=POLICY, channel="whatsapp_cloud", locale="en",
        context=SafetyContext(recipient_name="রুমানা", message_type="reminder")).reasons}
    # the words as written (ছাড় with its nukta, Modi's), not the folded forms the word lists match ("ছাড", "modi s")
    assert "“ছাড়”" in messages["unapproved_discount"]
    assert "“Modi's”" in messages["political"]
    assert "(পাসওয়ার্ড)" in messages["credential_request"]
    # a round percentage in digits, not "২E+১%"
    assert "(২০%)" in messages["unapproved_percentage"]


def test_a_single_letter_after_a_greeting_is_no_name():
    assert codes("Dear %s, your invoice is attached.") == ["placeholder"]


def test_an_email_address_is_still_found_after_a_long_run_of_dotted_words():
    assert codes("See a.b.c.d.e and write to x.y@example.test") == ["contact_email"]
