"""Models of engage, one module per area, re-exported here."""

from engage.models.jobs import Job
from engage.models.messages import Message

__all__ = ["Job", "Message"]
