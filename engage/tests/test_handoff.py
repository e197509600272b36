"""Human hand-off: a contact asking for a person, take over, manual replies, hand back."""

import importlib

import pytest
from django.core.exceptions import ValidationError

from crm.models import Contact, Event, Lead
from crm.tests.factories import CompanyFactory
from engage.ai.models import DEFAULT_HANDOFF_KEYWORDS
from engage.conversations.handoff import handoff_is_requested, lead_hand_back, lead_manual_reply, lead_take_over
from engage.models import AIConfig, Job, Message
from engage.tests.helpers import capture, jobs, run_job

KEYWORDS = ["human", "agent", "মানুষ"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I talk to a human please?", True),
        ("AGENT", True),
        ("আমি একজন মানুষের সাথে কথা বলতে চাই", True),
        ("What about humanity?", False),
        ("reagent prices", False),
        ("দাম কত?", False),
    ],
)
def test_a_request_for_a_human_is_recognised(text, expected):
    assert handoff_is_requested(text=text, keywords=KEYWORDS) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Can I speak to someone about my bill?", True),
        ("Please connect me to customer care", True),
        ("The building manager will open the door for your technician", False),
        ("কারো সাথে কথা বলতে চাই", True),
        ("ami manusher sathe kotha bolte chai", True),
        ("Can someone come on Friday?", False),
        ("কবে আসতে পারবেন?", False),
    ],
)
def test_the_default_keywords_recognise_a_request_for_a_person_in_other_words(text, expected):
    assert handoff_is_requested(text=text, keywords=DEFAULT_HANDOFF_KEYWORDS) is expected


@pytest.mark.django_db
def test_configurations_still_on_the_old_default_get_the_wider_one_and_edited_lists_are_kept(company):
    from django.apps import apps

    widened = importlib.import_module("engage.migrations.0036_handoff_keywords_default_widened")
    other = CompanyFactory()
    on_default = AIConfig.objects.create(company=company, handoff_keywords=widened.PREVIOUS)
    edited = AIConfig.objects.create(company=other, handoff_keywords=["operator"])

    widened.widen(apps, None)

    on_default.refresh_from_db()
    edited.refresh_from_db()
    assert on_default.handoff_keywords == DEFAULT_HANDOFF_KEYWORDS and edited.handoff_keywords == ["operator"]
    widened.narrow(apps, None)
    on_default.refresh_from_db()
    assert on_default.handoff_keywords == widened.PREVIOUS


@pytest.mark.django_db
def test_asking_for_a_human_flags_the_lead_pauses_the_ai_and_records_it(fake_openai, company):
    inbound = capture(company, "I want to talk to a human")

    lead = Lead.objects.get(pk=inbound.lead_id)
    assert lead.is_ai_paused and lead.handoff_requested_at is not None
    assert Event.objects.filter(type="handoff.requested", target_id=str(lead.pk)).count() == 1
    run_job(inbound.job_id)
    assert Job.objects.get(pk=inbound.job_id).result == {"skipped": "handoff"}
    assert not Message.objects.filter(lead=lead, direction="outbound").exists()
    assert fake_openai.requests == []


@pytest.mark.django_db
def test_the_keywords_are_a_company_setting(company):
    AIConfig.objects.create(company=company, handoff_keywords=["operator"])

    assert not Lead.objects.get(pk=capture(company, "a human please").lead_id).is_ai_paused
    assert Lead.objects.get(pk=capture(company, "operator!").lead_id).is_ai_paused


@pytest.mark.django_db
def test_take_over_reply_by_hand_and_hand_back(company, staff_user):
    inbound = capture(company, "দাম কত?")
    lead = Lead.objects.get(pk=inbound.lead_id)

    lead_take_over(lead=lead, actor=staff_user)
    job = lead_manual_reply(lead=lead, actor=staff_user, body="  আমি রহিম, আপনাকে সাহায্য করছি।  ")
    assert (job.task_name, job.priority) == ("manual_reply", 100)
    assert run_job(job) == "completed"

    [reply] = Message.objects.filter(lead=lead, direction="outbound")
    assert (reply.body, reply.agent_type, reply.channel, reply.status) == (
        "আমি রহিম, আপনাকে সাহায্য করছি।", "manual", "console", "sent",
    )
    lead.refresh_from_db()
    assert lead.is_ai_paused
    # the AI stays quiet while a person has the conversation
    run_job(inbound.job_id)
    assert Message.objects.filter(lead=lead, direction="outbound").count() == 1

    lead_hand_back(lead=lead, actor=staff_user)
    lead.refresh_from_db()
    assert (lead.is_ai_paused, lead.handoff_requested_at) == (False, None)
    types = list(Event.objects.filter(target_id=str(lead.pk), actor=staff_user).values_list("type", flat=True))
    assert sorted(types) == ["handoff.handed_back", "handoff.taken_over"]


@pytest.mark.django_db
@pytest.mark.parametrize("body", ["", "   ", "x" * 4097])
def test_an_empty_or_oversized_manual_reply_queues_nothing(company, staff_user, body):
    lead = Lead.objects.get(pk=capture(company, "দাম কত?").lead_id)
    before = Job.objects.count()

    with pytest.raises(ValidationError):
        lead_manual_reply(lead=lead, actor=staff_user, body=body)

    assert Job.objects.count() == before
    assert not Lead.objects.get(pk=lead.pk).is_ai_paused


@pytest.mark.django_db
def test_no_manual_reply_to_a_contact_who_opted_out(company, staff_user):
    lead = Lead.objects.get(pk=capture(company, "দাম কত?").lead_id)
    Contact.objects.filter(pk=lead.contact_id).update(is_sms_consented=False)

    with pytest.raises(ValidationError):
        lead_manual_reply(lead=lead, actor=staff_user, body="hello")

    assert jobs("manual_reply") == []


@pytest.mark.django_db
def test_a_conversation_held_by_a_person_keeps_the_summary_current(fake_openai, company, staff_user):
    lead = Lead.objects.get(pk=capture(company, "I want to talk to a human").lead_id)
    assert run_job(lead_manual_reply(lead=lead, actor=staff_user, body="This is Rahim from sales.")) == "completed"
    fake_openai.reply("Asked for a person; Rahim from sales took over.")

    [summary_job] = jobs("ai_summary", payload__lead_id=lead.pk)
    assert run_job(summary_job) == "completed"

    transcript = fake_openai.last_request["messages"][1]["content"]
    assert transcript == "Customer: I want to talk to a human\nUs: This is Rahim from sales."
    assert Lead.objects.get(pk=lead.pk).summary == "Asked for a person; Rahim from sales took over."


@pytest.mark.django_db
def test_a_reply_typed_by_hand_goes_out_on_the_leads_own_channel(company, staff_user, fake_twilio, twilio_account):
    lead = Lead.objects.get(pk=capture(company, "Can I talk to a human?", channel="sms").lead_id)

    assert run_job(lead_manual_reply(lead=lead, actor=staff_user, body="Rahim here, calling you now.")) == "completed"

    [request] = fake_twilio.requests
    assert (request["To"], request["Body"]) == ("+8801711000001", "Rahim here, calling you now.")
    [reply] = Message.objects.filter(lead=lead, direction="outbound")
    assert (reply.channel, reply.agent_type, reply.status) == ("sms", "manual", "sent")
    assert reply.provider_message_id.startswith("SM")


# --- The admin lead page: conversation thread and hand-off controls ---------------------------------


@pytest.fixture
def conversation(company, fake_openai):
    """A lead with an inbound message and an AI reply."""
    fake_openai.reply("আমাদের কোর্স তিন মাসের।")
    inbound = capture(company, "কোর্সটি কত দিনের?")
    run_job(inbound.job_id)
    Lead.objects.filter(pk=inbound.lead_id).update(summary="Asked how long the course is.")
    return Lead.objects.get(pk=inbound.lead_id)


def handoff_url(lead, operation):
    from django.urls import reverse

    return reverse("admin:crm_lead_handoff", args=[lead.pk, operation])


@pytest.mark.django_db
def test_the_lead_page_shows_the_thread_with_status_ai_outcome_stage_and_summary(client, staff_user, conversation):
    from django.urls import reverse

    client.force_login(staff_user)

    response = client.get(reverse("admin:crm_lead_change", args=[conversation.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="lead-conversation"' in page
    assert "কোর্সটি কত দিনের?" in page and "আমাদের কোর্স তিন মাসের।" in page
    assert page.index("কোর্সটি কত দিনের?") < page.index("আমাদের কোর্স তিন মাসের।")
    assert '<span class="delivery-status">Sent</span>' in page
    assert 'class="ai-outcome-ok"' in page
    assert "Asked how long the course is." in page
    assert "<strong>Stage:</strong> New" in page
    assert 'id="take-over"' in page


@pytest.mark.django_db
def test_ops_take_over_reply_and_hand_back_from_the_lead_page(client, staff_user, conversation):
    client.force_login(staff_user)

    client.post(handoff_url(conversation, "take_over"))
    conversation.refresh_from_db()
    assert conversation.is_ai_paused

    response = client.post(handoff_url(conversation, "reply"), {"body": "আমি রহিম, বলুন কীভাবে সাহায্য করতে পারি।"})
    assert response.status_code == 302
    [job] = jobs("manual_reply")
    run_job(job)
    assert Message.objects.filter(lead=conversation, agent_type="manual").values_list("body", flat=True).get() == (
        "আমি রহিম, বলুন কীভাবে সাহায্য করতে পারি।"
    )

    client.post(handoff_url(conversation, "hand_back"))
    conversation.refresh_from_db()
    assert not conversation.is_ai_paused


@pytest.mark.django_db
def test_an_empty_reply_from_the_page_is_refused_and_queues_nothing(client, staff_user, conversation):
    client.force_login(staff_user)

    response = client.post(handoff_url(conversation, "reply"), {"body": ""}, follow=True)

    assert "Not sent" in response.content.decode()
    assert jobs("manual_reply") == []


@pytest.mark.django_db
def test_another_companys_staff_and_anonymous_cannot_see_or_control_the_lead(
    client, other_staff_user, conversation
):
    from django.urls import reverse

    page = reverse("admin:crm_lead_change", args=[conversation.pk])
    # anonymous: sent to the login page, nothing changes
    assert client.get(page).status_code == 302
    response = client.post(handoff_url(conversation, "take_over"))
    assert response.status_code == 302 and "/login/" in response["Location"]
    # bob, staff of another company: the lead does not exist for him
    client.force_login(other_staff_user)
    assert client.get(page).status_code == 404
    assert client.post(handoff_url(conversation, "take_over")).status_code == 404
    assert client.post(handoff_url(conversation, "reply"), {"body": "hi"}).status_code == 404

    conversation.refresh_from_db()
    assert not conversation.is_ai_paused
    assert jobs("manual_reply") == []


@pytest.mark.django_db
def test_hand_off_controls_accept_only_post(client, staff_user, conversation):
    client.force_login(staff_user)
    assert client.get(handoff_url(conversation, "take_over")).status_code == 405
    conversation.refresh_from_db()
    assert not conversation.is_ai_paused


@pytest.mark.django_db
def test_the_lead_page_costs_the_same_queries_for_a_long_conversation(client, staff_user, conversation):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from engage.models import AISession

    client.force_login(staff_user)
    url = reverse("admin:crm_lead_change", args=[conversation.pk])
    client.get(url)
    with CaptureQueriesContext(connection) as short:
        client.get(url)
    for index in range(40):
        message = Message.objects.create(
            company=conversation.company, contact=conversation.contact, lead=conversation, direction="outbound",
            channel="console", body=f"বার্তা {index}", status="delivered",
        )
        AISession.objects.create(company=conversation.company, agent_type="sales", purpose="reply", outcome="ok",
                                 message=message)

    with CaptureQueriesContext(connection) as long:
        response = client.get(url)

    assert "বার্তা 39" in response.content.decode()
    assert len(long.captured_queries) == len(short.captured_queries)
