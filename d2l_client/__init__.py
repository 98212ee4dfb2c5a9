"""A Python client for d2l-service, standalone (httpx only): sync `Client`, async `AsyncClient`.

from d2l_client import Client
with Client("http://127.0.0.1:8000") as client:
    job = client.train(arch="lenet", dataset="digits", hyperparameters={"epochs": 5})
    for event in job.follow():
        print(event.kind, event.data)
    print(job.wait()["result"]["test_acc"])
"""

from d2l_client.aio import AsyncClient, AsyncJob
from d2l_client.client import DEFAULT_URL, Client, Job
from d2l_client.errors import APIError, D2LError, JobFailedError
from d2l_client.sse import Event

__all__ = [
    "DEFAULT_URL",
    "APIError",
    "AsyncClient",
    "AsyncJob",
    "Client",
    "D2LError",
    "Event",
    "Job",
    "JobFailedError",
]
