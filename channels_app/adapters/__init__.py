"""One module per channel; importing this package registers them all."""

from channels_app.adapters import console, email, sms, whatsapp_cloud, whatsapp_web  # noqa: F401
