"""The console's home (unfold's DASHBOARD_CALLBACK calls `dashboard_context` through shokti.console) and the
breakdown page with its CSV: thin views over `reports.selectors`."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from crm.models import Company
from crm.selectors import companies_for_user
from reports import selectors
from reports.selectors import DIMENSIONS, PERIODS

PERIOD_LABELS = {"today": _("Today"), "7d": _("7 days"), "30d": _("30 days"), "90d": _("90 days")}
CARD_TITLES = {
    selectors.ENGAGEMENT: _("Engagement"), selectors.AI: _("AI"), selectors.LEADS: _("Leads"),
    selectors.WORKERS: _("Workers"), selectors.OPERATIONS: _("Operations"),
}
COMPANY_PICKER_LIMIT = 200


def _companies(user) -> list[Company]:
    return list(companies_for_user(user=user).filter(is_active=True).order_by("name", "pk")[:COMPANY_PICKER_LIMIT])


def _company_from(request: HttpRequest, companies: list[Company], *, strict: bool) -> Company | None:
    """The `company` query parameter among the user's companies, else their first. Strict (breakdowns, CSV): a
    value that is not an id is 400, a company the user is not a member of is 403 (whether it exists or not)."""
    raw = request.GET.get("company", "")
    if not raw:
        return companies[0] if companies else None
    if not raw.isdigit() or len(raw) > 18:
        if strict:
            raise ValidationError({"company": ["Not a company id."]})
        return companies[0] if companies else None
    chosen = companies_for_user(user=request.user).filter(pk=int(raw), is_active=True).first()
    if chosen is None:
        if strict:
            raise PermissionDenied("You are not a member of that company.")
        return companies[0] if companies else None
    return chosen


def _period_from(request: HttpRequest, *, strict: bool) -> str:
    period = request.GET.get("period", selectors.DEFAULT_PERIOD)
    if period not in PERIODS:
        if strict:
            raise ValidationError({"period": f"One of {', '.join(PERIODS)}."})
        return selectors.DEFAULT_PERIOD
    return period


def dashboard_context(*, request: HttpRequest) -> dict:
    """The home's dashboard: the chosen company's cards the user may see, for the chosen period."""
    companies = _companies(request.user)
    company = _company_from(request, companies, strict=False)
    period = _period_from(request, strict=False)
    if company is None:
        return {"reports": None}
    allowed = selectors.cards_for_user(user=request.user, company=company)
    cards = []
    for name in allowed:
        data = selectors.card(company=company, card=name, period=period)
        as_of = data.get("data_as_of")
        cards.append({"id": name, "title": CARD_TITLES[name], "data": data,
                      "as_of": dt.datetime.fromisoformat(as_of) if as_of else None,
                      "breakdowns": list(DIMENSIONS.get(name, {}))})
    return {"reports": {
        "company": company, "companies": companies if len(companies) > 1 else [], "period": period,
        "periods": list(PERIOD_LABELS.items()), "cards": cards,
        "chart_data": {card["id"]: card["data"] for card in cards},
        "breakdown_url": reverse("reports-breakdown"),
        "dead_letters_url": reverse("admin:engage_job_changelist") + "?status__exact=dead",
    }}


def _breakdown_request(request: HttpRequest) -> tuple[Company, str, str, str]:
    companies = _companies(request.user)
    company = _company_from(request, companies, strict=True)
    if company is None:
        raise PermissionDenied("You are not a member of any company.")
    card = request.GET.get("card", selectors.ENGAGEMENT)
    if card not in DIMENSIONS:
        raise ValidationError({"card": f"One of {', '.join(DIMENSIONS)}."})
    if card not in selectors.cards_for_user(user=request.user, company=company):
        raise PermissionDenied("Your role does not show this card.")
    dimension = request.GET.get("dimension", next(iter(DIMENSIONS[card])))
    if dimension not in DIMENSIONS[card]:
        raise ValidationError({"dimension": f"One of {', '.join(DIMENSIONS[card])} for {card}."})
    return company, card, dimension, _period_from(request, strict=True)


def _refusal(error: Exception) -> JsonResponse:
    if isinstance(error, PermissionDenied):
        return JsonResponse({"detail": str(error) or "Permission denied."}, status=403)
    return JsonResponse({"detail": "Invalid filters.", "errors": error.message_dict}, status=400)


def breakdown_view(request: HttpRequest) -> HttpResponse:
    """A card's numbers by segment: a chart and the table under it, with the CSV link."""
    try:
        company, card, dimension, period = _breakdown_request(request)
    except (PermissionDenied, ValidationError) as error:
        return _refusal(error)
    data = selectors.breakdown(company=company, card=card, dimension=dimension, period=period)
    columns = list(data["rows"][0]) if data["rows"] else ["segment"]
    from django.contrib import admin

    return render(request, "reports/breakdown.html", {
        **admin.site.each_context(request), "title": _("Breakdown"), "data": data, "company": company,
        "card": card, "card_title": CARD_TITLES[card], "dimension": dimension, "period": period,
        "dimensions": list(DIMENSIONS[card]), "periods": list(PERIOD_LABELS.items()),
        "companies": _companies(request.user), "columns": columns,
        "rows": [[row[column] for column in columns] for row in data["rows"]],
        "csv_url": reverse("reports-breakdown-csv") + f"?company={company.pk}&card={card}&dimension={dimension}"
                                                      f"&period={period}",
    })


class _Echo:
    def write(self, value: str) -> str:
        return value


def breakdown_csv(request: HttpRequest) -> HttpResponse:
    """The breakdown as CSV, streamed: one row per local day (the company's time zone) and segment value."""
    try:
        company, card, dimension, period = _breakdown_request(request)
    except (PermissionDenied, ValidationError) as error:
        return _refusal(error)
    first, last = selectors.period_days(company=company, period=period)
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        header = None
        for row in selectors.breakdown_rows(company=company, card=card, dimension=dimension, first=first,
                                            last=last, by_day=True):
            if header is None:
                header = list(row)
                yield writer.writerow(header)
            yield writer.writerow([row[column] for column in header])
        if header is None:
            yield writer.writerow(["local_date", "segment"])

    name = f"{company.slug}-{card}-{dimension}-{first:%Y%m%d}-{last:%Y%m%d}.csv"
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    response["X-Generated-At"] = dt.datetime.now(dt.UTC).isoformat()
    return response
