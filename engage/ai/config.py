"""A company's AI settings (`AIConfig`), created with the defaults on first use, and what follows from them."""

from __future__ import annotations

import copy
import threading
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.signals import post_delete, post_save

from crm.models import Company
from engage.ai.links import default_link_hosts, link_domain_normalize
from engage.ai.models import AIConfig

# Per-process cache of each company's AIConfig, read by every AI reply, follow-up and campaign batch:
# {company id: (expires at, monotonic; config)}. An AIConfig or company saved or deleted in this process
# clears it at once (signals below, connected in EngageConfig.ready); one saved in another process (the
# admin's web worker, seen by the io worker) takes effect within AI_CONFIG_CACHE_SECONDS, as the banned
# phrases and fallback texts do (engage.ai.safety). Callers get a copy: changing and saving it is safe.
AI_CONFIG_CACHE_SECONDS = 10.0

_config_cache: dict[int, tuple[float, AIConfig]] = {}
_config_cache_lock = threading.Lock()


def ai_config_cache_clear(**kwargs) -> None:
    with _config_cache_lock:
        _config_cache.clear()


def ai_config_cache_connect() -> None:
    for signal in (post_save, post_delete):
        for sender in (AIConfig, Company):
            signal.connect(ai_config_cache_clear, sender=sender,
                           dispatch_uid=f"ai_config_cache_clear_{signal is post_save}_{sender.__name__}")


def ai_config_for(*, company: Company | int) -> AIConfig:
    """The company's AIConfig (given the company or its id), created with the defaults on first use."""
    company_id = company if isinstance(company, int) else company.pk
    now = time.monotonic()
    cached = _config_cache.get(company_id)
    if cached is not None and cached[0] > now:
        return copy.copy(cached[1])
    config = AIConfig.objects.filter(company_id=company_id).order_by().first()
    if config is None:
        try:
            with transaction.atomic():
                config = AIConfig.objects.create(company_id=company_id, model=settings.OPENAI_MODEL)
        except IntegrityError:
            config = AIConfig.objects.get(company_id=company_id)
    with _config_cache_lock:
        _config_cache[company_id] = (now + AI_CONFIG_CACHE_SECONDS, config)
    return copy.copy(config)


def allowed_link_hosts(*, company: Company | int, config: AIConfig | None = None) -> tuple[str, ...]:
    """The hosts messages of `company` may link to: our own link hosts and the company's allowed link domains
    (`config`: the company's AIConfig when the caller has it already)."""

    config = config if config is not None else ai_config_for(company=company)
    extra = [link_domain_normalize(str(item)) for item in (config.allowed_link_domains or [])]
    return tuple(dict.fromkeys([*default_link_hosts(), *[host for host in extra if host]]))
