"""POST /inbound-message and the inbound capture service behind it (and behind channels' inbound webhooks)."""

import pytest
from django.db.models import Count

from channels_app.signals import inbound_message_received
from crm.models import Contact, Event, Lead, Pipeline, Stage
from crm.services import api_key_create
from crm.tests.factories import ContactFactory
from engage.models import Job, Message

URL = "/inbound-message"
BODY = {
    "phone_number": "+8801712345678",
    "contact_name": "Rahul Kumar",
    "message_text": "Interested in the AC servicing package",
    "channel": "whatsapp_web",
}


def counts():
    return (
        Contact.objects.count(),
        Lead.objects.count(),
        Message.objects.count(),
        Job.objects.count(),
        Event.objects.count(),
        Pipeline.objects.count(),
    )


@pytest.mark.django_db
def test_inbound_creates_contact_lead_message_events_and_queues_ai_engage(
    key_client, company, django_capture_on_commit_callbacks
):
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = key_client.post(URL, BODY, format="json")

    # then
    assert response.status_code == 202, response.content
    body = response.json()
    lead = Lead.objects.get(pk=body["lead_id"])
    message = Message.objects.get(pk=body["message_id"])
    job = Job.objects.get(pk=body["job_id"])
    assert body == {"status": "ok", "lead_id": lead.pk, "message_id": message.pk, "job_id": job.pk}

    contact = lead.contact
    assert (contact.company, contact.phone, contact.name) == (company, "+8801712345678", "Rahul Kumar")
    assert contact.is_whatsapp_consented is True
    assert lead.company == company and lead.status == Lead.Status.OPEN and lead.channel == "whatsapp_web"
    assert lead.pipeline.is_default is True
    assert list(lead.pipeline.stages.values_list("name", "order")) == [
        ("New", 1), ("Contacted", 2), ("Qualified", 3), ("Won", 4), ("Lost", 5)
    ]
    assert lead.stage.name == "New"
    assert (message.direction, message.channel, message.body, message.lead, message.contact) == (
        "inbound", "whatsapp_web", BODY["message_text"], lead, contact
    )
    assert message.job == job
    assert (job.company, job.task_name, job.priority, job.status, job.attempts) == (
        company, "ai_engage", 100, "queued", 0
    )
    assert job.payload == {"lead_id": lead.pk, "message_id": message.pk, "contact_id": contact.pk}
    events = list(Event.objects.filter(company=company).order_by("id").values_list("type", "target_id"))
    assert events == [("lead.created", str(lead.pk)), ("message.received", str(message.pk))]
    assert len(callbacks) == 1  # the job goes to Celery only after the commit


@pytest.mark.django_db
def test_local_phone_is_read_in_the_company_region_and_second_message_reuses_contact_and_lead(key_client, company):
    first = key_client.post(URL, {**BODY, "phone_number": "01712345678"}, format="json").json()

    second = key_client.post(URL, {**BODY, "message_text": "What does it cost?"}, format="json")

    assert second.status_code == 202
    second = second.json()
    assert second["lead_id"] == first["lead_id"]
    assert second["message_id"] != first["message_id"] and second["job_id"] != first["job_id"]
    assert Contact.objects.get().phone == "+8801712345678"
    assert list(Event.objects.order_by("id").values_list("type", flat=True)) == [
        "lead.created", "message.received", "message.received"
    ]
    assert Pipeline.objects.count() == 1 and Stage.objects.count() == 5


@pytest.mark.django_db
def test_same_external_id_twice_creates_nothing_and_answers_first_ids(key_client, company):
    first = key_client.post(URL, {**BODY, "external_id": "form-17"}, format="json")
    before = counts()

    again = key_client.post(URL, {**BODY, "external_id": "form-17", "message_text": "edited"}, format="json")

    assert again.status_code == 202
    assert again.json() == first.json()
    assert counts() == before


@pytest.mark.django_db
def test_same_payload_without_external_id_within_the_window_is_a_duplicate(key_client, company):
    first = key_client.post(URL, BODY, format="json").json()
    before = counts()

    again = key_client.post(URL, BODY, format="json")

    assert again.status_code == 202 and again.json() == first
    assert counts() == before


@pytest.mark.django_db
def test_a_closed_lead_makes_a_new_lead(key_client, company):
    first = key_client.post(URL, BODY, format="json").json()
    Lead.objects.filter(pk=first["lead_id"]).update(status=Lead.Status.WON)

    second = key_client.post(URL, {**BODY, "message_text": "I want another service"}, format="json").json()

    assert second["lead_id"] != first["lead_id"]
    assert Lead.objects.get(pk=second["lead_id"]).status == Lead.Status.OPEN
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_contact_is_matched_by_email_when_the_phone_is_new(key_client, company):
    known = ContactFactory(company=company, phone="", email="rahul@example.test")

    body = key_client.post(URL, {**BODY, "email": "Rahul@Example.test"}, format="json").json()

    assert Lead.objects.get(pk=body["lead_id"]).contact_id == known.pk
    known.refresh_from_db()
    assert known.phone == "+8801712345678"
    assert Contact.objects.count() == 1


@pytest.mark.django_db
def test_company_id_of_the_key_is_accepted(key_client, company):
    response = key_client.post(URL, {**BODY, "company_id": str(company.pk)}, format="json")
    assert response.status_code == 202


@pytest.mark.django_db
def test_company_id_not_the_keys_is_403_and_writes_nothing(key_client, company, other_company):
    before = counts()

    response = key_client.post(URL, {**BODY, "company_id": str(other_company.pk)}, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert counts() == before


@pytest.mark.django_db
def test_three_callers_key_of_other_company_staff_and_anonymous(api_client, jwt_client, company, other_company):
    # another company's key writes into its own company only
    _, other_raw_key = api_key_create(company=other_company, name="beta site")
    api_client.credentials(HTTP_X_API_KEY=other_raw_key)
    response = api_client.post(URL, BODY, format="json")
    assert response.status_code == 202
    assert Lead.objects.get(pk=response.json()["lead_id"]).company == other_company
    assert not Lead.objects.filter(company=company).exists()
    before = counts()

    # a staff JWT is not an integration: not accepted here (401, as the schema says); anonymous: 401; a wrong key: 401
    assert jwt_client.post(URL, BODY, format="json").status_code == 401
    api_client.credentials()
    anonymous = api_client.post(URL, BODY, format="json")
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "not_authenticated"
    api_client.credentials(HTTP_X_API_KEY="sk_000000000000_wrong")
    assert api_client.post(URL, BODY, format="json").status_code == 401
    assert counts() == before


BAD_INPUTS = [
    pytest.param({k: v for k, v in BODY.items() if k != "phone_number"}, "phone_number", id="missing-phone"),
    pytest.param({k: v for k, v in BODY.items() if k != "message_text"}, "message_text", id="missing-text"),
    pytest.param({k: v for k, v in BODY.items() if k != "channel"}, "channel", id="missing-channel"),
    pytest.param({**BODY, "phone_number": "12345"}, "phone_number", id="bad-phone"),
    pytest.param({**BODY, "phone_number": "+880 17 not a phone"}, "phone_number", id="letters-phone"),
    pytest.param({**BODY, "message_text": "x" * 4097}, "message_text", id="oversized-text"),
    pytest.param({**BODY, "message_text": "   "}, "message_text", id="blank-text"),
    pytest.param({**BODY, "channel": "pigeon"}, "channel", id="unknown-channel"),
    pytest.param({**BODY, "phone_number": ["+8801712345678"]}, "phone_number", id="phone-list"),
    pytest.param({**BODY, "message_text": {"text": "hi"}}, "message_text", id="text-object"),
    pytest.param({**BODY, "channel": 5}, "channel", id="channel-number"),
    pytest.param({**BODY, "email": "not-an-email"}, "email", id="bad-email"),
    pytest.param({**BODY, "external_id": "e" * 191}, "external_id", id="long-external-id"),
    pytest.param({**BODY, "email": "a" * 250 + "@example.test"}, "email", id="long-email"),
    pytest.param({**BODY, "message_text": "hi\x00there"}, "message_text", id="nul-in-text"),
    pytest.param({**BODY, "contact_name": "n" * 201}, "contact_name", id="long-name"),
    pytest.param({**BODY, "source": "s" * 101}, "source", id="long-source"),
]


@pytest.mark.django_db
@pytest.mark.parametrize("payload, field", BAD_INPUTS)
def test_bad_input_is_400_with_field_errors_and_writes_nothing(key_client, company, payload, field):
    before = counts()

    response = key_client.post(URL, payload, format="json")

    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["fields"]) == [field]
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("raw", ["[1, 2]", "\"text\"", "{not json", ""])
def test_body_that_is_not_a_json_object_is_400(key_client, company, raw):
    before = counts()

    response = key_client.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 400
    assert "error" in response.json()
    assert counts() == before


@pytest.mark.django_db
@pytest.mark.parametrize("keyword", ["STOP", " stop. ", "Unsubscribe", "বন্ধ"])
def test_opt_out_keyword_revokes_consent_and_queues_one_confirmation_not_an_ai_reply(key_client, company, keyword):
    from shokti import metrics

    contact = ContactFactory(company=company, phone="+8801712345678", is_whatsapp_consented=True)
    before_metric = metrics.opt_outs_total.labels(channel="whatsapp_web", reason="keyword")._value.get()

    body = key_client.post(URL, {**BODY, "message_text": keyword}, format="json").json()

    contact.refresh_from_db()
    assert contact.is_whatsapp_consented is False and contact.consent_updated_at is not None
    assert contact.is_email_consented is True  # only that channel's consent
    opt_out = Event.objects.get(type="opt_out")
    assert opt_out.contact == contact and opt_out.payload["channel"] == "whatsapp_web"
    job = Job.objects.get(pk=body["job_id"])
    assert job.task_name == "opt_out_confirmation"
    assert job.payload["channel"] == "whatsapp_web"
    assert not Job.objects.filter(task_name="ai_engage").exists()
    assert metrics.opt_outs_total.labels(channel="whatsapp_web", reason="keyword")._value.get() == before_metric + 1


@pytest.mark.django_db
@pytest.mark.parametrize("keyword", ["START", " unstop ", "চালু"])
def test_start_after_stop_opts_back_in_and_confirms_instead_of_an_ai_reply(key_client, company, keyword):
    from engage.tests.helpers import run_job

    console = {**BODY, "channel": "console"}  # the channel that sends in tests (its consent is the SMS one)
    key_client.post(URL, {**console, "message_text": "STOP"}, format="json")
    assert Contact.objects.get().is_sms_consented is False

    body = key_client.post(URL, {**console, "message_text": keyword}, format="json").json()

    contact = Contact.objects.get()
    assert contact.is_sms_consented is True and contact.consent_updated_at is not None
    opt_in = Event.objects.get(type="opt_in")
    assert opt_in.contact == contact and opt_in.payload["channel"] == "console"
    job = Job.objects.get(pk=body["job_id"])
    assert job.task_name == "opt_in_confirmation" and not Job.objects.filter(task_name="ai_engage").exists()
    assert run_job(job) == "completed"
    confirmation = Message.objects.get(job=job, direction="outbound")
    assert confirmation.message_type == "opt_in_confirmation" and "STOP" in confirmation.body
    # and the next message is answered, and keeps the consent given back
    later = key_client.post(URL, {**console, "message_text": "When can you come?"}, format="json").json()
    assert Job.objects.get(pk=later["job_id"]).task_name == "ai_engage"
    assert Contact.objects.get().is_sms_consented is True


@pytest.mark.django_db
def test_start_from_someone_who_never_opted_out_is_an_ordinary_message(key_client, company):
    body = key_client.post(URL, {**BODY, "message_text": "Start"}, format="json").json()

    assert Job.objects.get(pk=body["job_id"]).task_name == "ai_engage"
    assert not Event.objects.filter(type="opt_in").exists()
    assert Contact.objects.get().is_whatsapp_consented is True


@pytest.mark.django_db
def test_after_opt_out_a_new_message_does_not_consent_again(key_client, company):
    key_client.post(URL, {**BODY, "message_text": "STOP"}, format="json")

    key_client.post(URL, {**BODY, "message_text": "one more question"}, format="json")

    assert Contact.objects.get().is_whatsapp_consented is False
    assert Event.objects.filter(type="opt_out").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("text", [
    "Please don't stop the service next week",
    "Don't stop messaging me about offers, I like them!",
    "Please don't text me before 5pm, I am at work.",
    "Can you stop by tomorrow at 10?",
    "আমার এসি বন্ধ হয়ে গেছে, কবে আসতে পারবেন?",
    "নতুন অফার থাকলে মেসেজ দিয়ে জানাবেন।",
])
def test_stop_inside_a_sentence_is_not_an_opt_out(key_client, company, text):
    body = key_client.post(URL, {**BODY, "message_text": text}, format="json").json()

    assert Contact.objects.get().is_whatsapp_consented is True
    assert not Event.objects.filter(type="opt_out").exists()
    assert Job.objects.get(pk=body["job_id"]).task_name == "ai_engage"


@pytest.mark.django_db
@pytest.mark.parametrize("text", [
    "STOPALL", "Opt out", "স্টপ",
    "Please stop messaging me.",
    "Remove my number from your list",
    "don't text me anymore",
    "আর মেসেজ দিবেন না",
    "দয়া করে মেসেজ পাঠানো বন্ধ করুন।",
    "Ar message diben na please",
])
def test_a_sentence_asking_for_no_more_messages_opts_out(key_client, company, text):
    contact = ContactFactory(company=company, phone="+8801712345678", is_whatsapp_consented=True)

    body = key_client.post(URL, {**BODY, "message_text": text}, format="json").json()

    contact.refresh_from_db()
    assert contact.is_whatsapp_consented is False
    assert Event.objects.filter(type="opt_out", contact=contact).count() == 1
    assert Job.objects.get(pk=body["job_id"]).task_name == "opt_out_confirmation"
    assert not Job.objects.filter(task_name="ai_engage").exists()


@pytest.mark.django_db
def test_channel_inbound_signal_uses_the_same_capture(company):
    # when a channel reports an inbound message twice (provider retry)
    for _ in range(2):
        inbound_message_received.send(
            sender=None, company_id=company.pk, channel="sms", from_phone="+8801812345678", from_email="",
            from_name="Mina", text="Do you clean sofas?", provider_message_id="SM123", raw={"sid": "SM123"},
            occurred_at=None,
        )

    # then one contact, lead, message and ai_engage job
    message = Message.objects.get()
    assert (message.channel, message.external_id, message.body) == ("sms", "ext:sms:SM123", "Do you clean sofas?")
    assert message.contact.phone == "+8801812345678" and message.contact.name == "Mina"
    assert Lead.objects.get().channel == "sms"
    assert Job.objects.get().task_name == "ai_engage"


@pytest.mark.django_db
def test_inbound_email_without_phone_matches_by_email(company):
    known = ContactFactory(company=company, phone="+8801912345678", email="mina@example.test")

    inbound_message_received.send(
        sender=None, company_id=company.pk, channel="email", from_phone="", from_email="MINA@example.test",
        from_name="", text="Re: your offer", provider_message_id="<abc@mail>", raw={}, occurred_at=None,
    )

    assert Message.objects.get().contact == known
    assert Contact.objects.count() == 1
    assert Message.objects.values("contact").annotate(n=Count("id")).get()["n"] == 1


@pytest.mark.django_db
def test_channel_inbound_with_nul_characters_is_stored_without_them(company):
    inbound_message_received.send(
        sender=None, company_id=company.pk, channel="sms", from_phone="+8801812345678", from_email="",
        from_name="Mi\x00na", text="hel\x00lo", provider_message_id="SM-nul", raw={}, occurred_at=None,
    )

    message = Message.objects.get()
    assert message.body == "hello" and message.contact.name == "Mina"
