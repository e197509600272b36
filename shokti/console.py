"""The operations console's navigation and home page (django-unfold's SIDEBAR and DASHBOARD callbacks).

Organised by the jobs people do, not by Django app: Inbox, Pipeline, Customers & bookings, Workers,
Campaigns, Templates, Reports, Settings, System. An entry shows only to a user who may view its model.
Links name admin URLs, so the kernel imports no app of the project.
"""

from __future__ import annotations

import functools
from typing import Any

from django.urls import NoReverseMatch, get_script_prefix, reverse
from django.utils.translation import gettext as _


@functools.lru_cache(maxsize=512)
def _reverse_or_blank(url_name: str, script_prefix: str) -> str:
    try:
        return reverse(url_name)
    except NoReverseMatch:  # a model left unregistered in this deployment
        return ""


def _entry(title, icon: str, url_name: str, permission: str) -> dict[str, Any]:
    return {"title": title, "icon": icon, "link": _reverse_or_blank(url_name, get_script_prefix()),
            "permission": permission}


def _model(title, icon: str, label: str) -> dict[str, Any]:
    app_label, model_name = label.split(".")
    return _entry(title, icon, f"admin:{app_label}_{model_name}_changelist", f"{app_label}.view_{model_name}")


def sidebar_navigation(request) -> list[dict[str, Any]]:
    """The sidebar for the person asking: the entries they may open, as plain links.

    unfold calls this on every page; given callables, it wrapped each link and permission in a new lazy
    class per page (a third of a page's fixed cost): the links are reversed once per process instead, and
    the entries the person may not open are left out here."""
    user = request.user
    is_staff = user.is_active and user.is_staff
    groups = []
    for group in sidebar_entries():
        items = [
            {"title": item["title"], "icon": item["icon"], "link": item["link"]}
            for item in group["items"]
            if item["link"] and is_staff and user.has_perm(item["permission"])
        ]
        if items:
            groups.append({**group, "items": items})
    return groups


def sidebar_entries() -> list[dict[str, Any]]:
    """Every entry of the sidebar, one group per job (titles in the active language, links reversed)."""
    return [
        {"title": _("Today"), "items": [
            _entry(_("Inbox"), "inbox", "admin:crm_lead_inbox", "crm.view_lead"),
            _entry(_("Home"), "dashboard", "admin:index", "crm.view_lead"),
        ]},
        {"title": _("Pipeline"), "collapsible": True, "items": [
            _entry(_("Board"), "view_kanban", "admin:crm_lead_board", "crm.view_lead"),
            _model(_("Leads"), "person_search", "crm.lead"),
            _model(_("Pipelines"), "account_tree", "crm.pipeline"),
            _model(_("Stages"), "linear_scale", "crm.stage"),
            _model(_("Sequences"), "schedule_send", "engage.sequence"),
            _model(_("Enrollments"), "playlist_add_check", "engage.enrollment"),
        ]},
        {"title": _("Customers & bookings"), "collapsible": True, "items": [
            _model(_("Contacts"), "contacts", "crm.contact"),
            _model(_("Customers"), "person", "crm.customer"),
            _model(_("Bookings"), "event_available", "crm.booking"),
            _model(_("Services"), "home_repair_service", "crm.service"),
            _model(_("Messages"), "chat", "engage.message"),
            _model(_("Imports"), "upload_file", "crm.importrecord"),
        ]},
        {"title": _("Workers"), "collapsible": True, "items": [
            _model(_("Workers"), "engineering", "crm.worker"),
            _model(_("Punctuality"), "schedule", "coaching.workerpunctuality"),
            _model(_("Bookings' lateness"), "timer", "coaching.bookingpunctuality"),
            _model(_("CoachNova runs"), "record_voice_over", "coaching.coachingrun"),
            _model(_("Coached workers"), "school", "coaching.coachingrecipient"),
            _model(_("CoachNova settings"), "tune", "coaching.coachingsettings"),
            _model(_("Burnout alerts"), "health_and_safety", "reports.burnoutalert"),
            _model(_("Burnout thresholds"), "monitor_heart", "reports.burnoutsettings"),
        ]},
        {"title": _("Campaigns"), "collapsible": True, "items": [
            _model(_("Campaigns"), "campaign", "engage.campaign"),
            _model(_("Runs"), "play_circle", "engage.campaignrun"),
            _model(_("Recipients"), "group", "engage.campaignrecipient"),
            _model(_("Short links"), "link", "engage.shortlink"),
            _model(_("Experiments"), "science", "engage.experiment"),
            _model(_("Experiment holdout"), "shield", "engage.experimentsettings"),
        ]},
        {"title": _("Templates"), "collapsible": True, "items": [
            _model(_("Templates"), "edit_note", "engage.prompttemplate"),
            _model(_("Template versions"), "history", "engage.prompttemplateversion"),
            _model(_("Knowledge"), "menu_book", "engage.knowledgedoc"),
            _model(_("Fallback texts"), "sms_failed", "engage.fallbacktext"),
            _model(_("Banned phrases"), "block", "engage.bannedphrase"),
        ]},
        {"title": _("Reports"), "collapsible": True, "items": [
            _model(_("Events"), "timeline", "crm.event"),
            _model(_("AI sessions"), "smart_toy", "engage.aisession"),
            _model(_("Email deliveries"), "mark_email_read", "channels_app.emaildelivery"),
        ]},
        {"title": _("Settings"), "collapsible": True, "items": [
            _model(_("Companies"), "business", "crm.company"),
            _model(_("Engagement policy"), "policy", "engage.engagementpolicy"),
            _model(_("AI"), "psychology", "engage.aiconfig"),
            _model(_("Channels"), "cell_tower", "channels_app.channelaccount"),
            _model(_("API keys"), "key", "crm.apikey"),
            _model(_("Users"), "badge", "crm.user"),
            _model(_("Memberships"), "group_work", "crm.membership"),
            _model(_("Groups"), "groups", "auth.group"),
        ]},
        {"title": _("System"), "collapsible": True, "items": [
            _model(_("Jobs and dead letters"), "work_history", "engage.job"),
            _model(_("Schedules"), "event_repeat", "django_celery_beat.periodictask"),
            _model(_("Provider callbacks"), "call_received", "channels_app.providercallback"),
            _model(_("WhatsApp Web sessions"), "qr_code", "channels_app.whatsappwebsession"),
            _model(_("WhatsApp Web deliveries"), "send", "channels_app.whatsappwebdelivery"),
            _model(_("Login lockouts"), "lock", "axes.accessattempt"),
        ]},
    ]


def dashboard_callback(request, context: dict[str, Any]) -> dict[str, Any]:
    """The home page: what waits for a person today (engage's console summary, when engage is installed) and the
    manager dashboard's cards (reports', when installed)."""
    from django.utils.module_loading import import_string

    for path, key in (("engage.admin.console.home_summary", "today"), ("reports.dashboard.dashboard_context", None)):
        try:
            build = import_string(path)
        except ImportError:
            continue
        found = build(request=request)
        if key is None:
            context.update(found)
        else:
            context[key] = found
    return context
