"""Playwright in tests (a pytest plugin): pytest-playwright launches Debian's Chromium with our args.

Playwright cannot download its own browser here; settings.CHROMIUM_EXECUTABLE_PATH and
CHROMIUM_LAUNCH_ARGS (the same the WhatsApp Web adapter uses) say which and how.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    from django.conf import settings

    return {
        **browser_type_launch_args,
        "executable_path": settings.CHROMIUM_EXECUTABLE_PATH,
        "args": [*browser_type_launch_args.get("args", []), *settings.CHROMIUM_LAUNCH_ARGS],
    }
