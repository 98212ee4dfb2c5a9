"""GET /: the page, in a real browser (headless Chromium), shows what the service holds: a job's
curves on real axes and its per-layer norms on log axes, the views inside the net it trained,
an experiment's runs compared, a k-fold job's folds, a sweep's Optuna plots, a recipe launched
beside the book's numbers, and a digit drawn for a model; and it fetches nothing from outside."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from core.db import Database
from core.jobs import metrics, queries
from core.settings import Settings
from tests.api.browser import Browser, Page, chromium
from tests.api.conftest import Trained
from tests.api.test_sweep_plots import add_sweep_with_trials
from tests.conftest import RecordingQueue
from tests.factories import add_job
from tests.live_server import serve

PALETTE = {
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
}
EXTERNAL = re.compile(r"""(src|href|url)\s*[=(]\s*["']?(https?:)?//""", re.IGNORECASE)


def test_the_page_and_its_files_name_no_outside_resource(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert 'href="/docs"' in response.text
    files = re.findall(r"""(?:src|href)="(/ui/[^"]+)\"""", response.text)
    assert "/ui/plotly.min.js" in files and "/ui/main.js" in files
    modules = re.findall(r"""from "\./([a-z]+\.js)\"""", client.get("/ui/main.js").text)
    assert {"job.js", "draw.js", "experiments.js", "models.js"} <= set(modules)
    for path in [*files, *(f"/ui/{name}" for name in modules)]:
        answer = client.get(path)
        assert answer.status_code == 200, path
        if path != "/ui/plotly.min.js":
            assert "://" not in answer.text, path  # no CDN, no outside URL of any kind
    assert not EXTERNAL.search(response.text)
    plotly = client.get("/ui/plotly.min.js")
    assert plotly.headers["content-type"].startswith("text/javascript")
    again = client.get("/ui/plotly.min.js", headers={"If-None-Match": plotly.headers["etag"]})
    assert again.status_code == 304 and not again.content  # its 5 MB travel once
    assert client.get("/ui/../routes/ui.py").status_code == 404
    assert client.get("/ui/secret.py").status_code == 404


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


def live_app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    app.state.job_queue = RecordingQueue()
    return app


@pytest.fixture
def base_url(settings: Settings, sqlite_db: Database) -> Iterator[str]:
    with serve(live_app(settings)) as url:
        yield url


def only_local(page: Page, base_url: str) -> None:
    """Every request the page made went to the service itself."""
    outside = [url for url in page.requested if not url.startswith((base_url, "data:", "blob:"))]
    assert outside == []
    assert page.errors == []


def colours_in(png: bytes) -> set[str]:
    """The chart palette's colours found in a screenshot."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    found = {f"#{r:02x}{g:02x}{b:02x}" for _, (r, g, b) in image.getcolors(maxcolors=1 << 22)}
    return found & PALETTE


def traces(page: Page, chart: str) -> int:
    return int(page.evaluate(f"document.getElementById('{chart}').data.length"))


def add_finished_job(
    db: Database, *, experiment: str, epochs: list[dict[tuple[str, str], float]], **overrides: Any
) -> str:
    with db.transaction() as session:
        job = add_job(session, experiment=experiment, **overrides)
        queries.mark_running(session, job=job, worker="w", device="cpu")
        for epoch, values in enumerate(epochs, start=1):
            metrics.record_epoch(session, job_id=job.id, epoch=epoch, step=epoch, values=values)
        queries.finish_job(session, job=job, status="succeeded", result={"test_acc": 0.7512345678})
        return job.id


def test_a_finished_job_shows_its_curves_on_real_axes_and_numbers_people_read(
    browser: Browser, base_url: str, sqlite_db: Database
) -> None:
    epochs = [
        {
            ("train", "loss"): 2.3 / epoch,
            ("train", "acc"): 0.3 * epoch,
            ("val", "acc"): 0.25 * epoch,
        }
        for epoch in (1, 2, 3)
    ]
    job_id = add_finished_job(sqlite_db, experiment="browser-check", epochs=epochs)
    with browser.page(f"{base_url}/") as page:
        page.wait_for(f"document.body.innerText.includes('{job_id[:12]}')")
        assert "browser-check (1)" in page.text("#experiments")
        page.goto(f"{base_url}/#job={job_id}")
        page.wait_for("document.getElementById('curve-acc')?.data?.length === 2")
        assert page.text("#status") == "succeeded"
        assert traces(page, "curve-loss") == 1
        ticks = page.evaluate(
            "Array.from(document.querySelectorAll('#curve-acc .xtick text')).map(t => t.textContent)"
        )
        assert ticks[:3] == ["1", "2", "3"]  # every epoch labelled, not only min and max
        assert page.evaluate("document.querySelectorAll('#curve-acc .ytick').length") >= 4
        assert "epoch" in page.text("#curve-acc")
        result = page.text("#result")
        assert "0.7512" in result and "0.7512345678" not in result  # 4 significant digits
        assert "s left" not in page.text()  # a finished job has nothing left to run
        assert page.evaluate("document.getElementById('confusion')") is None  # no model: no view
        assert colours_in(page.screenshot("#curve-acc")) >= {"#1f77b4", "#ff7f0e"}
        only_local(page, base_url)


@pytest.fixture(scope="module")
def trained_url(trained: Trained) -> Iterator[str]:
    app = live_app(trained.client.app.state.settings)  # type: ignore[attr-defined]
    with serve(app) as url:
        yield url


def test_a_trained_job_shows_its_layer_norms_on_log_axes_and_the_views_inside_its_net(
    browser: Browser, trained_url: str, trained: Trained
) -> None:
    rows = trained.client.get(f"/v1/jobs/{trained.job_id}/metrics").json()
    parameters = {
        r["name"] for r in rows if r["split"] == "layers" and r["name"].startswith("grad_norm:")
    }
    assert len(parameters) >= 6  # LeNet's conv and dense weights and biases
    with browser.page(f"{trained_url}/#job={trained.job_id}", height=1600) as page:
        page.wait_for("document.getElementById('layers-grad_norm')?.data?.length > 0")
        for chart in ("layers-grad_norm", "layers-weight_norm"):
            assert traces(page, chart) == len(parameters)  # a line per parameter tensor
            axis = page.evaluate(f"document.getElementById('{chart}')._fullLayout.yaxis.type")
            assert axis == "log"
        legend = page.text("#layers-grad_norm .legend")
        assert all(name.removeprefix("grad_norm:") in legend for name in parameters)
        assert len(colours_in(page.screenshot("#layers-grad_norm"))) >= min(len(parameters), 10) - 2

        confusion = trained.client.get(f"/v1/jobs/{trained.job_id}/confusion").json()
        worst = trained.client.get(f"/v1/jobs/{trained.job_id}/top-losses").json()["items"][0]
        page.wait_for("document.getElementById('confusion-chart')?.data?.length === 1")
        drawn = page.evaluate("document.getElementById('confusion-chart').data[0].z")
        assert sorted(map(sorted, drawn)) == sorted(map(sorted, confusion["matrix"]))
        image = Image.open(io.BytesIO(page.screenshot("#confusion-chart"))).convert("RGB")
        dark = sum(n for n, (r, g, b) in image.getcolors(maxcolors=1 << 22) if b > 120 > r + g)
        assert dark > 0.04 * image.width * image.height  # a trained net: its diagonal, dark
        shown = format(float(format(confusion["accuracy"], ".4g")), "g")  # as the page's fmt
        assert f"accuracy {shown}" in page.text("#inside")
        page.wait_for("document.querySelectorAll('#inside .tile canvas').length >= 3")
        assert f"said {worst['prediction']}" in page.text("#inside")
        page.wait_for("document.querySelectorAll('#feature-maps-body canvas').length > 2")
        assert "Conv2d" in page.text("#feature-maps-body")
        only_local(page, trained_url)


def test_drawing_strokes_on_the_canvas_gives_top_k_bars_and_states_the_polarity(
    browser: Browser, trained_url: str, trained: Trained
) -> None:
    with browser.page(f"{trained_url}/#draw={trained.model_id}", height=1400) as page:
        page.wait_for("document.getElementById('draw-canvas')")
        polarity = page.text("#polarity")
        assert "raw values 0 to 16" in polarity and "light strokes on a dark ground" in polarity
        page.drag("#draw-canvas", [(0.5, 0.15), (0.5, 0.4), (0.5, 0.6), (0.5, 0.85)])  # a "1"
        page.wait_for("document.querySelectorAll('#topk-chart .barlayer .point').length === 5")
        bars = page.evaluate("document.getElementById('topk-chart').data[0].x")
        assert bars == sorted(bars) and 0 < sum(bars) <= 1.0001  # probabilities, best on top
        assert page.text("#draw-status").startswith("It says ")
        assert "#1f77b4" in colours_in(page.screenshot("#topk-chart"))
        drawn = page.evaluate(
            "(() => { const c = document.getElementById('draw-canvas').getContext('2d');"
            " return c.getImageData(140, 140, 1, 1).data[0]; })()"
        )
        assert drawn == 255  # the stroke is on the board, white on black
        only_local(page, trained_url)


def test_an_experiment_compares_its_runs_by_the_settings_that_differ(
    browser: Browser, base_url: str, sqlite_db: Database
) -> None:
    for lr, level in ((0.1, 0.5), (0.3, 0.8)):
        epochs = [
            {("val", "acc"): level * epoch / 2, ("train", "loss"): 1 / epoch} for epoch in (1, 2)
        ]
        add_finished_job(
            sqlite_db, experiment="lr-study", epochs=epochs, hyperparameters={"epochs": 2, "lr": lr}
        )
    with browser.page(f"{base_url}/#experiment=lr-study") as page:
        page.wait_for("document.getElementById('overlay-chart')?.data?.length === 2")
        comparison = page.text("#comparison")
        assert "Settings that differ between the runs: hyperparameters.lr" in comparison
        header = page.evaluate(
            "Array.from(document.querySelectorAll('#comparison th')).map(t => t.textContent)"
        )
        assert "hyperparameters.lr" in header
        first = page.evaluate("document.querySelector('#comparison tr.best').innerText")
        assert "0.3" in first  # the better run (val_acc 0.8) ranks first
        legend = page.text("#overlay-chart .legend")
        assert "lr=0.1" in legend and "lr=0.3" in legend
        only_local(page, base_url)


def test_a_kfold_job_shows_each_candidates_mean_and_spread_over_its_folds(
    browser: Browser, base_url: str, sqlite_db: Database
) -> None:
    folds = {"c0": [0.80, 0.82, 0.84], "c1": [0.90, 0.91, 0.92]}
    candidates = [
        {
            "index": index,
            "label": label,
            "tag": tag,
            "folds": [
                {
                    "fold": f + 1,
                    "epochs": 2,
                    "train_loss": 0.3,
                    "train_acc": 0.9,
                    "val_loss": 0.4,
                    "val_acc": v,
                }
                for f, v in enumerate(values)
            ],
            "mean_val_acc": sum(values) / 3,
            "std_val_acc": 0.02 if tag == "c0" else 0.01,
            "mean_val_loss": 0.4,
            "std_val_loss": 0.0,
            "mean_train_acc": 0.9,
            "std_train_acc": 0.0,
            "mean_train_loss": 0.3,
            "std_train_loss": 0.0,
        }
        for index, (label, (tag, values)) in enumerate(zip(("small", "wide"), folds.items()))
    ]
    spec = {
        "kind": "kfold",
        "kfold": {"k": 3, "candidates": [{"label": "small"}, {"label": "wide"}]},
    }
    with sqlite_db.transaction() as session:
        job = add_job(session, experiment="kfold", **spec)
        for tag, values in folds.items():
            for fold, value in enumerate(values, start=1):
                for epoch in (1, 2):
                    metrics.record_epoch(
                        session,
                        job_id=job.id,
                        epoch=epoch,
                        step=epoch,
                        values={(f"{tag}/f{fold}/val", "acc"): value * epoch / 2},
                    )
        result = {"k": 3, "select_by": "val_acc", "candidates": candidates, "winner": "wide"}
        queries.finish_job(session, job=job, status="succeeded", result=result)
        job_id = job.id
    with browser.page(f"{base_url}/#job={job_id}") as page:
        page.wait_for("document.getElementById('folds-chart')?.data?.length === 6")
        table = page.text("#candidates")
        assert "0.8200 ± 0.0200" in table and "0.9100 ± 0.0100" in table
        assert "wide (chosen)" in page.text("#candidates tr.best")
        legend = page.text("#folds-chart .legend")
        assert "small" in legend and "wide" in legend
        only_local(page, base_url)


def test_a_finished_sweep_shows_its_trials_and_optunas_plots_not_a_time_left(
    browser: Browser, base_url: str, sqlite_db: Database
) -> None:
    sweep_id = add_sweep_with_trials(sqlite_db)
    with browser.page(f"{base_url}/#job={sweep_id}", height=1600) as page:
        page.wait_for("document.getElementById('sweep-optimization_history')?.data?.length > 0")
        history = page.evaluate("document.getElementById('sweep-optimization_history').data")
        values = sorted(v for trace in history for v in trace["y"] if v is not None)
        assert {0.6, 0.9, 0.75} <= set(values)
        intermediate = page.evaluate("document.getElementById('sweep-intermediate_values').data")
        assert len([trace for trace in intermediate if len(trace["x"]) == 3]) == 3
        assert len(page.evaluate("Array.from(document.querySelectorAll('#trials tr'))")) == 4
        assert "s left" not in page.text()
        assert "No epoch recorded" not in page.text()
        only_local(page, base_url)


def test_the_recipe_form_launches_a_recipe_with_the_books_numbers_beside_it(
    browser: Browser, base_url: str
) -> None:
    with browser.page(f"{base_url}/#recipes=lenet") as page:
        page.wait_for("document.getElementById('book-panel')")
        panel = page.text("#book-panel")
        assert "7.6 LeNet" in panel and "0.779" in panel  # the book's test accuracy
        assert page.evaluate("document.getElementById('variant').value") == "digits"
        page.evaluate("document.getElementById('epochs').value = '30'")
        page.evaluate("document.getElementById('launch').requestSubmit()")
        page.wait_for("location.hash.startsWith('#job=') && document.getElementById('book')")
        book = page.text("#book")
        assert "The book's numbers: 7.6" in book and "0.779" in book
        job_id = page.evaluate("location.hash.slice(5)")
        job = page.evaluate(f"fetch('/v1/jobs/{job_id}').then(r => r.json())")
        assert job["params"]["recipe"] == "lenet" and job["params"]["recipe_variant"] == "digits"
        assert job["params"]["hyperparameters"]["epochs"] == 30
        only_local(page, base_url)
