// The experiments in the side bar, the job list, and one experiment's runs compared: the
// settings that differ between them, their final metrics, and their curves overlaid.
"use strict";

import {COLOURS, axis, cell, epochAxis, content, el, errorText, fmt, getJSON, plot, table} from "./common.js";
import {seriesOf} from "./curves.js";

const OVERLAID = ["val_acc", "train_loss", "val_loss", "train_acc", "test_loss"];
const MAX_OVERLAID_RUNS = 20;

export async function showExperiments() {
  const nav = document.getElementById("experiments");
  const experiments = await getJSON("/v1/experiments");
  nav.replaceChildren(el("h3", {}, "Experiments"));
  for (const experiment of experiments) {
    nav.append(el("a", {href: `#experiment=${encodeURIComponent(experiment.name)}`},
      `${experiment.name} (${experiment.jobs})`));
  }
}

function jobsTable(items) {
  const rows = items.map((job) => el("tr", {},
    el("td", {}, el("a", {href: `#job=${job.id}`}, job.id.slice(0, 12))),
    el("td", {class: job.status}, job.status), el("td", {}, job.kind),
    el("td", {}, el("a", {href: `#experiment=${encodeURIComponent(job.experiment)}`}, job.experiment)),
    el("td", {}, job.params.recipe ?? job.params.model?.arch ?? "-"),
    el("td", {}, job.params.dataset?.name ?? "-"),
    el("td", {class: "number"}, `${job.progress.epoch}/${job.progress.epochs}`),
    cell(job.metrics.val_acc), cell(job.result?.test_acc)));
  return table(["job", "status", "kind", "experiment", "arch / recipe", "dataset", "epoch", "val_acc", "test_acc"],
    rows, {numeric: ["val_acc", "test_acc"]});
}

export async function showJobs() {
  const page = await getJSON("/v1/jobs?limit=100");
  content().replaceChildren(el("h2", {}, "Jobs"), el("p", {}, `${page.total} jobs, newest first`),
    jobsTable(page.items));
}

export async function showExperiment(name) {
  const [summary, comparison, page] = await Promise.all([
    getJSON(`/v1/experiments/${encodeURIComponent(name)}`),
    getJSON(`/v1/experiments/${encodeURIComponent(name)}/compare?limit=100`),
    getJSON(`/v1/jobs?experiment=${encodeURIComponent(name)}&limit=100`),
  ]);
  const counts = Object.entries(summary.status_counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
  const picker = el("select", {id: "overlay-metric"}, OVERLAID.map((m) => el("option", {value: m}, m)));
  const chart = el("div", {id: "overlay-chart", class: "chart wide"});
  content().replaceChildren(
    el("h2", {}, `Experiment ${name}`),
    el("p", {}, `${summary.jobs} jobs: ${counts}. `, summary.best
      ? el("span", {}, `Best by ${summary.metric}: `, el("a", {href: `#job=${summary.best.job_id}`}, summary.best.job_id.slice(0, 12)), ` (${fmt(summary.best.value)})`)
      : ""),
    el("h3", {}, "Runs compared"), comparisonTable(comparison),
    el("h3", {}, "Curves overlaid"), el("p", {}, "Metric: ", picker), chart,
    el("h3", {}, "Jobs"), jobsTable(page.items));
  const runs = comparison.runs.slice(0, MAX_OVERLAID_RUNS);
  const rows = await Promise.all(runs.map((run) =>
    getJSON(`/v1/jobs/${run.job_id}/metrics?names=${OVERLAID.join(",")}&max_points=500`).catch(() => [])));
  const series = runs.map((run, i) => ({run, series: seriesOf(rows[i])}));
  const draw = () => overlay(chart, series, picker.value, comparison.varying);
  picker.addEventListener("change", draw);
  draw();
}

function runLabel(run, varying) {
  const settings = varying.map((path) => `${path.split(".").pop()}=${JSON.stringify(run.settings[path])}`);
  return `${run.job_id.slice(0, 8)} ${settings.join(" ")}`.trim();
}

function overlay(div, runs, metric, varying) {
  const [split, name] = [metric.slice(0, metric.indexOf("_")), metric.slice(metric.indexOf("_") + 1)];
  const traces = runs.flatMap(({run, series}, i) => series
    .filter((s) => s.split === split && s.name === name)
    .map((s) => ({x: s.x, y: s.y, mode: "lines+markers", name: runLabel(run, varying), line: {color: COLOURS[i % COLOURS.length]}})));
  if (!traces.length) {
    div.replaceChildren(errorText(`no run recorded ${metric}`));
    return;
  }
  plot(div, traces, {title: {text: `${metric}, run by run`}, xaxis: epochAxis(traces.map((t) => t.x)), yaxis: axis(metric)});
}

// Ranked best first by the experiment's metric; a column for each setting that differs.
function comparisonTable(comparison) {
  const finals = [...new Set(comparison.runs.flatMap((run) => Object.keys(run.final)))]
    .filter((key) => !key.includes("/") && !key.includes("grad_norm")).sort();
  const tests = [...new Set(comparison.runs.flatMap((run) => Object.keys(run.test)))].sort();
  const headers = ["rank", "job", "status", "arch", ...comparison.varying, ...finals,
    ...tests.map((t) => `result ${t}`), "train-val gap (acc)", "parameters", "wall time (s)"];
  const rows = comparison.runs.map((run) => el("tr", {class: run.rank === 1 ? "best" : null},
    cell(run.rank), el("td", {}, el("a", {href: `#job=${run.job_id}`}, run.job_id.slice(0, 12))),
    el("td", {class: run.status}, run.status), el("td", {}, run.arch),
    comparison.varying.map((path) => el("td", {class: "setting"}, JSON.stringify(run.settings[path]) ?? "-")),
    finals.map((key) => cell(run.final[key])), tests.map((key) => cell(run.test[key])),
    cell(run.gap.acc), cell(run.parameters), cell(run.wall_time_s)));
  return el("div", {id: "comparison"},
    el("p", {}, comparison.varying.length
      ? `Settings that differ between the runs: ${comparison.varying.join(", ")}.`
      : "Every run has the same settings."),
    el("p", {class: "muted"}, `Ranked by ${comparison.metric} (${comparison.goal}); metrics of each run's last epoch.`),
    table(headers, rows));
}
