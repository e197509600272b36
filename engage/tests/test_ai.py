"""The AI client against the local fake OpenAI server, through the real openai SDK."""

import json
import threading
import time

import pytest

from crm.tests.factories import ContactFactory, LeadFactory
from engage.ai.client import GenerationRequest, ai_generate, ai_generate_many
from engage.models import AIConfig, AISession, BannedPhrase
from shokti.testing.fake_openai import FakeFailure

pytestmark = pytest.mark.django_db

BENGALI_ANSWER = "আমাদের ডিজিটাল মার্কেটিং কোর্স তিন মাসের।"
BENGALI_FALLBACK = "ধন্যবাদ, আপনার বার্তা পেয়েছি। আমাদের একজন প্রতিনিধি শীঘ্রই আপনার সাথে যোগাযোগ করবেন।"


def generate(company, **overrides):
    arguments = {
        "company": company,
        "agent_type": "sales",
        "purpose": "reply",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "কোর্সটি কত দিনের?"}],
        "message_type": "reply",
        "locale": "bn",
        "channel": "whatsapp_cloud",
    }
    arguments.update(overrides)
    return ai_generate(**arguments)


def test_the_sdk_sends_the_company_settings_and_the_session_records_tokens(fake_openai, company):
    # given
    AIConfig.objects.create(company=company, model="gpt-test", temperature=0.2, max_tokens=123)
    fake_openai.reply(BENGALI_ANSWER)
    lead = LeadFactory(company=company)

    # when
    result = generate(company, contact=lead.contact, lead=lead)

    # then
    request = fake_openai.last_request
    assert request["_path"] == "/v1/chat/completions"
    assert request["_headers"]["authorization"] == "Bearer test"
    assert request["model"] == "gpt-test"
    assert request["temperature"] == 0.2
    assert request["max_tokens"] == 123
    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "কোর্সটি কত দিনের?"},
    ]
    assert result.text == BENGALI_ANSWER
    assert result.outcome == AISession.Outcome.OK
    session = AISession.objects.get()
    assert session == result.session
    assert (session.tokens_in, session.tokens_out) == (5, 6)
    assert session.model == "gpt-test"
    assert session.prompt_messages == request["messages"]
    assert (session.lead, session.contact, session.company) == (lead, lead.contact, company)
    assert session.final_text == BENGALI_ANSWER
    assert session.latency_ms >= 0


def test_defaults_are_gpt_4o_mini_temperature_0_7_and_500_tokens(fake_openai, company):
    fake_openai.reply(BENGALI_ANSWER)

    generate(company)

    request = fake_openai.last_request
    assert (request["model"], request["temperature"], request["max_tokens"]) == ("gpt-4o-mini", 0.7, 500)
    assert AIConfig.objects.get(company=company).model == "gpt-4o-mini"


def test_a_transient_500_is_retried_by_the_sdk(fake_openai, company):
    fake_openai.fail(status=500, times=2)
    fake_openai.reply(BENGALI_ANSWER)

    result = generate(company)

    assert result.outcome == AISession.Outcome.OK
    assert result.text == BENGALI_ANSWER
    assert len(fake_openai.requests) == 3
    assert [r["_headers"].get("x-stainless-retry-count") for r in fake_openai.requests] == ["0", "1", "2"]


def test_a_rate_limit_is_retried(fake_openai, company):
    fake_openai.queue(FakeFailure(429), BENGALI_ANSWER)

    result = generate(company)

    assert result.outcome == AISession.Outcome.OK
    assert len(fake_openai.requests) == 2


def test_failure_after_the_retries_falls_back_and_says_why(fake_openai, company):
    fake_openai.fail(status=500, times=3)

    result = generate(company)

    assert len(fake_openai.requests) == 3  # the first call and two retries
    assert result.outcome == AISession.Outcome.ERROR
    assert result.text == BENGALI_FALLBACK
    session = AISession.objects.get()
    assert session.outcome == "error"
    assert "InternalServerError" in session.error
    assert session.final_text == BENGALI_FALLBACK
    assert session.response_text == ""


def test_a_slow_model_times_out_and_falls_back(fake_openai, company, settings):
    settings.OPENAI_TIMEOUT_SECONDS = 0.3
    settings.OPENAI_MAX_RETRIES = 0
    fake_openai.delay = 1.5
    fake_openai.reply(BENGALI_ANSWER)

    result = generate(company)

    assert result.outcome == AISession.Outcome.ERROR
    assert "APITimeoutError" in result.reason
    assert result.text == BENGALI_FALLBACK
    assert 300 <= result.session.latency_ms < 1500


def test_an_answer_the_safety_filter_rejects_is_replaced_by_the_fallback(fake_openai, company):
    BannedPhrase.objects.create(company=company, phrase="গ্যারান্টি")
    rejected = "আমাদের কোর্সে চাকরির গ্যারান্টি আছে।"
    fake_openai.reply(rejected)

    result = generate(company)

    assert result.outcome == AISession.Outcome.REJECTED
    assert result.text == BENGALI_FALLBACK
    # every reason is reported, not the first only: the banned phrase and the made-up guarantee
    assert result.reason.startswith("Contains banned phrase: গ্যারান্টি; A guarantee or refund promise")
    session = AISession.objects.get()
    assert (session.response_text, session.final_text) == (rejected, BENGALI_FALLBACK)
    assert [reason["code"] for reason in session.safety["reasons"]] == ["banned_phrase", "unapproved_guarantee"]
    assert session.safety["moderation"]["is_called"] and not session.safety["moderation"]["flagged"]


def test_a_company_that_switched_the_safety_filter_off_gets_the_answer_unchecked(fake_openai, company):
    # given a banned phrase, and the company's engagement policy with the filter off
    from engage.ai.client import SAFETY_FILTER_OFF_REASON
    from engage.policy.services import policy_get_or_create

    BannedPhrase.objects.create(company=company, phrase="গ্যারান্টি")
    policy = policy_get_or_create(company=company)
    policy.is_safety_filter_enabled = False
    policy.save()
    answer = "আমাদের কোর্সে চাকরির গ্যারান্টি আছে।"
    fake_openai.reply(answer)

    # when the model answers with the banned phrase
    result = generate(company)

    # then it goes out as written, and the session says why it was not checked
    assert (result.outcome, result.text, result.reason) == (AISession.Outcome.OK, answer, SAFETY_FILTER_OFF_REASON)
    assert AISession.objects.get().error == SAFETY_FILTER_OFF_REASON


def test_ai_generation_switched_off_calls_no_model_and_records_the_fallback(fake_openai, company):
    from engage.ai.client import AI_GENERATION_OFF_REASON
    from engage.policy.services import policy_get_or_create

    policy = policy_get_or_create(company=company)
    policy.is_ai_generation_enabled = False
    policy.save()
    fake_openai.reply(BENGALI_ANSWER)

    result = generate(company)

    assert fake_openai.requests == []
    assert (result.outcome, result.text, result.reason) == (AISession.Outcome.FALLBACK, BENGALI_FALLBACK, AI_GENERATION_OFF_REASON)
    assert (AISession.objects.get().outcome, AISession.objects.get().final_text) == ("fallback", BENGALI_FALLBACK)


def test_a_request_with_a_link_is_judged_and_recorded_with_the_link_in(fake_openai, company):
    link = "https://app.sheba.xyz/book?token=abc"
    fake_openai.reply(f"{BENGALI_ANSWER} এখানে বুক করুন: [BOOKING_LINK]")

    result = generate(company, link=link, channel="sms")

    assert (result.outcome, result.text) == (AISession.Outcome.OK, f"{BENGALI_ANSWER} এখানে বুক করুন: {link}")
    session = AISession.objects.get()
    assert session.response_text.endswith("[BOOKING_LINK]") and session.final_text == result.text


def test_when_the_fallback_fails_the_filter_too_nothing_is_sendable_and_both_reasons_are_kept(fake_openai, company):
    from engage.ai.client import FALLBACK_REJECTED_REASON
    from engage.models import FallbackText

    # given a company fallback that names another person's number, and an answer in the wrong script
    FallbackText.objects.create(company=company, message_type="reply", locale="bn", body="করিমকে ০১৮১৯১২৩৪৫৬ নম্বরে কল করুন।")
    fake_openai.reply("Our course takes three months.")

    result = generate(company)

    assert (result.outcome, result.is_sendable) == (AISession.Outcome.REJECTED, False)
    assert result.reason == (
        f"Not mostly Bengali: 0% of letters are Bengali. | {FALLBACK_REJECTED_REASON}: "
        "Mentions another person's phone number: ০১৮১৯১২৩৪৫৬"
    )
    assert AISession.objects.get().error == result.reason


def test_an_answer_in_the_wrong_script_is_rejected_for_a_bengali_contact(fake_openai, company):
    fake_openai.reply("Our course takes three months.")

    result = generate(company)

    assert result.outcome == AISession.Outcome.REJECTED
    assert result.reason.startswith("Not mostly Bengali")


def test_english_fallback_for_an_english_contact(fake_openai, company):
    fake_openai.fail(status=500, times=3)

    result = generate(company, locale="en")

    assert result.text == "Thank you, we have received your message. One of our team will get back to you shortly."


def test_without_an_api_key_no_call_is_made_and_the_fallback_is_recorded(fake_openai, company, settings):
    settings.OPENAI_API_KEY = ""

    result = generate(company)

    assert fake_openai.requests == []
    assert result.outcome == AISession.Outcome.FALLBACK
    assert result.reason == "no API key configured"
    assert result.text == BENGALI_FALLBACK
    assert AISession.objects.get().error == "no API key configured"


def test_a_company_may_bring_its_own_endpoint_and_key(fake_openai, company, settings):
    settings.OPENAI_API_KEY = ""
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens there
    AIConfig.objects.create(company=company, api_key="company-key", api_base_url=fake_openai.base_url)
    fake_openai.reply(BENGALI_ANSWER)

    result = generate(company)

    assert result.outcome == AISession.Outcome.OK
    assert fake_openai.last_request["_headers"]["authorization"] == "Bearer company-key"


def test_internal_text_skips_the_safety_filter_and_has_no_fallback(fake_openai, company):
    fake_openai.fail(status=500, times=3)

    result = generate(company, message_type=None, purpose="summary")

    assert (result.outcome, result.text) == ("error", "")


def test_bulk_generation_runs_concurrently_with_a_bounded_pool_and_keeps_the_order(fake_openai, company):
    # given: the fake answers each request with its user text, and counts calls in flight
    lock = threading.Lock()
    in_flight = {"now": 0, "max": 0}

    def answer(request):
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        threading.Event().wait(0.2)
        with lock:
            in_flight["now"] -= 1
        return "উত্তর " + request["messages"][-1]["content"]

    fake_openai.respond_with(answer)
    contacts = [ContactFactory(company=company) for _ in range(7)]
    requests = [
        GenerationRequest(
            company=company, agent_type="smartengage", purpose="reminder", message_type="reminder",
            messages=[{"role": "user", "content": f"গ্রাহক {index}"}], contact=contact, channel="sms",
        )
        for index, contact in enumerate(contacts)
    ]

    # when
    results = ai_generate_many(requests=requests, max_workers=3)

    # then
    assert [result.text for result in results] == [f"উত্তর গ্রাহক {index}" for index in range(7)]
    assert in_flight["max"] == 3
    assert AISession.objects.filter(company=company, purpose="reminder", outcome="ok").count() == 7
    assert {session.contact_id for session in AISession.objects.all()} == {contact.pk for contact in contacts}
    assert sorted(session.prompt_messages[-1]["content"] for session in AISession.objects.all()) == [
        f"গ্রাহক {index}" for index in range(7)
    ]


def test_session_json_goes_to_the_database_unescaped():
    # Bengali as \\uXXXX escapes is 4-5 times longer, and a bulk INSERT escapes each backslash again.
    field = AISession._meta.get_field("prompt_messages")
    sent = json.dumps([{"role": "user", "content": "গ্রাহক \"রহিম\""}], cls=field.encoder)
    assert "গ্রাহক" in sent and "\\u" not in sent
    assert json.loads(sent) == [{"role": "user", "content": 'গ্রাহক "রহিম"'}]
    assert AISession._meta.get_field("safety").encoder is field.encoder


# --- Admin ------------------------------------------------------------------------------------------


def test_the_api_key_is_write_only_in_the_admin(client, staff_user, company):
    from django.urls import reverse

    config = AIConfig.objects.create(company=company, api_key="sk-secret-company-key")
    client.force_login(staff_user)
    url = reverse("admin:engage_aiconfig_change", args=[config.pk])

    page = client.get(url).content.decode()
    assert "sk-secret-company-key" not in page

    form = {
        "company": company.pk, "model": "gpt-4o-mini", "temperature": "0.5", "max_tokens": "300",
        "system_prompt": "Be kind.", "is_reply_enabled": "on", "api_base_url": "", "api_key": "",
        "followup_after_hours": "12", "followup_cadence_hours": "24", "followup_max": "2",
        "handoff_keywords": '["human"]', "sms_max_segments": "2", "required_link": "",
        "allowed_contact_details": "[]",
    }
    assert client.post(url, form).status_code == 302
    config.refresh_from_db()
    assert (config.api_key, config.temperature, config.followup_after_hours) == ("sk-secret-company-key", 0.5, 12)
    client.post(url, {**form, "api_key": "-"})
    config.refresh_from_db()
    assert config.api_key == ""


def test_ai_sessions_are_read_only_and_scoped(client, staff_user, other_staff_user, company, settings):
    from django.urls import reverse

    settings.OPENAI_API_KEY = ""
    session = generate(company).session
    url = reverse("admin:engage_aisession_change", args=[session.pk])
    client.force_login(staff_user)

    listing = client.get(reverse("admin:engage_aisession_changelist")).content.decode()
    assert url in listing
    detail = client.get(url)
    assert detail.status_code == 200 and "no API key configured" in detail.content.decode()
    assert client.get(reverse("admin:engage_aisession_add")).status_code == 403
    client.force_login(other_staff_user)
    assert client.get(url).status_code == 404
    assert url not in client.get(reverse("admin:engage_aisession_changelist")).content.decode()


def test_campaign_generation_starts_on_the_bulk_pool_and_returns_before_the_answers(fake_openai, company, settings):
    # given: a bulk bound of 3, a model that takes 0.3 s and counts calls in flight
    from engage.ai.client import _sdk_client, ai_generate_start

    settings.AI_BULK_MAX_CONCURRENCY = 3
    lock = threading.Lock()
    in_flight = {"now": 0, "max": 0}

    def answer(request):
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        threading.Event().wait(0.3)
        with lock:
            in_flight["now"] -= 1
        return "উত্তর " + request["messages"][-1]["content"]

    fake_openai.respond_with(answer)
    requests = [
        GenerationRequest(
            company=company, agent_type="smartengage", purpose="reminder", message_type="reminder",
            messages=[{"role": "user", "content": f"গ্রাহক {index}"}], channel="sms",
        )
        for index in range(7)
    ]

    # when
    started = ai_generate_start(requests=requests)
    is_waiting = not all(future.done() for future in started._futures)
    results = started.results()

    # then the start returned while the calls were still in flight; at most 3 at once; order kept
    assert is_waiting
    assert [result.text for result in results] == [f"উত্তর গ্রাহক {index}" for index in range(7)]
    assert in_flight["max"] == 3
    assert AISession.objects.filter(company=company, outcome="ok").count() == 7
    # the HTTP pool keeps as many connections alive as calls may be in flight (the SDK keeps 100)
    client = _sdk_client("http://127.0.0.1:1/v1", "key", 5.0, 0, 300)
    pool = client._client._transport._pool
    assert (pool._max_connections, pool._max_keepalive_connections) == (300, 300)


def test_threads_starting_together_share_one_sdk_client():
    # A campaign's first batch: many threads ask for the client of a new endpoint at once.
    import threading

    from engage.ai.client import _sdk_client

    clients, start = [], threading.Barrier(32)

    def ask():
        start.wait()
        clients.append(_sdk_client("http://127.0.0.1:2/v1", "cold-start-key", 5.0, 0, 100))

    threads = [threading.Thread(target=ask) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 32 and len({id(client) for client in clients}) == 1


# --- moderation endpoint, tone judge, time budget (issue 15) ------------------------------------------


def test_the_moderation_endpoint_judges_the_models_text_and_a_flag_sends_the_fallback(fake_openai, company):
    fake_openai.reply(BENGALI_ANSWER)
    fake_openai.flag("harassment", "violence")

    result = generate(company)

    assert (result.outcome, result.text) == (AISession.Outcome.REJECTED, BENGALI_FALLBACK)
    assert fake_openai.moderation_requests[0]["input"] == BENGALI_ANSWER
    assert fake_openai.moderation_requests[0]["model"] == "omni-moderation-latest"
    session = AISession.objects.get()
    assert [reason["code"] for reason in session.safety["reasons"]] == ["moderation_flagged"]
    assert session.safety["moderation"]["categories"] == ["harassment", "violence"]
    assert "harassment" in session.error


def test_a_moderation_endpoint_that_fails_sends_the_fallback_and_says_why(fake_openai, company):
    fake_openai.reply(BENGALI_ANSWER)
    fake_openai.moderation_failure = FakeFailure(500)

    result = generate(company)

    assert (result.outcome, result.text) == (AISession.Outcome.REJECTED, BENGALI_FALLBACK)
    assert AISession.objects.get().safety["reasons"][0]["code"] == "moderation_unavailable"


def test_moderation_off_in_the_config_is_not_called(fake_openai, company):
    AIConfig.objects.create(company=company, is_moderation_enabled=False)
    fake_openai.reply(BENGALI_ANSWER)

    assert generate(company).outcome == AISession.Outcome.OK
    assert fake_openai.moderation_requests == []


def test_the_tone_judge_grades_reminders_and_a_failed_grade_sends_the_fallback(fake_openai, company):
    AIConfig.objects.create(company=company, is_tone_judge_enabled=True)
    fake_openai.reply(BENGALI_ANSWER)
    fake_openai.tone_verdict = {"polite": True, "respectful_address": False, "no_pressure": True, "no_blame": True,
                                "explanation": "Uses তুমি."}

    result = generate(company, message_type="reminder", purpose="reminder", agent_type="smartengage")

    assert result.outcome == AISession.Outcome.REJECTED
    (judged,) = fake_openai.judge_requests
    assert judged["messages"][1]["content"] == BENGALI_ANSWER and judged["response_format"] == {"type": "json_object"}
    session = AISession.objects.get()
    assert session.safety["tone"]["grades"]["respectful_address"] is False
    assert session.safety["reasons"] == [{"code": "tone_judge",
                                          "message": "The tone judge found the text not respectful address (Uses তুমি.)."}]
    # replies are not judged for tone
    generate(company)
    assert len(fake_openai.judge_requests) == 1


def test_a_tone_judge_that_fails_is_recorded_and_does_not_reject(fake_openai, company):
    AIConfig.objects.create(company=company, is_tone_judge_enabled=True)
    fake_openai.reply(BENGALI_ANSWER)
    fake_openai.tone_verdict = FakeFailure(500)

    result = generate(company, message_type="coaching", purpose="coaching", agent_type="coachnova")

    assert result.outcome == AISession.Outcome.OK
    assert "InternalServerError" in AISession.objects.get().safety["tone"]["error"]


def test_a_hanging_model_holds_a_worker_no_longer_than_the_time_budget(fake_openai, company, settings):
    # given retries that would each wait their full timeout (3 x 2 s), and a budget of 1 s
    settings.OPENAI_TIMEOUT_SECONDS = 2.0
    settings.OPENAI_MAX_RETRIES = 2
    AIConfig.objects.create(company=company, time_budget_seconds=1)
    fake_openai.delay = 5
    started = time.monotonic()

    result = generate(company)

    elapsed = time.monotonic() - started
    assert elapsed < 1.9, elapsed
    assert (result.outcome, result.text) == (AISession.Outcome.ERROR, BENGALI_FALLBACK)
    assert result.reason.startswith("Time budget of 1 s spent after 1 attempt(s)")
    budget = AISession.objects.get().safety["budget"]
    assert budget["is_spent"] is True and budget["seconds"] == 1.0 and 900 <= budget["spent_ms"] < 1900


def test_the_default_budget_is_the_setting(fake_openai, company, settings):
    settings.AI_TIME_BUDGET_SECONDS = 0.6
    settings.OPENAI_MAX_RETRIES = 5
    fake_openai.delay = 3
    started = time.monotonic()

    result = generate(company)

    assert time.monotonic() - started < 1.4
    assert "Time budget of 0.6 s spent" in result.reason


def test_retries_still_happen_inside_the_budget(fake_openai, company):
    fake_openai.fail(status=503, times=2)
    fake_openai.reply(BENGALI_ANSWER)

    result = generate(company)

    assert result.outcome == AISession.Outcome.OK
    assert AISession.objects.get().safety["budget"]["attempts"] == 3


def test_a_400_is_not_retried(fake_openai, company):
    fake_openai.queue(FakeFailure(400, "bad request"), BENGALI_ANSWER)

    result = generate(company)

    assert result.outcome == AISession.Outcome.ERROR and len(fake_openai.requests) == 1
