"""Request bodies over their limit are refused with 413 before anything parses them.

Starlette's multipart parser spools an upload to a temporary file before a route sees it, and a
JSON body is read whole into memory: without this, a client could fill the disk or the memory
with a body that the route would refuse afterwards. A declared `Content-Length` over the limit
is answered at once; a body without one (chunked) is counted as it arrives and cut off.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UPLOAD_PATHS = ("/v1/datasets", "/v1/checkpoints")  # multipart uploads: the upload limit
MULTIPART_OVERHEAD = 1 << 20  # form fields and part headers beside the file itself


class BodyLimit:
    """ASGI middleware: at most `upload_max_bytes` (+ form overhead) for uploads, and
    `json_max_bytes` for every other request body."""

    def __init__(self, app: ASGIApp, *, upload_max_bytes: int, json_max_bytes: int) -> None:
        self.app = app
        self.upload_max_bytes = upload_max_bytes + MULTIPART_OVERHEAD
        self.json_max_bytes = json_max_bytes

    def limit_for(self, path: str) -> int:
        return self.upload_max_bytes if path in UPLOAD_PATHS else self.json_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_large(send, limit)
            return
        await self.app(scope, *Counted(receive, send, limit).channels())


class Counted:
    """One request's channels: past `limit` body bytes, the 413 is sent and the app is told
    the client left (so it stops reading); whatever it answers after that is dropped."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self.receive, self.send, self.limit = receive, send, limit
        self.seen = 0
        self.started = False  # the app began its answer: too late for a 413
        self.refused = False

    def channels(self) -> tuple[Receive, Send]:
        return self.counted_receive, self.guarded_send

    async def counted_receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit and not self.started:
                self.refused = True
                await too_large(self.send, self.limit)
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(self, message: Message) -> None:
        if self.refused:
            return
        self.started = self.started or message["type"] == "http.response.start"
        await self.send(message)


async def too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {"detail": f"the request body is larger than {limit} bytes; send less (or in parts)"}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
