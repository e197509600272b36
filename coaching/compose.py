"""The coaching text: the company's published `coachnova` templates rendered with one worker's facts, written by
the model through engage's generation (safety filter for message_type "coaching", the approved fallback)."""

from __future__ import annotations

from crm.models import Channel, Company, Worker
from engage import api as engage

# The names of engage's seeded coachnova templates (engage/prompts/defaults.py), edited in the studio.
SYSTEM_TEMPLATE = "coaching_system"
USER_TEMPLATE = "coaching"
MAX_CHARACTERS = {Channel.SMS: 480, Channel.WHATSAPP_CLOUD: 700, Channel.WHATSAPP_WEB: 700}


def _render(*, company: Company, name: str, context: dict, version=None) -> str:
    version = version or engage.template_latest_approved(company=company, agent_type="coachnova", locale="bn", name=name)
    if version is None:
        engage.templates_seed_defaults(company=company)
        version = engage.template_latest_approved(company=company, agent_type="coachnova", locale="bn", name=name)
    return engage.template_render(body=version.body, agent_type="coachnova", context=context)


def coaching_context(*, company: Company, worker: Worker, channel: str, period_days: int, late_lines: list[str],
                     stats) -> dict:
    rate = getattr(stats, "on_time_rate_14", None)
    average = getattr(stats, "average_minutes_late_14", None)
    return {
        "company_name": company.name,
        "worker_name": worker.contact.name,
        "on_time_rate": engage.number_bn(round(rate)) if rate is not None else "—",
        "late_count": engage.number_bn(len(late_lines)),
        "average_delay_minutes": engage.number_bn(round(average)) if average else "",
        "period_days": engage.number_bn(period_days),
        "late_bookings": "\n".join(late_lines),
        "max_characters": engage.number_bn(MAX_CHARACTERS.get(channel, 700)),
    }


def coaching_text_generate(*, company: Company, worker: Worker, channel: str, period_days: int,
                           late_lines: list[str], stats, template_version=None) -> engage.GenerationResult:
    """`template_version`: the user template of the worker's experiment arm (engage.api.experiment_exposures_for)."""
    context = coaching_context(company=company, worker=worker, channel=channel, period_days=period_days,
                               late_lines=late_lines, stats=stats)
    messages = [
        {"role": "system", "content": _render(company=company, name=SYSTEM_TEMPLATE, context=context)},
        {"role": "user", "content": _render(company=company, name=USER_TEMPLATE, context=context, version=template_version)},
    ]
    return engage.ai_generate(
        company=company, agent_type="coachnova", purpose="coaching", messages=messages, message_type="coaching",
        locale="bn", channel=channel, contact=worker.contact,
    )
