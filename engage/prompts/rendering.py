"""Rendering prompt templates: Jinja2's sandbox, strict about variables.

A template may use only the variables declared for its agent type in `TEMPLATE_VARIABLES`;
an unknown one is an error that names it, and a declared one missing from the context is an
error at render time. Bodies are checked when a version is created, so a bad template never
reaches approval. Writes (new version, approve) live in `engage.prompts.services`.
"""

from __future__ import annotations

import functools
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_noop
from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment

from crm.models import Company
from engage.prompts.models import PromptTemplateVersion

TEMPLATE_VARIABLES: dict[str, dict[str, str]] = {
    "sales": {
        "company_name": "The company's name.",
        "contact_name": "The lead's name (may be empty).",
        "stage": "The lead's pipeline stage, e.g. Contacted.",
        "summary": "The current summary of the conversation.",
        "last_message": "The lead's most recent inbound message.",
        "channel": "The channel the message goes out on.",
        "step_number": "In a sequence: the number of this step (1, 2, ...).",
    },
    "smartengage": {
        "company_name": "The company's name.",
        "customer_name": "The customer's full name (empty when unknown).",
        "customer_first_name": "The name to address the customer by: the given name, titles (মোঃ, Md.) left"
        " out; empty when unknown. Write no case ending after it.",
        "service_name": "The service's name in English.",
        "service_name_bn": "The service's name in Bengali.",
        "service_price": "The service's base price in Bengali digits (৳১,৫০০); the only price the text may state.",
        "days_since_last_booking": "Days since the customer's last completed booking, in Bengali digits.",
        "booking_history": "The customer's last three completed bookings, newest first, one per line:"
        " Bengali date, service (Bengali name), days ago. Empty for a customer without one.",
        "promo_code": "A promotion code, or empty.",
        "channel_name_bn": "The channel in Bengali (এসএমএস, ইমেইল, হোয়াটসঅ্যাপ).",
        "max_characters": "How long the text may be on this channel without the link, in Bengali digits.",
        "deep_link": "The signed booking link to include.",
    },
    "coachnova": {
        "company_name": "The company's name.",
        "worker_name": "The worker's name.",
        "on_time_rate": "Share of bookings the worker arrived on time, 0-100.",
        "late_count": "How many bookings the worker was late to in the period.",
        "average_delay_minutes": "Average minutes late when late.",
        "period_days": "The length of the scored period in days.",
        "late_bookings": "The bookings behind the pattern, one a line: Bengali date, minutes late or what happened.",
        "max_characters": "How long the text may be on this channel, in Bengali digits.",
    },
}

_environment = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@functools.lru_cache(maxsize=256)
def _variables_used(body: str) -> frozenset[str]:
    # Parsing is pure: bulk rendering (campaigns) parses each version once per process.
    return frozenset(meta.find_undeclared_variables(_environment.parse(body)))


@functools.lru_cache(maxsize=256)
def _compiled(body: str):
    template = _environment.from_string(body)
    # Jinja keeps a template's globals as a ChainMap over the environment's and copies it into every
    # render's context: iterating the ChainMap was ~3 % of a campaign dry run's CPU. Nothing adds
    # globals after start-up, so a plain dict of the same names and values renders the same.
    template.globals = dict(template.globals)
    return template


def template_variables_check(*, agent_type: str, body: str) -> set[str]:
    """The variables `body` uses; ValidationError on bad syntax or a variable not declared for the agent type."""
    declared = TEMPLATE_VARIABLES.get(agent_type)
    if declared is None:
        raise ValidationError({"agent_type": ValidationError(gettext_noop("Unknown agent type %(agent_type)r."),
                                                             params={"agent_type": agent_type})})
    try:
        used = set(_variables_used(body))
    except TemplateSyntaxError as error:
        raise ValidationError({"body": ValidationError(gettext_noop("Template syntax error on line %(line)d: %(message)s"),
                                                       params={"line": error.lineno, "message": error.message})}) from None
    unknown = sorted(used - set(declared))
    if unknown:
        raise ValidationError(
            {
                "body": ValidationError(
                    gettext_noop("Unknown variable(s): %(unknown)s. Available for %(agent_type)s: %(declared)s."),
                    params={"unknown": ", ".join(unknown), "agent_type": agent_type, "declared": ", ".join(sorted(declared))},
                )
            }
        )
    return used


def template_render(*, body: str, agent_type: str, context: dict[str, Any]) -> str:
    """Render a template body with `context`; ValidationError on an unknown or missing variable."""
    template_variables_check(agent_type=agent_type, body=body)
    try:
        return _compiled(body).render(**context).strip()
    except UndefinedError as error:
        raise ValidationError({"body": ValidationError(gettext_noop("Missing value for a variable: %(message)s"),
                                                       params={"message": error.message})}) from None
    except SecurityError as error:
        raise ValidationError({"body": ValidationError(gettext_noop("Not allowed in a template: %(error)s"),
                                                       params={"error": str(error)})}) from None


def template_latest_approved(
    *, company: Company, agent_type: str, locale: str, name: str | None = None
) -> PromptTemplateVersion | None:
    """The most recently approved version of the company's templates for agent type and locale (and name)."""
    versions = PromptTemplateVersion.objects.filter(
        template__company=company,
        template__agent_type=agent_type,
        template__locale=locale,
        status=PromptTemplateVersion.Status.APPROVED,
    )
    if name is not None:
        versions = versions.filter(template__name=name)
    return versions.select_related("template").order_by("-approved_at", "-id").first()
