"""Posting to the model's API through the `openai` SDK's own request path, reading the JSON as it comes.

`client.chat.completions.create(...)` walks the request through the SDK's typed-dict transform (every
message, every field) and builds pydantic models of the answer: ~1.2 ms of CPU a reply for the chat
and moderation calls together, on a worker whose threads share one GIL. `client.post(path, body=...,
cast_to=object)` is the SDK's documented way to make a request itself ("Making custom/undocumented
requests"): the same client, connection pool, headers, authentication, timeouts and error classes
(`openai.APIStatusError`, `APIConnectionError`, `APITimeoutError` ...), with the body sent as given and
the answer returned as the decoded JSON. The bodies we send are plain JSON already (role/content
messages, numbers), so the transform had nothing to change.
"""

from __future__ import annotations

from typing import Any

import openai


def sdk_post(client: openai.OpenAI, path: str, *, body: dict[str, Any], timeout: float,
             headers: dict[str, str] | None = None) -> dict[str, Any]:
    """POST `body` to `path` (e.g. "/chat/completions") and return the answer's JSON object; raises the SDK's
    errors, and `openai.OpenAIError` when the answer is not a JSON object."""
    options: dict[str, Any] = {"timeout": timeout}
    if headers:
        options["headers"] = headers
    data = client.post(path, body=body, cast_to=object, options=options)
    if not isinstance(data, dict):
        raise openai.OpenAIError(f"The API did not answer a JSON object: {str(data)[:100]!r}")
    return data


def completion_text(data: dict[str, Any]) -> str:
    """The first choice's message content of a chat completion ("" when there is none)."""
    choices = data.get("choices") or []
    message = (choices[0] or {}).get("message") if choices and isinstance(choices[0], dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def completion_usage(data: dict[str, Any]) -> tuple[int, int]:
    """The completion's (prompt tokens, completion tokens); zeros when the answer does not say."""
    usage = data.get("usage")
    if not isinstance(usage, dict):
        return 0, 0
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (prompt if isinstance(prompt, int) else 0), (completion if isinstance(completion, int) else 0)
