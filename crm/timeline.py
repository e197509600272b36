"""The timeline as sentences: an event read as people say it ("Moved from New to Qualified by Rahima"),
with a link to what it happened to. Types not listed here read as their name and a few plain details,
never a Python dict."""

from __future__ import annotations

from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _

from crm.models import Event

DETAIL_KEYS_SHOWN = 4


def _who(event: Event) -> str:
    actor = event.actor
    if actor is not None:
        return _(" by %(name)s") % {"name": actor.full_name or actor.email}
    return ""


def _sentences() -> dict[str, Any]:
    return {
        "lead.created": lambda p: _("Became a lead (from %(source)s)") % {"source": p.get("source") or _("a message")},
        "stage.changed": lambda p: _("Moved from %(from)s to %(to)s") % {"from": p.get("from", "?"),
                                                                          "to": p.get("to", "?")},
        "lead.assigned": lambda p: (_("Assigned to %(name)s") % {"name": p["owner"]}) if p.get("owner")
        else _("Unassigned"),
        "handoff.requested": lambda p: _("Asked for a human: “%(text)s”") % {"text": (p.get("text") or "")[:120]},
        "handoff.taken_over": lambda p: _("A person took the conversation over (the AI paused)"),
        "handoff.handed_back": lambda p: _("Handed back to the AI"),
        "message.received": lambda p: _("Wrote to us on %(channel)s") % {"channel": p.get("channel", "?")},
        "message.sent": lambda p: (
            _("Was sent a reply typed by a person on %(channel)s") if p.get("agent_type") == "manual"
            else _("Was sent a %(kind)s on %(channel)s")
        ) % {"kind": (p.get("message_type") or "message").replace("_", " "), "channel": p.get("channel", "?")},
        "message.delivered": lambda p: _("A message was delivered"),
        "message.played": lambda p: _("Played our voice note"),
        "message.reaction": lambda p: _("Reacted %(emoji)s to a message") % {"emoji": p.get("emoji", "")},
        "message_clicked": lambda p: _("Clicked a link in a message"),
        "notification_opened": lambda p: _("Opened a notification"),
        "deeplink_followed": lambda p: _("Followed a booking link"),
        "booking_created": lambda p: _("Booked"),
        "opt_out": lambda p: _("Opted out of %(channel)s") % {"channel": p.get("channel", _("messages"))},
        "opt_in": lambda p: _("Opted back in to %(channel)s") % {"channel": p.get("channel", _("messages"))},
        "sequence.enrolled": lambda p: _("Enrolled in a sequence"),
        "contact.merged": lambda p: _("Merged with another contact"),
        "contact.phone_changed": lambda p: _("Phone number changed"),
        "ai.reply_skipped": lambda p: _("The AI did not answer (%(reason)s)") % {
            "reason": str(p.get("reason", "")).replace("_", " ")},
        "worker.burnout_alert": lambda p: (
            _("Burnout watch became an alert: %(summary)s") if p.get("is_escalation")
            else _("Burnout %(level)s opened: %(summary)s")
        ) % {"level": p.get("level", "alert"), "summary": p.get("summary", "")},
        "burnout.viewed": lambda p: _("Burnout details viewed"),
        "burnout.acknowledged": lambda p: _("Burnout alert acknowledged"),
        "burnout.acted": lambda p: _("Burnout alert acted on: %(note)s") % {"note": p.get("action_note", "")},
        "burnout.resolved": lambda p: _("Burnout alert resolved (%(outcome)s)") % {
            "outcome": str(p.get("outcome", "")).replace("_", " ")},
    }


def _details(payload: dict) -> str:
    parts = []
    for key, value in list(payload.items())[:DETAIL_KEYS_SHOWN]:
        if isinstance(value, (dict, list)) or value in (None, ""):
            continue
        parts.append(f"{key.replace('_', ' ')}: {str(value)[:60]}")
    return "; ".join(parts)


def event_sentence(event: Event) -> str:
    """One event as a sentence, with who did it."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    sentence = _sentences().get(event.type)
    if sentence is not None:
        try:
            return sentence(payload) + _who(event)
        except (KeyError, TypeError, ValueError):
            pass
    text = event.type.replace("_", " ").replace(".", ": ").capitalize()
    details = _details(payload)
    return (f"{text} ({details})" if details else text) + _who(event)


def event_target_url(event: Event) -> str:
    """The admin page of what the event happened to, or ''."""
    if not event.target_type_id or not event.target_id:
        return ""
    content_type = event.target_type
    try:
        return reverse(f"admin:{content_type.app_label}_{content_type.model}_change", args=[event.target_id])
    except NoReverseMatch:
        return ""


def events_readable(events: list[Event]) -> list[Event]:
    """`events` with `sentence` and `target_url` set for a template."""
    for event in events:
        event.sentence = event_sentence(event)
        event.target_url = event_target_url(event)
    return events
