"""A company's AI settings (`AIConfig`), created with the defaults on first use."""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction

from crm.models import Company
from engage.ai.models import AIConfig


def ai_config_for(*, company: Company) -> AIConfig:
    """The company's AIConfig, created with the defaults on first use."""
    config = AIConfig.objects.filter(company=company).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            return AIConfig.objects.create(company=company, model=settings.OPENAI_MODEL)
    except IntegrityError:
        return AIConfig.objects.get(company=company)
