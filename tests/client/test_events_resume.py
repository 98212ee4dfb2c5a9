"""The client resumes a dropped event stream after the last event it saw, on its own."""

from __future__ import annotations

import httpx
import pytest

from d2l_client import APIError, Client

FIRST = b'event: status\ndata: {"status":"running"}\n\nevent: metrics\nid: 7\ndata: {"epoch":1}\n\n'
SECOND = b'event: metrics\nid: 9\ndata: {"epoch":2}\n\n: keepalive\n\nevent: end\ndata: {"status":"succeeded"}\n\n'


def test_a_stream_closed_before_the_end_is_resumed_with_last_event_id() -> None:
    asked: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        body = FIRST if len(asked) == 1 else SECOND  # the first connection drops mid-job
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with Client("http://service", transport=httpx.MockTransport(answer)) as client:
        events = list(client.events("job1"))
    assert asked == [None, "7"]
    assert [(e.kind, e.data.get("epoch")) for e in events] == [
        ("status", None),
        ("metrics", 1),
        ("metrics", 2),
        ("end", None),
    ]


def test_an_error_answer_raises_before_any_event() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": "no job with id 'x'"})

    with Client("http://service", transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(APIError) as refused:
            list(client.events("x"))
    assert refused.value.status_code == 404 and refused.value.message == "no job with id 'x'"
