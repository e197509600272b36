"""engage's admin, one module per feature; Django's admin autodiscovery imports this package."""


from engage.admin import ai, campaigns, conversations, experiments, ledger, messaging, policy, prompts  # noqa: F401
