"""The template studio: where marketers edit, preview, compare, publish and roll back prompt templates.

- `services`: previews for a real customer, lead or worker, samples from the model, diffs, publish and
  rollback (recorded in the company's timeline).
- `views`: the studio page and its JSON endpoints inside the admin (`TemplateStudioMixin`).
See docs/template-studio.md.
"""
