"""The worker formats the ``Date`` header once per second (``service.server.responses``): the text is gunicorn's."""

from __future__ import annotations

import email.utils
import time

from service.server.responses import SecondsDate


def test_the_date_is_the_text_gunicorn_writes_and_follows_the_clock() -> None:
    date = SecondsDate()
    for timestamp in (0.0, 1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.0, 2_000_000_000.5):
        assert date(timestamp) == email.utils.formatdate(int(timestamp), localtime=False, usegmt=True)
    now = date()
    assert now.endswith(" GMT") and email.utils.parsedate_to_datetime(now).timestamp() <= time.time()
