"""One module per channel; importing this package registers them all."""

from channels_app.adapters import console  # noqa: F401
