"""An S3-compatible object store for tests: moto's server in this process, on a free port.

The artifact tests run against it through s3fs exactly as a deployment runs against MinIO or
AWS S3: `s3://bucket/prefix` plus `endpoint_url` and credentials in the storage options.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
CREDENTIALS = {"key": "testing", "secret": "testing"}


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    @property
    def storage_options(self) -> dict[str, Any]:
        """What D2L_ARTIFACT_STORAGE_OPTIONS would hold for this server."""
        return {
            **CREDENTIALS,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": REGION},
        }

    def new_bucket(self) -> str:
        """A fresh, empty bucket (one per test keeps tests independent)."""
        import boto3

        name = f"d2l-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=CREDENTIALS["key"],
            aws_secret_access_key=CREDENTIALS["secret"],
            region_name=REGION,
        )
        client.create_bucket(Bucket=name)
        return name


@contextmanager
def moto_s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1, stopped on exit."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
