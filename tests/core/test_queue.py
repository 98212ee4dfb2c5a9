"""The Celery side of a job: by name, JSON, to its queue, with a hard time limit as backstop."""

from pathlib import Path
from typing import Any

import pytest

from core.queue import RUN_JOB_TASK, JobQueue, broker_transport_options, make_celery
from core.settings import Settings


def test_a_job_is_sent_by_task_name_with_its_hard_time_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, job_time_limit_s=3600, time_limit_grace_s=60)
    app = make_celery(settings)
    sent: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    queue = JobQueue(app, settings)
    queue.enqueue("a" * 32, queue="gpu", time_limit_s=120, priority="high")
    queue.enqueue("b" * 32, queue="cpu")
    assert [(name, options["args"], options["queue"]) for name, options in sent] == [
        (RUN_JOB_TASK, ["a" * 32], "gpu"),
        (RUN_JOB_TASK, ["b" * 32], "cpu"),
    ]
    assert [options["time_limit"] for _, options in sent] == [180, 3660]
    assert [options["priority"] for _, options in sent] == [0, 3]  # Redis takes 0 first


def test_a_stored_job_is_sent_again_with_its_own_time_limit_and_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path, job_time_limit_s=3600, time_limit_grace_s=60)
    app = make_celery(settings)
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append(options))
    queue = JobQueue(app, settings)
    queue.send_again("a" * 32, "gpu", {"time_limit_s": 120, "priority": "low", "model": {}})
    queue.send_again("b" * 32, "cpu", {"model": {}})  # a request that left both out
    assert [(o["args"], o["queue"], o["time_limit"], o["priority"]) for o in sent] == [
        (["a" * 32], "gpu", 180, 6),
        (["b" * 32], "cpu", 3660, 3),
    ]


def test_redis_messages_stay_invisible_longer_than_a_job_may_run(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, broker_url="redis://127.0.0.1:6379/0", broker_visibility_timeout_s=9e5
    )
    options = broker_transport_options(settings)
    assert options["visibility_timeout"] == 9e5
    assert options["queue_order_strategy"] == "priority" and options["priority_steps"] == [0, 3, 6]
    assert make_celery(settings).conf.task_acks_late is True


def test_worker_children_can_be_bounded_in_memory(tmp_path: Path) -> None:
    assert make_celery(Settings(data_dir=tmp_path)).conf.worker_max_memory_per_child is None
    bounded = Settings(data_dir=tmp_path, worker_max_memory_mb=4096)
    assert make_celery(bounded).conf.worker_max_memory_per_child == 4096 * 1024
