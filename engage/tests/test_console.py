"""The console's inbox and pipeline board: what they list, for whom, and what their buttons change."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Event, Lead, Membership, Stage
from crm.tests.factories import LeadFactory, StaffUserFactory
from engage.conversations.inbox import inbox_page
from engage.messaging.models import Message
from engage.tests.helpers import jobs, run_job

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def say(lead, body, *, direction="inbound", minutes_ago=0, **fields):
    return Message.objects.create(
        company=lead.company, contact=lead.contact, lead=lead, direction=direction, channel=lead.channel, body=body,
        status="received" if direction == "inbound" else "sent",
        created_at=timezone.now() - timedelta(minutes=minutes_ago), **fields,
    )


def rows(client, **params):
    response = client.get(reverse("admin:crm_lead_inbox_rows"), params)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def three_conversations(company, other_company):
    quiet = LeadFactory(company=company, contact__name="Quiet")
    say(quiet, "hello", minutes_ago=30)
    say(quiet, "we answered", direction="outbound", minutes_ago=29, agent_type="smartengage", message_type="reply")
    waiting = LeadFactory(company=company, contact__name="Waiting", handoff_requested_at=timezone.now(),
                          is_ai_paused=True)
    say(waiting, "first", minutes_ago=20)
    say(waiting, "a person please", minutes_ago=5)
    foreign = LeadFactory(company=other_company, contact__name="Foreign")
    say(foreign, "not yours", minutes_ago=1)
    return quiet, waiting, foreign


def test_the_inbox_lists_each_open_conversation_once_newest_activity_first_with_its_last_message(
    client, staff_user, three_conversations
):
    _quiet, _waiting, _ = three_conversations
    client.force_login(staff_user)

    body = rows(client)

    assert [(row["name"], row["last_message"]["body"]) for row in body["rows"]] == [
        ("Waiting", "a person please"), ("Quiet", "we answered"),
    ]
    assert body["next_cursor"] is None
    assert body["rows"][1]["last_message"]["sender"] == "AI (SmartEngage): reply"


def test_the_inbox_views_needs_a_human_unread_mine_unassigned_ai_and_channel(client, staff_user, three_conversations):
    quiet, _waiting, _ = three_conversations
    client.force_login(staff_user)

    assert [row["name"] for row in rows(client, view="needs_human")["rows"]] == ["Waiting"]
    assert [row["name"] for row in rows(client, view="unread")["rows"]] == ["Waiting"]
    assert [row["name"] for row in rows(client, view="ai")["rows"]] == ["Quiet"]
    assert rows(client, view="mine")["rows"] == []
    Lead.objects.filter(pk=quiet.pk).update(owner=staff_user)
    assert [row["name"] for row in rows(client, view="mine")["rows"]] == ["Quiet"]
    assert [row["name"] for row in rows(client, view="unassigned")["rows"]] == ["Waiting"]
    assert rows(client, channel="sms")["rows"] == []


def test_the_inbox_pages_with_a_cursor_and_never_repeats_a_conversation(company, staff_user):
    leads = [LeadFactory(company=company, contact__name=f"C{number}") for number in range(5)]
    for number, lead in enumerate(leads):
        say(lead, "old", minutes_ago=100 + number)
        say(lead, "new", minutes_ago=number)

    first = inbox_page(company_ids=[company.pk], user=staff_user, limit=2)
    second = inbox_page(company_ids=[company.pk], user=staff_user, limit=2, cursor=first.next_cursor)
    third = inbox_page(company_ids=[company.pk], user=staff_user, limit=2, cursor=second.next_cursor)

    names = [row.lead.contact.name for page in (first, second, third) for row in page.rows]
    assert names == ["C0", "C1", "C2", "C3", "C4"]
    assert third.next_cursor is None
    narrow = inbox_page(company_ids=[company.pk], user=staff_user, view="mine", limit=2)
    assert narrow.rows == []


def test_a_bad_inbox_request_is_a_json_400(client, staff_user):
    client.force_login(staff_user)

    for params in ({"cursor": "not-a-cursor"}, {"view": "everything"}, {"channel": "pigeon"}):
        response = client.get(reverse("admin:crm_lead_inbox_rows"), params)
        assert response.status_code == 400
        assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_the_inbox_page_renders_for_staff_and_not_for_anonymous(client, staff_user):
    assert client.get(reverse("admin:crm_lead_inbox")).status_code == 302  # to the login page
    client.force_login(staff_user)
    page = client.get(reverse("admin:crm_lead_inbox")).content.decode()
    assert 'id="inbox"' in page and "Needs a human" in page
    assert "engage/console/inbox.js" in page


def test_ops_take_over_reply_assign_and_hand_back_from_the_inbox(client, staff_user, company, three_conversations):
    _, waiting, _ = three_conversations
    client.force_login(staff_user)

    def act(operation, **data):
        return client.post(reverse("admin:crm_lead_act", args=[waiting.pk, operation]), data)

    taken = act("take_over").json()["lead"]
    assert (taken["owner_id"], taken["ai_state"]) == (staff_user.pk, f"{staff_user.full_name} has this conversation")

    reply = act("reply", body="Rahima here, calling you.").json()
    assert reply["pending"]["status"] == "Queued"
    [job] = jobs("manual_reply")
    assert reply["job_id"] == job.pk
    run_job(job)
    thread = client.get(reverse("admin:crm_lead_thread", args=[waiting.pk])).json()
    last = thread["messages"][-1]
    assert (last["body"], last["sender"], last["job_id"]) == (
        "Rahima here, calling you.", f"Replied by {staff_user.full_name} (ops)", job.pk,
    )
    assert last["status"] in ("Sent", "Delivered")

    colleague = StaffUserFactory(email="rahima@alpha.test")
    Membership.objects.create(user=colleague, company=company)
    assert act("assign", owner=str(colleague.pk)).json()["lead"]["owner_id"] == colleague.pk
    assert Event.objects.filter(type="lead.assigned", target_id=str(waiting.pk)).count() == 2

    handed = act("hand_back").json()["lead"]
    assert (handed["is_ai_paused"], handed["needs_human"], handed["ai_state"]) == (False, False, "AI is answering")


def test_the_inbox_refuses_bad_input_and_foreign_leads(client, staff_user, other_staff_user, three_conversations):
    quiet, _, foreign = three_conversations
    client.force_login(staff_user)

    empty = client.post(reverse("admin:crm_lead_act", args=[quiet.pk, "reply"]), {"body": "  "})
    assert empty.status_code == 400 and jobs("manual_reply") == []
    outsider = client.post(reverse("admin:crm_lead_act", args=[quiet.pk, "assign"]), {"owner": str(other_staff_user.pk)})
    assert outsider.status_code == 400
    assert Lead.objects.get(pk=quiet.pk).owner_id is None
    assert client.post(reverse("admin:crm_lead_act", args=[foreign.pk, "take_over"])).status_code == 404
    assert client.get(reverse("admin:crm_lead_thread", args=[foreign.pk])).status_code == 404
    assert not Lead.objects.get(pk=foreign.pk).is_ai_paused


def test_the_board_shows_stages_with_counts_and_a_card_moves_through_the_stage_service(client, staff_user, company):
    lead = LeadFactory(company=company, contact__name="Mover")
    say(lead, "interested")
    LeadFactory(company=company, pipeline=lead.pipeline, contact__name="Stayer")
    client.force_login(staff_user)

    page = client.get(reverse("admin:crm_lead_board"), {"pipeline": lead.pipeline_id}).content.decode()
    assert 'id="card-%d"' % lead.pk in page and "interested" in page
    _first_stage, second_stage = Stage.objects.filter(pipeline=lead.pipeline).order_by("order")[:2]
    assert 'data-count="2">2<' in page

    moved = client.post(reverse("admin:crm_lead_act", args=[lead.pk, "stage"]), {"stage": str(second_stage.pk)})

    assert moved.status_code == 200 and moved.json()["lead"]["stage_id"] == second_stage.pk
    assert Event.objects.filter(type="stage.changed", target_id=str(lead.pk)).exists()
    elsewhere = LeadFactory(company=company)  # another pipeline's stage is refused
    refused = client.post(reverse("admin:crm_lead_act", args=[lead.pk, "stage"]),
                          {"stage": str(elsewhere.stage_id)})
    assert refused.status_code == 400
    assert Lead.objects.get(pk=lead.pk).stage_id == second_stage.pk


def test_the_lead_page_moves_the_stage_and_says_who_answers(client, staff_user, company):
    lead = LeadFactory(company=company)
    second_stage = Stage.objects.filter(pipeline=lead.pipeline).order_by("order")[1]
    client.force_login(staff_user)
    page = client.get(reverse("admin:crm_lead_change", args=[lead.pk])).content.decode()
    assert 'id="lead-stage-form"' in page and '<span id="ai-state">AI is answering</span>' in page

    client.post(reverse("admin:crm_lead_handoff", args=[lead.pk, "stage"]), {"stage": str(second_stage.pk)})

    assert Lead.objects.get(pk=lead.pk).stage_id == second_stage.pk
    assert Event.objects.filter(type="stage.changed", target_id=str(lead.pk)).count() == 1
    client.post(reverse("admin:crm_lead_handoff", args=[lead.pk, "stage"]), {"stage": "nope"})
    assert Lead.objects.get(pk=lead.pk).stage_id == second_stage.pk


def test_the_home_page_greets_the_person_and_shows_what_waits(client, staff_user, three_conversations):
    client.force_login(staff_user)

    page = client.get(reverse("admin:index")).content.decode()

    assert f"Welcome, {staff_user.full_name}" in page
    assert 'id="tile-needs-human"' in page and "<strong>1</strong> Waiting for a person" in page
    assert reverse("admin:crm_lead_inbox") in page and reverse("admin:crm_lead_board") in page


def test_the_console_speaks_bengali_when_the_person_chooses_it(client, staff_user, three_conversations):
    client.force_login(staff_user)

    client.post(reverse("set_language"), {"language": "bn", "next": reverse("admin:crm_lead_inbox")})
    page = client.get(reverse("admin:crm_lead_inbox")).content.decode()

    assert '<html lang="bn"' in page
    assert "মানুষ দরকার" in page and "ইনবক্স" in page  # our strings (locale/bn) and the sidebar
    assert "গ্রাহক ও বুকিং" in page
    row = rows(client, view="needs_human")["rows"][0]
    assert row["ai_state"] == "একজন মানুষের অপেক্ষায়: গ্রাহক মানুষ চেয়েছেন"

    client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    assert "Needs a human" in client.get(reverse("admin:crm_lead_inbox")).content.decode()


def test_action_messages_and_descriptions_speak_bengali_to_a_person_who_chose_it(client, staff_user, three_conversations):
    quiet, _waiting, _ = three_conversations
    client.force_login(staff_user)
    client.post(reverse("set_language"), {"language": "bn", "next": "/admin/"})

    taken = client.post(reverse("admin:crm_lead_handoff", args=[quiet.pk, "take_over"]), follow=True)
    leads = client.get(reverse("admin:crm_lead_changelist")).content.decode()

    assert "কথোপকথন এখন আপনার: এই লিডের জন্য AI থামানো।" in taken.content.decode()
    assert "বাছাই করা লিডগুলো একটি ধাপে সরান…" in leads  # the list action's description
    assert "হস্তান্তর" in leads and "মানুষ চেয়েছেন" in leads  # a filter's title and choice
    assert Lead.objects.get(pk=quiet.pk).is_ai_paused


@pytest.mark.django_db
def test_a_run_page_speaks_bengali_status_and_summary_to_a_person_who_chose_it(client, company,
                                                                              staff_user):
    from engage.campaigns.runs import campaign_run_trigger
    from engage.models import Job
    from engage.tests.campaign_helpers import customer_due
    from engage.tests.test_campaign_admin import campaign_of

    customer_due(company, phone="+8801911000001", timezone="Asia/Dhaka")
    run = campaign_run_trigger(campaign=campaign_of(company), is_dry_run=True)
    run_job(Job.objects.get(pk=run.job_id))
    client.force_login(staff_user)
    client.post(reverse("set_language"), {"language": "bn", "next": "/admin/"})

    page = client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).content.decode()

    assert '<span id="run-status">সম্পন্ন</span>' in page  # CampaignRun.Status "Completed" (a model choice label)
    assert "<th>বিবেচিত</th>" in page and "এই রানের প্রত্যেক গ্রাহক, কারণসহ" in page  # the run summary
    assert "<th>Considered</th>" not in page and ">Completed<" not in page

    client.post(reverse("set_language"), {"language": "en", "next": "/admin/"})
    page = client.get(reverse("admin:engage_campaignrun_change", args=[run.pk])).content.decode()
    assert '<span id="run-status">Completed</span>' in page and "<th>Considered</th>" in page
