"""Models of engage (added by later issues)."""
