"""engage's admin. Shared by the engage engineers: add your model admins below (or in a module imported here)."""

from engage.ai_admin import AISessionAdmin, LeadAdmin  # noqa: F401  (AI, templates, sequences, lead conversation)
from engage.campaign_admin import CampaignAdmin, CampaignRecipientAdmin, CampaignRunAdmin  # noqa: F401
from engage.jobs_admin import JobAdmin, MessageAdmin  # noqa: F401  (job ledger with replay/cancel, messages)
from engage.policy_admin import CampaignPresetInline, EngagementPolicyAdmin  # noqa: F401
