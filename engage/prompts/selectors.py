"""Reading prompt templates for other apps (through engage.api)."""

from __future__ import annotations

from collections.abc import Iterable

from crm.models import Company
from engage.prompts.models import PromptTemplateVersion


def template_version_labels(*, company: Company, ids: Iterable[int], using: str = "default") -> dict[int, str]:
    """{version id: "<template name> v<number>"} of the company's template versions among `ids`, in one query
    (ids of another company's or deleted versions are absent)."""
    wanted = [pk for pk in set(ids) if pk]
    if not wanted:
        return {}
    rows = (PromptTemplateVersion.objects.using(using).filter(template__company_id=company.pk, pk__in=wanted)
            .values_list("pk", "template__name", "number"))
    return {pk: f"{name} v{number}" for pk, name, number in rows}
