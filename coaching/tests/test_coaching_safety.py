"""The safety filter for message_type "coaching" (POST /api/safety/check): what the research says backfires or
harms is rejected, a kind coaching text passes."""

import pytest

KIND = ("করিম ভাই, আপনার কাজের জন্য ধন্যবাদ। গত দুই সপ্তাহে তিনটি বুকিংয়ে পৌঁছাতে একটু দেরি হয়েছে। "
        "দেরি হলে আগে গ্রাহককে ফোন করে জানালে সুবিধা হয়। কী কারণে দেরি হয়েছিল, জানাবেন?")
HARMFUL = {
    "threat": ("আবার দেরি হলে আপনার অ্যাকাউন্ট বন্ধ করে দেওয়া হবে।", "coaching_threat"),
    "deactivation (English)": ("If you are late again your account will be deactivated.", "coaching_threat"),
    "comparison": ("অন্য কর্মীরা সবাই সময়মতো আসে, শুধু আপনি দেরি করেন।", "coaching_comparison"),
    "judgement": ("আপনি খুব অলস এবং দায়িত্বজ্ঞানহীন।", "coaching_judgement"),
    "fine": ("দেরির জন্য আপনাকে ৫০০ টাকা জরিমানা দিতে হবে।", "coaching_fine"),
    "shouting": ("SORRY BUT YOU MUST BE ON TIME FROM NOW ON!!!", "tone_shouting"),
    "customer address": ("বাড়ি নং ১২, রোড ৫ এর গ্রাহক অপেক্ষা করছিলেন।", "customer_details"),
    "customer phone": ("গ্রাহকের নম্বর +8801819000111, তাঁকে ফোন করবেন।", "contact_phone"),
}


def check(client, text, **extra):
    response = client.post("/api/safety/check", {"text": text, "channel": "sms", "message_type": "coaching", **extra},
                           format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
def test_a_kind_coaching_text_passes(key_client, company):
    from coaching.tests.helpers import worker_of

    worker = worker_of(company, name="Karim Mia")
    assert check(key_client, KIND, contact_id=worker.contact.pk) == {"safe": True, "reasons": []}


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(HARMFUL))
def test_harmful_coaching_is_rejected(key_client, name):
    text, code = HARMFUL[name]
    verdict = check(key_client, text)
    assert not verdict["safe"] and code in {reason["code"] for reason in verdict["reasons"]}, verdict
