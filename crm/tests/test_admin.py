"""The operations console: pages render, tenants stay apart, actions call services, lists stay cheap."""

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import ApiKey, Contact, Event, Lead, Membership, Stage
from crm.permissions import MARKETING, OPERATIONS, grant
from crm.services import event_record
from crm.tests.factories import (
    BookingFactory,
    CompanyFactory,
    ContactFactory,
    CustomerFactory,
    EventFactory,
    LeadFactory,
    PipelineFactory,
    ServiceFactory,
    StaffUserFactory,
    UserFactory,
    WorkerFactory,
)
from shokti.admin import EstimatedCountPaginator

pytestmark = pytest.mark.django_db


def make_membership(company):
    return Membership.objects.create(user=StaffUserFactory(), company=company)


def make_api_key(company):
    return ApiKey.objects.create(company=company, name="website", prefix=ApiKey.generate()[0], hashed_key="x" * 64)


def make_event(company):
    return EventFactory(company=company, contact=ContactFactory(company=company))


# model name -> how to make one row of it in a company. Users have no company: see the User tests.
MAKERS = {
    "company": lambda company: company,
    "membership": make_membership,
    "apikey": make_api_key,
    "contact": lambda company: ContactFactory(company=company),
    "pipeline": lambda company: PipelineFactory(company=company),
    "stage": lambda company: PipelineFactory(company=company).stages.first(),
    "lead": lambda company: LeadFactory(company=company),
    "service": lambda company: ServiceFactory(company=company),
    "customer": lambda company: CustomerFactory(company=company),
    "worker": lambda company: WorkerFactory(company=company),
    "booking": lambda company: BookingFactory(company=company),
    "event": make_event,
}

# What the Operations group may do beyond viewing.
OPERATIONS_CAN_ADD = {"apikey", "contact", "pipeline", "stage", "lead", "service", "customer", "worker", "booking"}


def change_url(obj):
    return reverse(f"admin:crm_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.fixture
def alice_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def superuser():
    return UserFactory(email="root@shokti.test", is_staff=True, is_superuser=True)


@pytest.mark.parametrize("model_name", sorted(MAKERS))
def test_staff_sees_own_rows_only_by_list_and_by_url(alice_client, staff_user, company, other_company, model_name):
    # given: alice may also delete, so a foreign delete URL reaches the lookup rather than the permission check
    staff_user.user_permissions.add(Permission.objects.get(content_type__app_label="crm", codename=f"delete_{model_name}"))
    own = MAKERS[model_name](company)
    foreign = MAKERS[model_name](other_company)
    # when
    changelist = alice_client.get(reverse(f"admin:crm_{model_name}_changelist"))
    own_page = alice_client.get(change_url(own))
    foreign_page = alice_client.get(change_url(foreign))
    foreign_delete = alice_client.get(reverse(f"admin:crm_{model_name}_delete", args=[foreign.pk]))
    foreign_history = alice_client.get(reverse(f"admin:crm_{model_name}_history", args=[foreign.pk]))
    # then
    assert changelist.status_code == 200
    content = changelist.content.decode()
    assert change_url(own) in content
    assert change_url(foreign) not in content
    assert own_page.status_code == 200
    # The timeline is never deletable: a permission refusal, the same for own and foreign rows.
    expected_delete = 403 if model_name == "event" else 404
    assert (foreign_page.status_code, foreign_delete.status_code, foreign_history.status_code) == (
        404, expected_delete, 404,
    )


@pytest.mark.parametrize("model_name", sorted(MAKERS))
def test_operations_add_page_renders_where_the_group_may_add(alice_client, model_name):
    response = alice_client.get(reverse(f"admin:crm_{model_name}_add"))
    assert response.status_code == (200 if model_name in OPERATIONS_CAN_ADD else 403)


def test_operations_cannot_reach_users(alice_client, staff_user):
    assert alice_client.get(reverse("admin:crm_user_changelist")).status_code == 403
    assert alice_client.get(change_url(staff_user)).status_code == 403


@pytest.mark.parametrize("model_name", sorted(MAKERS))
def test_superuser_sees_every_company(client, superuser, company, other_company, model_name):
    first = MAKERS[model_name](company)
    second = MAKERS[model_name](other_company)
    client.force_login(superuser)
    content = client.get(reverse(f"admin:crm_{model_name}_changelist")).content.decode()
    assert change_url(first) in content and change_url(second) in content
    assert client.get(change_url(second)).status_code == 200
    expected_add = 403 if model_name == "event" else 200  # the timeline is read-only for everyone
    assert client.get(reverse(f"admin:crm_{model_name}_add")).status_code == expected_add


def test_superuser_user_pages_render(client, superuser, staff_user):
    client.force_login(superuser)
    assert client.get(reverse("admin:crm_user_changelist")).status_code == 200
    assert client.get(change_url(staff_user)).status_code == 200
    assert client.get(reverse("admin:crm_user_add")).status_code == 200


@pytest.mark.parametrize("model_name", [*sorted(MAKERS), "user"])
def test_anonymous_is_sent_to_login(client, model_name):
    response = client.get(reverse(f"admin:crm_{model_name}_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_groups_carry_their_permissions():
    # Other apps grant their own models' permissions in their migrations: look at crm's only.
    crm_permissions = {"content_type__app_label": "crm"}
    operations = set(
        Group.objects.get(name=OPERATIONS).permissions.filter(**crm_permissions).values_list("codename", flat=True)
    )
    marketing = set(
        Group.objects.get(name=MARKETING).permissions.filter(**crm_permissions).values_list("codename", flat=True)
    )
    assert {"view_lead", "add_lead", "change_lead", "add_apikey", "view_event", "change_company"} <= operations
    assert not any(codename.startswith("delete_") for codename in operations)
    assert not {"add_event", "change_event", "view_user", "change_user", "add_company"} & operations
    assert {"view_contact", "view_lead", "view_booking", "view_event"} <= marketing
    assert not any(codename.split("_")[0] in {"add", "change", "delete"} for codename in marketing)


def test_grant_is_idempotent_and_refuses_unknown_permissions():
    grant("Operations", "crm", ["view_lead"])
    grant("Operations", "crm", ["view_lead"])
    assert Group.objects.get(name="Operations").permissions.filter(codename="view_lead").count() == 1
    with pytest.raises(LookupError):
        grant("Operations", "crm", ["fly_lead"])


# --- Form choices, autocomplete and filters are scoped -------------------------------------


def test_lead_form_offers_only_own_rows_and_refuses_foreign_ones(alice_client, company, other_company):
    # given
    own_pipeline = PipelineFactory(company=company, name="Own sales")
    PipelineFactory(company=other_company, name="Foreign sales")
    foreign_contact = ContactFactory(company=other_company)
    # when
    page = alice_client.get(reverse("admin:crm_lead_add")).content.decode()
    response = alice_client.post(
        reverse("admin:crm_lead_add"),
        {
            "company": company.pk,
            "contact": foreign_contact.pk,
            "pipeline": own_pipeline.pk,
            "stage": own_pipeline.stages.first().pk,
            "status": "open",
            "channel": "console",
            "score": 0,
        },
    )
    # then
    assert "Beta Courses" not in page
    assert f'<option value="{company.pk}" selected>' in page
    assert response.status_code == 200
    assert "contact" in response.context["adminform"].form.errors
    assert Lead.objects.count() == 0
    assert "Foreign sales" not in page


def test_same_company_check_refuses_a_mix_of_companies(client, company, other_company):
    # given: a user of both companies picks a contact of one and a pipeline of the other
    user = StaffUserFactory(groups=[OPERATIONS])
    Membership.objects.create(user=user, company=company)
    Membership.objects.create(user=user, company=other_company)
    client.force_login(user)
    pipeline = PipelineFactory(company=company)
    foreign_contact = ContactFactory(company=other_company)
    # when
    response = client.post(
        reverse("admin:crm_lead_add"),
        {"company": company.pk, "contact": foreign_contact.pk, "pipeline": pipeline.pk,
         "stage": pipeline.stages.first().pk, "status": "open", "channel": "console", "score": 0},
    )
    # then
    assert response.status_code == 200
    assert "another company" in str(response.context["adminform"].form.errors["contact"])
    assert Lead.objects.count() == 0


def test_autocomplete_returns_only_own_rows(alice_client, company, other_company):
    ContactFactory(company=company, name="Rahim Own")
    ContactFactory(company=other_company, name="Rahim Foreign")
    response = alice_client.get(
        reverse("admin:autocomplete"),
        {"app_label": "crm", "model_name": "lead", "field_name": "contact", "term": "Rahim"},
    )
    assert response.status_code == 200
    assert [result["text"] for result in response.json()["results"]] == ["Rahim Own"]


def test_related_filters_list_only_own_companies(client, company, other_company):
    # given: a user of two companies (so the company filter shows) and a third company
    third = CompanyFactory(name="Gamma Clinic", slug="gamma")
    user = StaffUserFactory(groups=[OPERATIONS])
    Membership.objects.create(user=user, company=company)
    Membership.objects.create(user=user, company=third)
    PipelineFactory(company=company, name="Alpha pipeline")
    PipelineFactory(company=third, name="Gamma pipeline")
    PipelineFactory(company=other_company, name="Beta pipeline")
    client.force_login(user)
    # when
    response = client.get(reverse("admin:crm_lead_changelist"))
    # then
    filters = {spec.title: [choice["display"] for choice in spec.choices(response.context["cl"])]
               for spec in response.context["cl"].filter_specs}
    assert filters["company"] == ["All", "Alpha Home Services", "Gamma Clinic"]
    assert filters["pipeline"] == ["All", "Alpha Home Services: Alpha pipeline", "Gamma Clinic: Gamma pipeline"]
    assert not any("Beta" in str(choice) for choice in filters["stage"])


def test_new_row_gets_the_only_company(alice_client, company):
    response = alice_client.post(
        reverse("admin:crm_contact_add"),
        {"company": company.pk, "name": "Nusrat", "phone": "01712 345678", "email": " Nusrat@Example.TEST ",
         "locale": "bn", "timezone": "Asia/Dhaka"},
    )
    assert response.status_code == 302
    contact = Contact.objects.get()
    assert (contact.company, contact.phone, contact.email) == (company, "+8801712345678", "nusrat@example.test")


def test_contact_form_refuses_bad_and_duplicate_phones(alice_client, company):
    ContactFactory(company=company, phone="+8801712345678")
    data = {"company": company.pk, "name": "Again", "locale": "bn", "timezone": "Asia/Dhaka"}
    bad = alice_client.post(reverse("admin:crm_contact_add"), {**data, "phone": "12"})
    duplicate = alice_client.post(reverse("admin:crm_contact_add"), {**data, "phone": "01712-345678"})
    assert bad.status_code == duplicate.status_code == 200
    assert "phone" in bad.context["adminform"].form.errors
    assert duplicate.context["adminform"].form.errors
    assert Contact.objects.count() == 1


# --- Contact page ----------------------------------------------------------------------------


def test_contact_page_shows_leads_bookings_and_a_bounded_timeline(alice_client, company):
    # given
    contact = ContactFactory(company=company)
    lead = LeadFactory(company=company, contact=contact)
    booking = BookingFactory(company=company, customer=CustomerFactory(company=company, contact=contact))
    start = timezone.now() - dt.timedelta(days=100)
    for day in range(60):
        EventFactory(company=company, contact=contact, type=f"tick.{day}", occurred_at=start + dt.timedelta(days=day))
    # when
    response = alice_client.get(change_url(contact))
    # then
    assert response.status_code == 200
    assert [event.type for event in response.context["contact_events"]] == [f"tick.{day}" for day in range(59, 9, -1)]
    assert response.context["contact_leads"] == [lead]
    assert response.context["contact_bookings"] == [booking]
    content = response.content.decode()
    assert change_url(lead) in content and change_url(booking) in content
    assert content.index("tick.59") < content.index("tick.58")
    assert "tick.9<" not in content


# --- Actions call services -------------------------------------------------------------------


def test_move_to_stage_action_moves_and_records_stage_changed(alice_client, staff_user, company, other_company):
    # given
    pipeline = PipelineFactory(company=company)
    leads = [LeadFactory(company=company, pipeline=pipeline) for _ in range(2)]
    qualified = pipeline.stages.get(name="Qualified")
    foreign_lead = LeadFactory(company=other_company)
    selected = [lead.pk for lead in leads] + [foreign_lead.pk]
    url = reverse("admin:crm_lead_changelist")
    # when: the action shows its form, then applies
    form_page = alice_client.post(url, {"action": "move_to_stage", "_selected_action": selected})
    applied = alice_client.post(
        url, {"action": "move_to_stage", "_selected_action": selected, "apply": "1", "stage": qualified.pk},
        follow=True,
    )
    # then
    assert form_page.status_code == 200
    assert list(form_page.context["form"].fields["stage"].queryset) == list(pipeline.stages.order_by("order"))
    assert "Moved 2 leads to" in applied.content.decode()
    assert set(Lead.objects.filter(pk__in=[lead.pk for lead in leads]).values_list("stage", "status")) == {
        (qualified.pk, "open")
    }
    events = Event.objects.filter(type="stage.changed")
    assert events.count() == 2
    assert {(event.actor, event.source, event.payload["to"]) for event in events} == {(staff_user, "admin", "Qualified")}
    foreign_lead.refresh_from_db()
    assert foreign_lead.stage.name == "New"


def test_move_to_stage_refuses_a_stage_of_another_company(alice_client, company, other_company):
    lead = LeadFactory(company=company)
    foreign_stage = PipelineFactory(company=other_company).stages.get(name="Won")
    response = alice_client.post(
        reverse("admin:crm_lead_changelist"),
        {"action": "move_to_stage", "_selected_action": [lead.pk], "apply": "1", "stage": foreign_stage.pk},
    )
    assert response.status_code == 200
    assert "stage" in response.context["form"].errors
    lead.refresh_from_db()
    assert lead.stage.name == "New"
    assert not Event.objects.filter(type="stage.changed").exists()


def test_api_key_is_shown_once_and_only_its_hash_is_stored(alice_client, company):
    # when
    response = alice_client.post(reverse("admin:crm_apikey_add"), {"company": company.pk, "name": "zapier"}, follow=True)
    # then
    shown = [str(message) for message in response.context["messages"] if "will not be shown again" in str(message)]
    assert len(shown) == 1
    raw_key = shown[0].rsplit(" ", 1)[-1]
    api_key = ApiKey.objects.get()
    assert raw_key.startswith(f"sk_{api_key.prefix}_")
    assert api_key.hashed_key == ApiKey.hash(raw_key)
    assert raw_key not in json.dumps(list(ApiKey.objects.values()), default=str)
    assert raw_key not in alice_client.get(change_url(api_key)).content.decode()
    assert raw_key not in alice_client.get(reverse("admin:crm_apikey_changelist")).content.decode()


def test_revoke_action_revokes_own_keys_only(alice_client, company, other_company):
    own = make_api_key(company)
    foreign = make_api_key(other_company)
    response = alice_client.post(
        reverse("admin:crm_apikey_changelist"), {"action": "revoke", "_selected_action": [own.pk, foreign.pk]},
        follow=True,
    )
    assert "Revoked 1 API key." in response.content.decode()
    own.refresh_from_db()
    foreign.refresh_from_db()
    assert own.revoked_at is not None and foreign.revoked_at is None


def test_events_are_read_only_and_searchable_by_correlation_id(alice_client, company):
    event = event_record(company=company, type="message.sent", correlation_id="5b8a4a0e-8a0a-4a53-9e0e-3f1c2b3d4e5f")
    other = event_record(company=company, type="message.sent")
    page = alice_client.get(reverse("admin:crm_event_changelist"), {"q": str(event.correlation_id)})
    assert change_url(event) in page.content.decode() and change_url(other) not in page.content.decode()
    response = alice_client.post(change_url(event), {"type": "forged"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.type == "message.sent"


# --- Lists stay cheap ------------------------------------------------------------------------


@pytest.mark.parametrize("model_name", [name for name in sorted(MAKERS) if name != "company"])
def test_changelist_query_count_does_not_grow_with_rows(alice_client, company, model_name):
    url = reverse(f"admin:crm_{model_name}_changelist")
    for _ in range(3):
        MAKERS[model_name](company)
    alice_client.get(url)  # warm per-process caches (content types)
    with CaptureQueriesContext(connection) as few:
        assert alice_client.get(url).status_code == 200
    for _ in range(27):
        MAKERS[model_name](company)
    with CaptureQueriesContext(connection) as many:
        assert alice_client.get(url).status_code == 200
    assert len(many) == len(few), [query["sql"] for query in many.captured_queries]


def test_user_and_company_changelists_query_count_does_not_grow(client, superuser):
    client.force_login(superuser)
    for model_name, make in [("user", lambda: StaffUserFactory()), ("company", lambda: CompanyFactory())]:
        url = reverse(f"admin:crm_{model_name}_changelist")
        make()
        client.get(url)
        with CaptureQueriesContext(connection) as few:
            client.get(url)
        for _ in range(20):
            make()
        with CaptureQueriesContext(connection) as many:
            client.get(url)
        assert len(many) == len(few), model_name


def _count_queries(captured):
    return [query["sql"] for query in captured.captured_queries if "COUNT(" in query["sql"].upper()]


def test_big_filtered_list_counts_are_bounded_or_time_boxed(alice_client, company, settings):
    # given: more rows than the exact-count limit
    settings.ADMIN_EXACT_COUNT_LIMIT = 5
    for _ in range(12):
        ContactFactory(company=company)
    # when
    with CaptureQueriesContext(connection) as captured:
        response = alice_client.get(reverse("admin:crm_contact_changelist"))
    # then: one count over LIMIT 6, then one count under a statement timeout, and no other
    assert response.context["cl"].result_count == 12
    sqls = [query["sql"] for query in captured.captured_queries]
    counts = _count_queries(captured)
    assert len(counts) == 2
    assert "LIMIT 6" in counts[0]
    assert any(sql.startswith("EXPLAIN (FORMAT JSON)") for sql in sqls)
    timeout_at = next(index for index, sql in enumerate(sqls) if "set_config('statement_timeout'" in sql)
    assert sqls.index(counts[1]) == timeout_at + 1


def test_far_bigger_filtered_list_shows_the_planner_estimate_without_counting(alice_client, company, settings):
    settings.ADMIN_EXACT_COUNT_LIMIT = 1  # 12 rows are far past it: no exact count at all
    for _ in range(12):
        ContactFactory(company=company)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contact")
    with CaptureQueriesContext(connection) as captured:
        response = alice_client.get(reverse("admin:crm_contact_changelist"))
    counts = _count_queries(captured)
    assert len(counts) == 1 and "LIMIT 2" in counts[0]
    assert not any("statement_timeout" in query["sql"] for query in captured.captured_queries)
    assert response.context["cl"].result_count == 12  # fresh statistics: the estimate is exact here


def test_date_hierarchy_lists_years_months_and_days_from_the_range(alice_client, company):
    # given: bookings in March 2024, in January 2026 and on the 1st and 3rd of November 2026 only
    for moment in ["2024-03-10T10:00:00Z", "2026-01-05T10:00:00Z", "2026-11-01T10:00:00Z", "2026-11-03T09:00:00Z"]:
        BookingFactory(company=company, scheduled_at=dt.datetime.fromisoformat(moment))
    url = reverse("admin:crm_booking_changelist")
    # when
    with CaptureQueriesContext(connection) as captured:
        years = alice_client.get(url)
    months = alice_client.get(url, {"scheduled_at__year": "2026"})
    with CaptureQueriesContext(connection) as captured_days:
        days = alice_client.get(url, {"scheduled_at__year": "2026", "scheduled_at__month": "11"})
    # then: every year between the first and the last, without a DISTINCT over the rows
    assert [choice["title"] for choice in _hierarchy(years)] == [
        "2024", "2025", "2026",
    ]
    assert not any("DISTINCT" in query["sql"] and "crm_booking" in query["sql"] for query in captured.captured_queries)
    assert [choice["title"] for choice in _hierarchy(months)] == [f"{month} 2026" for month in [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November"]]
    # ... and the days of a month from its first to its last booking, without one either
    assert [choice["title"] for choice in _hierarchy(days)] == ["November 1", "November 2", "November 3"]
    assert not any("DISTINCT" in query["sql"] and "crm_booking" in query["sql"]
                   for query in captured_days.captured_queries)


def _hierarchy(response):
    from django.contrib.admin.templatetags.admin_list import date_hierarchy

    return date_hierarchy(response.context["cl"])["choices"]


def test_big_filtered_list_falls_back_to_the_planner_estimate(alice_client, company, settings):
    settings.ADMIN_EXACT_COUNT_LIMIT = 5
    settings.ADMIN_COUNT_TIMEOUT_MS = 0  # estimates only
    for _ in range(12):
        ContactFactory(company=company)
    with CaptureQueriesContext(connection) as captured:
        response = alice_client.get(reverse("admin:crm_contact_changelist"))
    counts = _count_queries(captured)
    assert len(counts) == 1 and "LIMIT 6" in counts[0]
    assert any(query["sql"].startswith("EXPLAIN (FORMAT JSON)") for query in captured.captured_queries)
    assert response.context["cl"].result_count >= 6


def test_big_unfiltered_table_uses_the_catalogue_estimate(client, superuser, company, settings):
    settings.ADMIN_EXACT_COUNT_LIMIT = 5
    for _ in range(12):
        ContactFactory(company=company)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE crm_contact")
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("admin:crm_contact_changelist"))
    counts = _count_queries(captured)
    assert len(counts) == 1 and "LIMIT 6" in counts[0]
    assert any("reltuples" in query["sql"] for query in captured.captured_queries)
    assert response.context["cl"].result_count == 12


def test_time_boxed_count_leaves_the_callers_timeout_alone(company, settings):
    settings.ADMIN_EXACT_COUNT_LIMIT = 1
    for _ in range(3):
        ContactFactory(company=company)
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        before = cursor.fetchone()[0]
    paginator = EstimatedCountPaginator(Contact.objects.filter(company=company), 100)
    assert paginator.count == 3
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == before


def test_stage_inline_saves_with_its_pipeline(alice_client, company):
    response = alice_client.post(
        reverse("admin:crm_pipeline_add"),
        {
            "company": company.pk, "name": "Courses",
            "stages-TOTAL_FORMS": "2", "stages-INITIAL_FORMS": "0", "stages-MIN_NUM_FORMS": "0",
            "stages-MAX_NUM_FORMS": "1000",
            "stages-0-order": "1", "stages-0-name": "New", "stages-0-kind": "open",
            "stages-1-order": "2", "stages-1-name": "Paid", "stages-1-kind": "won",
        },
    )
    assert response.status_code == 302
    assert list(Stage.objects.filter(pipeline__company=company).values_list("name", flat=True)) == ["New", "Paid"]


def test_the_contact_timeline_reads_as_sentences_with_links(alice_client, staff_user, company):
    from crm.services import event_record

    contact = ContactFactory(company=company)
    lead = LeadFactory(company=company, contact=contact)
    event_record(company=company, type="stage.changed", contact=contact, target=lead, actor=staff_user,
                 payload={"from": "New", "to": "Qualified", "lead_id": lead.pk}, source="admin")
    event_record(company=company, type="something.odd", contact=contact, payload={"colour": "blue", "nested": {"a": 1}})

    content = alice_client.get(change_url(contact)).content.decode()

    assert f'<a href="{change_url(lead)}">Moved from New to Qualified by {staff_user.full_name}</a>' in content
    assert "Something: odd (colour: blue)" in content
    timeline = content[content.index('id="contact-timeline"'):content.index("</fieldset>", content.index('id="contact-timeline"'))]
    assert "{&#x27;" not in timeline and "{'" not in timeline  # no Python dicts
