"""Where Django finds engage's models: each feature package keeps its own, gathered here.

Feature code imports models from its feature (`from engage.ledger.models import Job`); this module
exists for Django's app loading and for callers outside engage's features (tests, the shell).
"""

from engage.ai.models import AIConfig, AISession, BannedPhrase, FallbackText, KnowledgeDoc
from engage.campaigns.models import Campaign, CampaignRecipient, CampaignRun, ShortLink
from engage.conversations.models import Enrollment, Sequence, SequenceStep
from engage.experiments.models import (
    Experiment,
    ExperimentAssignment,
    ExperimentPhase,
    ExperimentSettings,
    ExperimentVariant,
)
from engage.ledger.models import Job
from engage.messaging.models import AgentType, Message, MessageAttachment
from engage.policy.models import CampaignPreset, EngagementPolicy
from engage.prompts.models import PromptTemplate, PromptTemplateVersion

__all__ = [
    "AIConfig",
    "AISession",
    "AgentType",
    "BannedPhrase",
    "Campaign",
    "CampaignPreset",
    "CampaignRecipient",
    "CampaignRun",
    "EngagementPolicy",
    "Enrollment",
    "Experiment",
    "ExperimentAssignment",
    "ExperimentPhase",
    "ExperimentSettings",
    "ExperimentVariant",
    "FallbackText",
    "Job",
    "KnowledgeDoc",
    "Message",
    "MessageAttachment",
    "PromptTemplate",
    "PromptTemplateVersion",
    "Sequence",
    "SequenceStep",
    "ShortLink",
]
