"""Celery tasks of conversations (beat): queue due sequence steps."""

from __future__ import annotations

from celery import shared_task

from engage.conversations.sequences import sequences_advance as advance


@shared_task(name="engage.sequences_advance", ignore_result=True)
def sequences_advance() -> dict:
    """Beat: queue one `sequence_step` job per due sequence enrollment (see engage.conversations.sequences)."""

    return advance()
