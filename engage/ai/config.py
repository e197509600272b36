"""A company's AI settings (`AIConfig`), created with the defaults on first use, and what follows from them."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from crm.models import Company
from engage.ai.links import default_link_hosts, link_domain_normalize
from engage.ai.models import AIConfig


def ai_config_for(*, company: Company | int) -> AIConfig:
    """The company's AIConfig (given the company or its id), created with the defaults on first use."""
    company_id = company if isinstance(company, int) else company.pk
    config = AIConfig.objects.filter(company_id=company_id).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            return AIConfig.objects.create(company_id=company_id, model=settings.OPENAI_MODEL)
    except IntegrityError:
        return AIConfig.objects.get(company_id=company_id)


def allowed_link_hosts(*, company: Company | int, config: AIConfig | None = None) -> tuple[str, ...]:
    """The hosts messages of `company` may link to: our own link hosts and the company's allowed link domains
    (`config`: the company's AIConfig when the caller has it already)."""

    config = config if config is not None else ai_config_for(company=company)
    extra = [link_domain_normalize(str(item)) for item in (config.allowed_link_domains or [])]
    return tuple(dict.fromkeys([*default_link_hosts(), *[host for host in extra if host]]))
