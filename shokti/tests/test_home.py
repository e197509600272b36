"""`/` (the landing page "View site" opens) and `/favicon.ico`, on every page of the admin."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from crm import demo
from crm.tests.factories import CompanyFactory, StaffUserFactory


@pytest.mark.django_db
def test_the_landing_page_points_to_the_console_the_api_docs_and_health(client):
    response = client.get("/")

    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    for href in ('href="/admin/"', 'href="/api/docs/"', 'href="/health"', 'href="/favicon.ico"'):
        assert href in page
    # styled by the project's own static file, nothing from a CDN
    assert 'href="/static/shokti/home.css"' in page and finders.find("shokti/home.css")
    assert "http://" not in page and "https://" not in page and "//" not in page.replace("<!doctype", "")
    # no demo: no demo logins
    assert demo.ADMIN_EMAIL not in page


@pytest.mark.django_db
def test_with_the_demo_it_says_what_to_look_at_first(client):
    CompanyFactory(slug=demo.HOME_SERVICES_SLUG)

    page = client.get("/").content.decode()

    assert "what to look at first" in page
    assert demo.ADMIN_EMAIL in page and demo.OPERATIONS_EMAIL in page and demo.MARKETING_EMAIL in page
    assert "Win-back: 4 weeks" in page


@pytest.mark.django_db
def test_only_get_answers(client):
    assert client.post("/").status_code == 405


@pytest.mark.django_db
def test_the_favicon_is_served_at_the_root(client):
    response = client.get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    icon = b"".join(response.streaming_content)
    assert icon[:4] == b"\x00\x00\x01\x00" and int.from_bytes(icon[4:6], "little") == 2  # an ICO with two sizes
    assert "max-age" in response["Cache-Control"]


@pytest.mark.django_db
def test_admin_pages_link_the_favicon_and_view_site_opens_the_landing_page(client):
    favicon = '<link rel="icon" href="/favicon.ico" type="image/x-icon" >'  # unfold's SITE_FAVICONS
    login = client.get(reverse("admin:login")).content.decode()
    assert favicon in login

    client.force_login(StaffUserFactory(is_superuser=True))
    index = client.get(reverse("admin:index")).content.decode()
    assert favicon in index
    assert re.search(r'<a href="/"[^>]*>\s*View site\s*</a>', index)
    assert re.search(r"<title>\s*Operations console \| Shokti</title>", index)  # the title block kept


@pytest.mark.django_db
def test_signing_in_at_the_login_page_itself_lands_on_the_console(client, staff_user):
    # unfold's login form sends no `next` when the page was opened directly
    response = client.post("/admin/login/", {"username": staff_user.email, "password": "pass-word-123"})

    assert response.status_code == 302 and response["Location"] == "/admin/"
