"""Celery's filesystem broker (the embedded default, `CELERY_BROKER_URL=filesystem://`) with messages that
appear whole.

kombu's filesystem transport creates a message's file, then locks it, then writes it. A consumer listing
the folder between the create and the write moves the empty file away and reads nothing: the JSON decode
fails, the worker stops with "Unrecoverable error", and the message (written afterwards into the moved
file) is lost. Found by the test suite's `make run` stack: beat's relay published while the default
worker polled. Here a message is written to a hidden file in the same folder (a name the consumer skips)
and renamed into place, which is atomic on one filesystem: a consumer sees the whole message or none.

`shokti.celery` maps the `filesystem` alias to this transport, so the documented URL stays the same.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        # kombu's consumer takes files named "<anything>.<queue>.msg"; ".part-<name>" is never one of those.
        partial = os.path.join(self.data_folder_out, f".part-{name}")
        try:
            with open(partial, "wb", buffering=0) as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as error:
            raise ChannelError(f"Cannot add file {name!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
