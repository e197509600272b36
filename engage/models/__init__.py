"""Models of engage, one module per area, re-exported here."""

from engage.models.ai import AgentType, AIConfig, AISession, BannedPhrase, FallbackText, KnowledgeDoc
from engage.models.campaigns import Campaign, CampaignRecipient, CampaignRun
from engage.models.jobs import Job
from engage.models.links import ShortLink
from engage.models.messages import Message
from engage.models.policy import CampaignPreset, EngagementPolicy
from engage.models.sequences import Enrollment, Sequence, SequenceStep
from engage.models.templates import PromptTemplate, PromptTemplateVersion

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
    "FallbackText",
    "Job",
    "KnowledgeDoc",
    "Message",
    "PromptTemplate",
    "PromptTemplateVersion",
    "Sequence",
    "SequenceStep",
    "ShortLink",
]
