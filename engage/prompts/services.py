"""Prompt template versions: create (immutable body, checked variables) and approve (archives the previous)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.db.models.signals import post_save
from django.utils import timezone

from crm.models import Company, User
from engage.prompts.defaults import DEFAULT_TEMPLATES
from engage.prompts.models import PromptTemplate, PromptTemplateVersion
from engage.prompts.rendering import template_variables_check


@transaction.atomic
def template_version_create(*, template: PromptTemplate, body: str, author: User | None = None) -> PromptTemplateVersion:
    """A new draft version with the next number; ValidationError if the body uses unknown variables."""
    template_variables_check(agent_type=template.agent_type, body=body)
    template = PromptTemplate.objects.select_for_update().get(pk=template.pk)
    number = (template.versions.aggregate(highest=Max("number"))["highest"] or 0) + 1
    return PromptTemplateVersion.objects.create(template=template, number=number, body=body, author=author)


@transaction.atomic
def template_version_approve(*, version: PromptTemplateVersion, actor: User | None = None) -> PromptTemplateVersion:
    """Approve a version; the previously approved version of the template is archived."""
    PromptTemplate.objects.select_for_update().get(pk=version.template_id)
    version = PromptTemplateVersion.objects.get(pk=version.pk)
    if version.status == PromptTemplateVersion.Status.APPROVED:
        return version
    template_variables_check(agent_type=version.template.agent_type, body=version.body)
    PromptTemplateVersion.objects.filter(
        template_id=version.template_id, status=PromptTemplateVersion.Status.APPROVED
    ).update(status=PromptTemplateVersion.Status.ARCHIVED)
    version.status = PromptTemplateVersion.Status.APPROVED
    version.approved_by = actor
    version.approved_at = timezone.now()
    version.save(update_fields=["status", "approved_by", "approved_at"])
    return version


@transaction.atomic
def templates_seed_defaults(*, company) -> list[PromptTemplateVersion]:
    """Give `company` the approved v1 default templates it lacks (engage.prompts.defaults); idempotent.

    Four statements whatever the company has (every new company runs this in the transaction that creates
    it): the missing templates inserted (`ON CONFLICT DO NOTHING` on their unique name), the defaults'
    templates locked, which of them have versions read after the lock (a concurrent seeder's versions are
    committed by then), and one approved v1 inserted for each template without a version. A template whose
    versions a marketer archived keeps them: only a template with no version at all gets its default."""
    names = {(agent_type, name): (body, description) for agent_type, name, body, description in DEFAULT_TEMPLATES}
    for (agent_type, _), (body, _) in names.items():
        template_variables_check(agent_type=agent_type, body=body)
    PromptTemplate.objects.bulk_create(
        [PromptTemplate(company=company, agent_type=agent_type, locale="bn", name=name, description=description)
         for (agent_type, name), (_, description) in names.items()],
        ignore_conflicts=True,
    )
    templates = [
        template for template in PromptTemplate.objects.select_for_update().filter(
            company=company, locale="bn", name__in={name for _, name in names}
        ).only("pk", "agent_type", "name").order_by("pk")
        if (template.agent_type, template.name) in names
    ]
    with_versions = set(PromptTemplateVersion.objects.filter(template__in=templates).values_list("template_id", flat=True))
    approved_at = timezone.now()
    return PromptTemplateVersion.objects.bulk_create([
        PromptTemplateVersion(template=template, number=1, body=names[template.agent_type, template.name][0],
                              status=PromptTemplateVersion.Status.APPROVED, approved_at=approved_at)
        for template in templates if template.pk not in with_versions
    ])


def _company_created_templates_seed(sender, instance, created: bool, raw: bool = False, **kwargs) -> None:
    if created and not raw:
        templates_seed_defaults(company=instance)


def company_templates_seed_connect() -> None:
    """A new company starts with the default templates, in the transaction that creates it (EngageConfig.ready:
    crm cannot call engage, so engage listens for the company's creation)."""
    post_save.connect(_company_created_templates_seed, sender=Company, dispatch_uid="company_templates_seed")
