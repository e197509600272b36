"""Models of coaching (added by later issues)."""
