"""SmartEngage's vocabulary: what happened to each customer (`ReminderOutcome`, `BulkResult`) and the plan
that carries one customer through the steps (`Plan`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from crm.models import Customer, Service
from engage.ai.client import (
    GenerationRequest,
)
from engage.ai.models import AISession
from engage.campaigns.models import CampaignRecipient
from engage.prompts.models import PromptTemplateVersion

AGENT_TYPE = "smartengage"


MESSAGE_TYPE = "reminder"


SEND_TASK = "smartengage_send"


HISTORY_LIMIT = 5


EMAIL_SUBJECT = {"bn": "আপনার সার্ভিসের সময় হয়েছে", "en": "Time for your service again"}


Reason = CampaignRecipient.Reason


SENT, FAILED, SKIPPED, DRY_RUN = "sent", "failed", "skipped", "dry_run"
QUEUED = "queued"  # sent by another process that had not finished when the bulk send returned


@dataclass
class ReminderOutcome:
    """What happened to one customer."""

    customer_id: int
    status: str
    reason: str = ""
    correlation_id: str = ""
    message_id: int | None = None
    body: str = ""
    template_version_id: int | None = None
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "success": self.status in (SENT, DRY_RUN),
            "customer_id": self.customer_id,
            "status": self.status,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "message_id": self.message_id,
            "template_version_id": self.template_version_id,
            "body": self.body,
            "error": self.error,
        }


@dataclass
class BulkResult:
    total_eligible: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    rendered: int = 0
    queued: int = 0
    duration_seconds: float = 0.0
    outcomes: list[ReminderOutcome] = field(default_factory=list)

    def add(self, outcome: ReminderOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == SENT:
            self.sent += 1
        elif outcome.status == FAILED:
            self.failed += 1
        elif outcome.status == SKIPPED:
            self.skipped += 1
        elif outcome.status == DRY_RUN:
            self.rendered += 1
        elif outcome.status == QUEUED:
            self.queued += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_eligible": self.total_eligible,
            "sent": self.sent,
            "failed": self.failed,
            "skipped": self.skipped,
            "rendered": self.rendered,
            "queued": self.queued,
            "duration_seconds": round(self.duration_seconds, 3),
        }


@dataclass
class Plan:
    customer: Customer
    correlation_id: uuid.UUID
    channel: str
    service: Service | None = None
    version: PromptTemplateVersion | None = None
    link: str = ""
    request: GenerationRequest | None = None
    cycle_started_at: Any = None
    reason: str = ""
    text: str = ""
    session: AISession | None = None
    note: str = ""
    # Neither the model's text nor the approved fallback (with the link) passed the safety filter.
    is_blocked: bool = False
    # The customer's assignment in the campaign's running experiment (engage.experiments), carried by the message.
    assignment_id: int | None = None


# A recipient row to write: (plan, status, reason, error).
RecipientRow = tuple["Plan", str, str, str]
