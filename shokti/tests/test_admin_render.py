"""A changelist page's rendering: unfold's per-row work done once per page, the same HTML out."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from unfold import admin as unfold_admin
from unfold import utils as unfold_utils
from unfold.templatetags import unfold_list

from crm.tests.factories import ContactFactory
from shokti.admin import _result_headers_once_per_page

pytestmark = pytest.mark.django_db


def headers_built(client, monkeypatch) -> int:
    """How many times one changelist request built its column headers."""
    built = []
    uncached = unfold_list.result_headers.uncached

    def counting(cl):
        built.append(cl)
        return uncached(cl)

    monkeypatch.setattr(unfold_list, "result_headers", _result_headers_once_per_page(counting))
    response = client.get(reverse("admin:crm_contact_changelist"))
    assert response.status_code == 200
    return len(built)


def test_a_changelist_builds_its_column_headers_once_whatever_the_rows(client, staff_user, company, monkeypatch):
    client.force_login(staff_user)
    ContactFactory(company=company)
    once = headers_built(client, monkeypatch)
    ContactFactory.create_batch(4, company=company)

    assert headers_built(client, monkeypatch) == once == 1


def test_the_row_checkbox_and_yes_no_cells_are_unfolds_own_html(client, staff_user, company):
    client.force_login(staff_user)
    contact = ContactFactory(company=company, is_sms_consented=True, is_email_consented=False)

    page = client.get(reverse("admin:crm_contact_changelist")).content.decode()

    assert unfold_admin.checkbox.render(ACTION_CHECKBOX_NAME, str(contact.pk)) in page
    assert unfold_utils._boolean_icon.uncached(True) in page and unfold_utils._boolean_icon.uncached(False) in page
    assert unfold_utils._boolean_icon(True) == unfold_utils._boolean_icon.uncached(True)
    assert unfold_utils._boolean_icon("") == unfold_utils._boolean_icon.uncached(None)


def test_the_company_column_shows_only_to_people_who_see_more_than_one_company(client, staff_user, company):
    from crm.tests.factories import StaffUserFactory

    ContactFactory(company=company)
    client.force_login(staff_user)
    assert 'class="field-company' not in client.get(reverse("admin:crm_contact_changelist")).content.decode()

    client.force_login(StaffUserFactory(email="root@alpha.test", is_superuser=True))
    assert 'class="field-company' in client.get(reverse("admin:crm_contact_changelist")).content.decode()
