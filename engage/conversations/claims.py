"""Inbound messages another app answers (CoachNova takes a worker's reply to their coaching): a hook registered at
start-up through engage.api, asked by the `ai_engage` job before the sales AI replies. engage never imports the app."""

from __future__ import annotations

from collections.abc import Callable

# `hook(*, contact, message_id) -> bool`: True when the app took the message (the sales AI then does not answer
# it). `contact` comes with its `worker` loaded (None when the writer is no worker), so a hook that only cares
# about workers costs no query for everyone else.
INBOUND_CLAIM_HOOKS: list[Callable[..., bool]] = []


def inbound_claim_hook_register(hook: Callable[..., bool]) -> None:
    """Register `hook(*, contact: Contact, message_id: int) -> bool`, asked for every inbound message before the AI
    reply."""
    if hook not in INBOUND_CLAIM_HOOKS:
        INBOUND_CLAIM_HOOKS.append(hook)


def inbound_claimed(*, contact, message_id) -> bool:
    """Whether a registered app took this inbound message."""
    return any(hook(contact=contact, message_id=message_id) for hook in INBOUND_CLAIM_HOOKS)
