"""Settings of both processes, read once from `D2L_*` environment variables.

Nothing else in the code reads `os.environ`: values are passed down from `get_settings()`.
The defaults give the embedded mode (SQLite file, filesystem broker, artifacts on disk, all under
`D2L_DATA_DIR`), so the service runs on a fresh machine with no server installed.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "d2l-service"


class Settings(BaseSettings):
    """Every knob of the service; see README.md for what each one is for."""

    model_config = SettingsConfigDict(env_prefix="D2L_", extra="ignore", frozen=True)

    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""
    broker_url: str = ""
    artifact_dir: Path | None = None
    artifact_url: str = Field(
        default="",
        description="Store checkpoints under this fsspec URL instead of artifact_dir: "
        "s3://bucket/prefix (S3 or MinIO; the `s3` extra), or memory:// in tests. Empty: the "
        "directory artifact_dir.",
    )
    artifact_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options for artifact_url's filesystem as JSON, e.g. "
        '{"endpoint_url": "http://minio:9000"} for s3fs. Credentials come from the standard '
        "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables (or may be given here).",
    )
    inference_device: str = "cpu"
    model_cache_size: int = Field(default=8, ge=1, le=1024)
    model_cache_bytes: int = Field(
        default=2 * 2**30,
        ge=1,
        description="Most bytes of weights the API keeps loaded; least recently used go first.",
    )
    predict_max_batch: int = Field(
        default=32, ge=1, le=4096, description="Most samples one batched forward pass takes."
    )
    predict_max_wait_ms: float = Field(
        default=2.0,
        ge=0.0,
        le=100.0,
        description="How long a batch waits to gather concurrent requests (only under load).",
    )
    heartbeat_timeout_s: float = Field(
        default=60.0,
        ge=2.0,
        le=86_400.0,
        description="A running job whose heartbeat is older than this is re-queued (or failed).",
    )
    max_attempts: int = Field(
        default=3, ge=1, le=100, description="Deliveries of one job before it is failed."
    )
    job_time_limit_s: float = Field(
        default=86_400.0,
        ge=1.0,
        description="Longest a job may train per attempt (a job may ask for less): it then stops "
        "at its next step, keeping its checkpoints.",
    )
    time_limit_grace_s: float = Field(
        default=120.0,
        ge=1.0,
        description="After the time limit, this long before Celery kills a job that will not stop.",
    )
    broker_visibility_timeout_s: float = Field(
        default=2 * 86_400.0,
        ge=1.0,
        description="Redis: how long a taken message stays invisible before it is redelivered.",
    )
    worker_max_memory_mb: int = Field(
        default=0,
        ge=0,
        description="Replace a worker child whose resident memory passed this after a job "
        "(leaks from one job never reach the next); 0: no bound.",
    )
    auth: bool = Field(
        default=False,
        description="on: every endpoint but health, readiness and the docs needs an API token "
        "(`d2l-service token create`), and each owner sees only their own jobs, datasets and "
        "models.",
    )
    submit_rate_per_minute: int = Field(
        default=60,
        ge=0,
        description="Most jobs one owner may submit in any 60 s (429 beyond); 0: no bound.",
    )
    max_queued_per_owner: int = Field(
        default=100,
        ge=0,
        description="Most jobs one owner may have waiting in the queue (429 beyond); 0: no bound.",
    )
    republish_queued_after_s: float = Field(
        default=120.0,
        ge=1.0,
        le=86_400.0,
        description="A job queued this long since its message was sent is sent again when the "
        "broker holds fewer messages on its queue than jobs wait there (the broker lost some).",
    )
    leftover_age_s: float = Field(
        default=3600.0,
        ge=60.0,
        description="Temp files, upload staging folders and weights files with no row, older "
        "than this, are removed when a worker or the API starts (younger ones may be a write "
        "under way on another machine).",
    )
    log_level: LogLevel = "INFO"
    torch_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="Intra-op threads per process; 0 keeps torch's default.",
    )
    download_datasets: bool = Field(
        default=False,
        description="Let torchvision download MNIST, Fashion-MNIST, CIFAR-10 into datasets_dir.",
    )
    request_max_bytes: int = Field(
        default=64 * 2**20,
        ge=1024,
        description="Largest request body other than an upload (JSON jobs and predictions).",
    )
    upload_max_bytes: int = Field(
        default=256 * 2**20, ge=1, description="Largest dataset upload accepted, in bytes."
    )
    upload_max_members: int = Field(
        default=100_000, ge=1, description="Most files and folders an uploaded archive may hold."
    )
    upload_max_expanded_bytes: int = Field(
        default=2 * 2**30,
        ge=1,
        description="Most bytes an upload may expand to: extracted files, or decoded images.",
    )
    upload_max_image_pixels: int = Field(
        default=4096 * 4096, ge=1, description="Most pixels of one uploaded or predicted image."
    )
    predict_max_samples: int = Field(
        default=4096,
        ge=1,
        description="Most samples (rows, or image files) one predict request may carry (413 "
        "beyond); a whole dataset is predicted by a predict job.",
    )
    upload_max_upscale: float = Field(
        default=16.0,
        ge=1.0,
        description="Most times an image upload's `size` may enlarge the decoded pixels it "
        "stores (413 beyond): upscaling belongs to the job's input_size, not to storage.",
    )
    weights_max_bytes: int = Field(
        default=2**30,
        ge=1,
        description="Most bytes an uploaded state_dict may expand to, and the most bytes of "
        "weights the net it describes may have (413 beyond).",
    )
    storage_quota_bytes: int = Field(
        default=10 * 2**30,
        ge=0,
        description="Most bytes of uploaded datasets and weights one owner may store (413 "
        "beyond); 0: no bound.",
    )
    api_threads: int = Field(
        default=16,
        ge=1,
        le=1024,
        description="Threads of an API process for blocking work (database, files); its "
        "database pool holds as many connections (and 4 more), so a request never waits for one.",
    )
    db_pool_timeout_s: float = Field(
        default=2.0,
        gt=0.0,
        le=60.0,
        description="How long an API request waits for a database connection before it is "
        "answered 503 with Retry-After.",
    )
    cpu_workers: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Charts, sweep checks, exports and parameter tables an API process computes "
        "at once; more wait their turn without holding a thread or a connection.",
    )
    query_max_values: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="Most values one query parameter may list (a repeated `metric`, "
        "comma-separated `names`); 422 beyond.",
    )
    sweep_max_trials: int = Field(
        default=1000, ge=1, le=1000, description="Most trials one sweep may ask for; 422 beyond."
    )
    sweep_max_space_values: int = Field(
        default=200,
        ge=1,
        le=1000,
        description="Most values a sweep's space may list in all (a range counts 2), each "
        "checked as a job at submission; 422 beyond.",
    )
    max_model_parameters: int = Field(
        default=250_000_000,
        ge=1,
        description="Most parameters a submitted job's net may have (each k-fold candidate and "
        "sweep value too): 250 M is 1 GB of fp32 weights, twice the course's VGG-11.",
    )
    resident_data_max_bytes_cpu: int = Field(
        default=8 * 2**30,
        ge=0,
        description="A CPU job holds its dataset's raw samples in memory up to this many bytes; "
        "a larger dataset streams from disk through loader processes.",
    )
    resident_data_max_bytes_gpu: int = Field(
        default=4 * 2**30,
        ge=0,
        description="A GPU job holds its dataset's raw samples on the GPU up to this many bytes "
        "(counted in the job's GPU memory); a larger dataset streams from disk.",
    )
    data_loader_workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Processes that read a streamed dataset's minibatches from disk (0: the "
        "training process reads them itself).",
    )

    inside_max_channels: int = Field(
        default=64,
        ge=1,
        le=4096,
        description="Most channels of one layer a feature-maps or filters answer carries "
        "(`channels`, default 16; 422 beyond).",
    )
    inside_max_pixels: int = Field(
        default=4096,
        ge=1,
        le=2**20,
        description="Most pixels of one feature map in an answer; a larger map is average-pooled "
        "to fit (its `pooled_by` says by how much).",
    )
    inside_max_test_examples: int = Field(
        default=10_000,
        ge=1,
        le=10_000_000,
        description="Most test examples a confusion matrix or top-losses answer evaluates (the "
        "first of the split; `cut` says when there were more).",
    )
    inside_max_top_losses: int = Field(
        default=64,
        ge=1,
        le=10_000,
        description="Most examples one top-losses answer lists (`limit`, default 16; 422 beyond).",
    )

    @field_validator("data_dir", "artifact_dir")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        path = path.expanduser()
        if not path.is_absolute():
            raise ValueError(f"must be an absolute path, got {str(path)!r}")
        return path

    @field_validator("artifact_url")
    @classmethod
    def _artifact_url(cls, url: str) -> str:
        if not url:
            return url
        scheme, separator, rest = url.partition("://")
        if not separator or not scheme or not rest:
            raise ValueError(f"must be a URL such as s3://bucket/prefix, got {url!r}")
        if scheme == "file" and not rest.startswith("/"):
            raise ValueError(f"a file:// URL needs an absolute path, got {url!r}")
        if scheme in ("s3", "s3a") and importlib.util.find_spec("s3fs") is None:
            raise ValueError("s3:// needs s3fs: pip install 'd2l-service[s3]'")
        return url

    @field_validator("inference_device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if device != "cpu" and device != "cuda" and not device.startswith("cuda:"):
            raise ValueError(f"must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        return device

    @model_validator(mode="after")
    def _embedded_defaults(self) -> Settings:
        # Empty URLs mean "the embedded default under data_dir"; frozen, so set through object.
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.data_dir / 'd2l.sqlite3'}")
        if not self.broker_url:
            object.__setattr__(self, "broker_url", "filesystem://")
        if self.artifact_dir is None:
            object.__setattr__(self, "artifact_dir", self.data_dir / "artifacts")
        return self

    @model_validator(mode="after")
    def _visibility_outlasts_jobs(self) -> Settings:
        # Redis hands an unacknowledged message to another worker after the visibility timeout:
        # shorter than a job may run, and a healthy long job would be trained twice at once.
        longest = self.job_time_limit_s + self.time_limit_grace_s
        if self.broker_url.startswith("redis") and self.broker_visibility_timeout_s <= longest:
            raise ValueError(
                f"broker_visibility_timeout_s ({self.broker_visibility_timeout_s:g}) must be "
                f"longer than job_time_limit_s + time_limit_grace_s ({longest:g})"
            )
        return self

    def hard_time_limit(self, job_limit_s: float | None) -> float:
        """When Celery kills a job's process: its own (soft) limit, or the default, plus grace."""
        return (job_limit_s or self.job_time_limit_s) + self.time_limit_grace_s

    @property
    def broker_dir(self) -> Path:
        """Where the filesystem broker keeps its messages (embedded mode only)."""
        return self.data_dir / "broker"

    @property
    def datasets_dir(self) -> Path:
        """Where dataset files live (torchvision's layout for MNIST, CIFAR-10, ...)."""
        return self.data_dir / "datasets"

    @property
    def artifacts(self) -> Path:
        """The artifact directory, never None after validation."""
        assert self.artifact_dir is not None
        return self.artifact_dir

    @property
    def embedded_broker(self) -> bool:
        """True when the broker is the serverless filesystem transport."""
        return self.broker_url.startswith("filesystem://")

    def apply_torch_threads(self) -> None:
        """Cap torch's thread pool: API and worker share the cores of a small machine."""
        if self.torch_threads:
            import torch

            torch.set_num_threads(self.torch_threads)

    def ensure_dirs(self) -> None:
        """Create the directories the embedded mode writes to."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        if self.embedded_broker:
            (self.broker_dir / "queue").mkdir(parents=True, exist_ok=True)
            for folder in ("processed", "control"):
                (self.broker_dir / folder).mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    """The process's settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
