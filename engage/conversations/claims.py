"""Inbound messages another app answers (CoachNova takes a worker's reply to their coaching): a hook registered at
start-up through engage.api, asked by the `ai_engage` job before the sales AI replies. engage never imports the app."""

from __future__ import annotations

from collections.abc import Callable

# `hook(*, message) -> bool`: True when the app took the message (the sales AI then does not answer it).
INBOUND_CLAIM_HOOKS: list[Callable[..., bool]] = []


def inbound_claim_hook_register(hook: Callable[..., bool]) -> None:
    """Register `hook(*, message: Message) -> bool`, asked for every inbound message before the AI reply."""
    if hook not in INBOUND_CLAIM_HOOKS:
        INBOUND_CLAIM_HOOKS.append(hook)


def inbound_claimed(*, message) -> bool:
    """Whether a registered app took this inbound message."""
    return any(hook(message=message) for hook in INBOUND_CLAIM_HOOKS)
