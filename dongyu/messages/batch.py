"""Several bus messages in one Matrix event: this port's extension of spec 5.

A sender with a backlog (the UI server's and the MBR's send queues) coalesces
the queued messages into one ``dy.bus.v0`` event instead of one event each:
Synapse persists an event in ~25-35 ms whatever its size, so a burst drains
many times faster. The content of such an event is::

    {"version": "v0", "type": "batch", "op_id": "batch:<first op_id>+<n-1>",
     "messages": [<message>, <message>, ...]}

where each element is an ordinary message (spec 5, 7), in the order it was
queued. A single queued message is sent as it is (the spec's shape), so an
idle chain sends exactly what the spec describes. Receivers unpack with
:func:`unpack`, which accepts both shapes and keeps the order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from dongyu.errors import ValidationError
from dongyu.messages.show import show

BATCH_TYPE = "batch"
MAX_BATCH_MESSAGES = 200
"""At most this many messages in one event (a receiver refuses more)."""
MAX_BATCH_BYTES = 40_000
"""Target size of one batch's content as compact JSON. Synapse refuses events
above 65,536 bytes, and the event around the content (ids, hashes, signatures)
takes about 1 KB."""


def encoded_size(content: Mapping[str, Any]) -> int:
    """The size of ``content`` as compact JSON (what the homeserver stores)."""
    return len(json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode())


def group(
    sizes: Sequence[int],
    *,
    max_bytes: int = MAX_BATCH_BYTES,
    max_count: int = MAX_BATCH_MESSAGES,
) -> list[range]:
    """Split messages of the given encoded sizes into consecutive groups, in order.

    A group holds at most ``max_count`` messages whose sizes add up to at most
    ``max_bytes`` (a message larger than that is a group of its own).
    """
    groups: list[range] = []
    start, total = 0, 0
    for index, size in enumerate(sizes):
        count = index - start
        if count and (count >= max_count or total + size > max_bytes):
            groups.append(range(start, index))
            start, total = index, 0
        total += size
    if start < len(sizes):
        groups.append(range(start, len(sizes)))
    return groups


def pack(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One event's content for ``messages`` (in order): the message itself when alone."""
    if not messages:
        raise ValueError("pack() needs at least one message")
    if len(messages) == 1:
        return dict(messages[0])
    first = messages[0].get("op_id")
    op_id = f"batch:{first}+{len(messages) - 1}" if isinstance(first, str) else "batch"
    return {
        "version": "v0",
        "type": BATCH_TYPE,
        "op_id": op_id[:256],
        "messages": [dict(m) for m in messages],
    }


def is_batch(content: object) -> bool:
    return isinstance(content, dict) and content.get("type") == BATCH_TYPE


def unpack(content: object) -> list[object]:
    """The messages an event carries, in order: ``[content]`` for a single message.

    :class:`ValidationError` for a batch that is not well formed (nothing of it
    is used then). The elements are not validated here: each is an ordinary
    message for the receiver to check (a batch inside a batch is refused).
    """
    if not is_batch(content):
        return [content]
    assert isinstance(content, dict)
    if content.get("version") != "v0":
        raise ValidationError(f"batch: 'version' must be 'v0', got {show(content.get('version'))}")
    messages = content.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValidationError("batch: 'messages' must be a non-empty list")
    if len(messages) > MAX_BATCH_MESSAGES:
        raise ValidationError(f"batch: more than {MAX_BATCH_MESSAGES} messages")
    for index, message in enumerate(messages):
        if is_batch(message):
            raise ValidationError(f"batch: message {index} is itself a batch")
    return list(messages)
