"""What a stage's callback says: the stage, whether it succeeded, why not, and which shard (map events only)."""

from __future__ import annotations

import json
from typing import Any

from service.batch.errors import MalformedEvent
from service.batch.states import COMMAND, MAP, Stage

# The stages a callback may name: the commands that run them, and the API's names (the seed's stage commands).
_EVENT_STAGES = {**{command: stage for stage, command in COMMAND.items()}, **{stage.value: stage for stage in Stage}}


def parse_event(body: bytes, job_id: str) -> tuple[Stage, bool, Any, int | None]:
    """(stage, ok, reason, shard index) of an authenticated event about ``job_id``; ``MalformedEvent`` otherwise."""
    try:
        event = json.loads(body)
        stage, ok, reason = _EVENT_STAGES[event["stage"]], bool(event["ok"]), event.get("reason")
        if event["job"] != job_id:
            raise ValueError("the event names another job")
        index = event.get("index")
        if (event["stage"] == MAP) != (type(index) is int and index >= 0):
            raise ValueError("a map event names its shard (a non-negative index), no other event does")
    except (ValueError, KeyError, TypeError) as error:
        raise MalformedEvent(str(error)) from None
    return stage, ok, reason, index
