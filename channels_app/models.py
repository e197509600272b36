"""Models of channels_app (added by later issues)."""
