"""Micro-batched predictions: the same answers as one-by-one, each to its own request."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import torch

from api.batching import MicroBatcher
from api.serving import Serving
from core.datasets.digits import load_digits_raw
from tests.api.conftest import Trained, predict_unbatched


def samples(count: int) -> list[list[list[float]]]:
    return load_digits_raw().inputs[:count].tolist()


def assert_same(batched: dict, alone: dict) -> None:
    assert batched["model_id"] == alone["model_id"]
    for got, expected in zip(batched["predictions"], alone["predictions"], strict=True):
        assert got["class_index"] == expected["class_index"]
        assert list(got["probabilities"]) == list(expected["probabilities"])
        assert list(got["probabilities"].values()) == pytest.approx(
            list(expected["probabilities"].values()), abs=1e-5
        )


def test_concurrent_requests_share_a_forward_pass_and_match_unbatched_answers(
    trained: Trained,
) -> None:
    """16 requests submitted together become one batch; each gets its own sample's answer."""
    serving: Serving = trained.client.app.state.serving  # type: ignore[attr-defined]
    loaded = serving.get(trained.model_id)
    batcher = MicroBatcher(
        trained.model_id, executor=serving.executor, max_batch=64, max_wait_s=0.05
    )
    raws = [torch.tensor([sample]) for sample in samples(16)]
    top_ks = [1 + index % 10 for index in range(16)]

    async def submit_all() -> list:
        return await asyncio.gather(
            *(batcher.submit(loaded, raw, top_k=k) for raw, k in zip(raws, top_ks, strict=True))
        )

    answers = asyncio.run(submit_all())
    assert list(batcher.batch_sizes) == [16]
    for answer, raw, k in zip(answers, raws, top_ks, strict=True):
        alone = predict_unbatched(loaded, trained.model_id, raw, top_k=k)
        assert len(answer.predictions[0].probabilities) == k
        assert_same(answer.model_dump(), alone.model_dump())


def test_a_batch_never_exceeds_max_batch_samples(trained: Trained) -> None:
    serving: Serving = trained.client.app.state.serving  # type: ignore[attr-defined]
    loaded = serving.get(trained.model_id)
    batcher = MicroBatcher(trained.model_id, executor=serving.executor, max_batch=4, max_wait_s=0)
    raws = [torch.tensor(samples(3)) for _ in range(4)]  # 3 samples per request

    async def submit_all() -> list:
        return await asyncio.gather(*(batcher.submit(loaded, raw, top_k=None) for raw in raws))

    answers = asyncio.run(submit_all())
    assert list(batcher.batch_sizes) == [1, 1, 1, 1]
    assert all(len(answer.predictions) == 3 for answer in answers)


def test_concurrent_http_requests_each_get_their_own_answer(trained: Trained) -> None:
    """32 clients at once over HTTP, different samples and top_k: the answers of sequential
    requests, in the right hands."""
    client, model_id = trained.client, trained.model_id
    bodies = [
        {"inputs": sample, "top_k": 1 + index % 10} for index, sample in enumerate(samples(32))
    ]
    bodies[5] = {"inputs": samples(3)}  # a request holding a batch of its own
    expected = [client.post(f"/v1/models/{model_id}/predict", json=body).json() for body in bodies]

    async def all_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(
                *(http.post(f"/v1/models/{model_id}/predict", json=body) for body in bodies)
            )

    responses = asyncio.run(all_at_once())
    assert all(response.status_code == 200 for response in responses)
    for response, alone in zip(responses, expected, strict=True):
        assert_same(response.json(), alone)
    assert max(serving_batches(trained)) > 1  # some of them did share a forward pass


def serving_batches(trained: Trained) -> list[int]:
    serving: Serving = trained.client.app.state.serving  # type: ignore[attr-defined]
    return list(serving._batcher(trained.model_id).batch_sizes)


def test_a_bad_request_among_good_ones_fails_alone(trained: Trained) -> None:
    client, model_id = trained.client, trained.model_id
    bodies = [{"inputs": sample} for sample in samples(8)]
    bodies[3] = {"inputs": [[1, 2], [3, 4]]}

    async def all_at_once() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return await asyncio.gather(
                *(http.post(f"/v1/models/{model_id}/predict", json=body) for body in bodies)
            )

    statuses = [response.status_code for response in asyncio.run(all_at_once())]
    assert statuses == [200, 200, 200, 422, 200, 200, 200, 200]


def test_a_malformed_body_is_a_422_naming_the_field(trained: Trained) -> None:
    client, model_id = trained.client, trained.model_id
    response = client.post(f"/v1/models/{model_id}/predict", json={"inputs": [], "top_k": 0})
    assert response.status_code == 422
    locations = {tuple(error["loc"]) for error in response.json()["detail"]}
    assert locations == {("body", "inputs"), ("body", "top_k")}
    response = client.post(
        f"/v1/models/{model_id}/predict",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "json_invalid"


def test_swagger_documents_the_predict_body_and_answer(trained: Trained) -> None:
    spec = trained.client.get("/openapi.json").json()
    predict = spec["paths"]["/v1/models/{model_id}/predict"]["post"]
    reference = predict["requestBody"]["content"]["application/json"]["schema"]
    assert reference == {"$ref": "#/components/schemas/PredictRequest"}
    body = spec["components"]["schemas"]["PredictRequest"]
    assert set(body["properties"]) == {"inputs", "top_k"} and body["required"] == ["inputs"]
    answer = predict["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer["$ref"].endswith("/PredictResponse")
