// One job's page: what it is, its progress while it runs, the book's numbers beside its own,
// its result, its curves and per-layer norms, and (by what the job holds) its k-fold folds, its
// sweep's trials, and the views inside the net it trained.
"use strict";

import {cell, content, el, fmt, fmtAny, getJSON, table} from "./common.js";
import {curveCharts, foldsSection, layerNormCharts, seriesOf} from "./curves.js";
import {insideSection} from "./inside.js";
import {sweepSection} from "./sweep.js";

const ACTIVE = ["queued", "running"];
const MAX_POINTS = 500;  // per series: a long run's curves stay light
let stream = null;

export function leaveJob() {
  if (stream) { stream.close(); stream = null; }
}

function describe(job) {
  const params = job.params;
  const what = params.recipe ? `recipe ${params.recipe}${params.recipe_variant ? ` (${params.recipe_variant})` : ""}: ` : "";
  const arch = params.model?.arch ?? (params.model_ref ? `model ${params.model_ref}` : "");
  return `${what}${job.kind} ${arch} on ${params.dataset?.name ?? "-"}`;
}

function bookSection(book) {
  const keys = Object.keys(book.ours);
  const rows = keys.map((key) => el("tr", {}, el("td", {}, key), cell(book.book[key]), cell(book.ours[key])));
  const verdict = (check) => check.within == null ? el("td", {class: "muted"}, "pending")
    : el("td", {class: check.within ? "within" : "outside"}, check.within ? "within" : "outside");
  const checks = book.checks.map((check) => el("tr", {},
    el("td", {}, check.metric), el("td", {}, check.expected), cell(check.ours), verdict(check),
    el("td", {class: "muted"}, check.why)));
  return el("div", {id: "book"},
    el("h3", {}, `The book's numbers: ${book.chapter} ${book.title}`),
    el("p", {}, `The book printed: ${book.book_printed}`),
    table(["quantity", "book", "this job"], rows, {numeric: ["book", "this job"]}),
    book.checks.length ? table(["check", "expected", "this job", "verdict", "why"], checks) : "",
    book.overrides.length ? el("p", {class: "note"}, `This job changed the recipe (the book's numbers assume it did not): ${book.overrides.join("; ")}`) : "");
}

// The result's numbers as a table; what is nested (candidates, trials, warnings) is shown by
// its own section, or as JSON under "everything".
function resultSection(job) {
  const result = job.result;
  if (!result && !job.error) return el("div", {id: "result"});
  const scalars = Object.entries(result ?? {}).filter(([, v]) => typeof v !== "object" || v === null);
  const lists = Object.entries(result ?? {}).filter(([, v]) => Array.isArray(v) && v.every((x) => typeof x !== "object"));
  const rows = [...scalars, ...lists].map(([key, value]) => el("tr", {}, el("td", {}, key), cell(value)));
  return el("div", {id: "result"},
    el("h3", {}, "Result"),
    job.error ? el("p", {class: "error"}, job.error) : "",
    rows.length ? table(["", "value"], rows) : "",
    (result?.warnings ?? []).map((warning) => el("p", {class: "note"}, fmtAny(warning))),
    el("details", {}, el("summary", {}, "everything (JSON)"), el("pre", {}, JSON.stringify(result, null, 2))));
}

function latestSection(job) {
  const entries = Object.entries(job.metrics).filter(([key]) => !key.includes("/"));
  if (!entries.length) return "";
  return el("p", {id: "latest"}, `Epoch ${job.progress.epoch}: `,
    entries.map(([key, value]) => `${key} ${fmt(value)}`).join(", "));
}

function progressLine(job) {
  if (!ACTIVE.includes(job.status)) return el("p", {id: "progress"});
  return el("p", {id: "progress"},
    el("progress", {max: job.progress.epochs || 1, value: job.progress.epoch}), " ",
    el("span", {id: "eta"}, `epoch ${job.progress.epoch}/${job.progress.epochs}`));
}

export async function showJob(jobId) {
  const job = await getJSON(`/v1/jobs/${jobId}`);
  const status = el("span", {class: job.status, id: "status"}, job.status);
  const curves = el("div", {id: "curves", class: "charts"});
  const layers = el("div", {id: "layer-norms", class: "charts"});
  const folds = el("div", {id: "kfold"});
  const sweep = el("div", {id: "sweep"});
  const inside = el("div", {id: "inside"});
  const model = job.model_id ? el("span", {}, " · model ", el("a", {href: `#draw=${job.model_id}`}, job.model_id.slice(0, 12)), " (draw a digit for it)") : "";
  content().replaceChildren(
    el("h2", {id: "job-title"}, `Job ${job.id}`),
    el("p", {}, describe(job), ", experiment ",
      el("a", {href: `#experiment=${encodeURIComponent(job.experiment)}`}, job.experiment), ": ", status, model),
    progressLine(job), latestSection(job),
    job.book ? bookSection(job.book) : "",
    resultSection(job),
    el("div", {id: "curves-section"}, el("h3", {}, "Learning curves"), curves),
    el("div", {id: "layers-section"}, el("h3", {}, "Gradient and weight norms per layer"),
      el("p", {class: "muted"}, "Measured on each epoch's last step. Lines decades apart are the vanishing (or exploding) gradients of ch. 5.4."), layers),
    folds, sweep, inside,
    el("p", {}, el("a", {href: `/v1/jobs/${job.id}/curves.png`}, "curves.png"), " · ",
      el("a", {href: `/v1/jobs/${job.id}/logs`}, "logs"), " · ",
      el("a", {href: `/v1/jobs/${job.id}/metrics`}, "metrics JSON"), " · ",
      el("a", {href: `/v1/jobs/${job.id}`}, "job JSON")));
  const series = await drawMetrics(job, curves, layers);
  if (job.params.kfold || job.result?.candidates) foldsSection(folds, job, series);
  if (job.params.sweep) await sweepSection(sweep, job);
  if (job.status === "succeeded" && job.model_id) await insideSection(inside, job);
  if (ACTIVE.includes(job.status)) follow(job, curves, layers, status);
}

async function drawMetrics(job, curves, layers) {
  const rows = await getJSON(`/v1/jobs/${job.id}/metrics?max_points=${MAX_POINTS}`);
  const series = seriesOf(rows);
  const drawn = curveCharts(curves, series);
  if (!drawn) curves.replaceChildren(el("p", {class: "muted"}, "No epoch recorded yet."));
  curves.closest("#curves-section").hidden = !drawn && Boolean(job.params.sweep);  // its trials have them
  const section = layers.closest("#layers-section");
  if (section) section.hidden = false;  // in the layout while drawn, so charts take its size
  const drawnLayers = layerNormCharts(layers, series);
  if (section) section.hidden = !drawnLayers;
  return series;
}

// While the job runs: its status, progress and curves as they come (the job's event stream);
// when it ends, the page is drawn again with its result.
function follow(job, curves, layers, status) {
  let pending = null;
  stream = new EventSource(`/v1/jobs/${job.id}/events`);
  stream.addEventListener("metrics", () => {
    clearTimeout(pending);
    pending = setTimeout(() => drawMetrics(job, curves, layers).catch(() => {}), 300);
  });
  stream.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    const bar = document.querySelector("#progress progress"), eta = document.getElementById("eta");
    if (!bar || !eta) return;
    bar.max = data.epochs; bar.value = data.epoch;
    eta.textContent = `epoch ${data.epoch}/${data.epochs}` +
      (data.epoch_steps ? `, step ${data.epoch_step}/${data.epoch_steps}` : "") +
      (data.eta_s != null ? `, about ${Math.round(data.eta_s)} s left` : "");
  });
  stream.addEventListener("status", (event) => {
    const data = JSON.parse(event.data);
    status.textContent = data.status; status.className = data.status;
  });
  stream.addEventListener("end", () => {
    leaveJob();
    clearTimeout(pending);
    if (location.hash === `#job=${job.id}`) showJob(job.id);
  });
}
