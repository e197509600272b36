"""Prompt templates: versioned, approvable texts per agent type and locale, their defaults and rendering.

- `models`: `PromptTemplate`, `PromptTemplateVersion` (immutable; draft, approved, archived).
- `services`: `template_version_create`, `template_version_approve`, `templates_seed_defaults`.
- `rendering`: `template_render` (sandboxed Jinja), `template_latest_approved`, the variables each
  agent type knows (`TEMPLATE_VARIABLES`, `template_variables_check`).
- `defaults`: the texts a company starts with.
The marketer's editing tool on top of this is engage.studio.
"""
