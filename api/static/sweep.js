// A sweep: its trials (each an ordinary job), and Optuna's own plots of the search (GET
// /v1/jobs/{id}/sweep-plots answers them as plotly figures): the optimisation history, the
// parallel coordinates of the values tried, and each trial's per-epoch metric (pruning at work).
"use strict";

import {cell, el, errorText, fmt, getJSON} from "./common.js";

const PLOTS = [
  ["optimization_history", "Optimisation history"],
  ["parallel_coordinate", "Parallel coordinates"],
  ["intermediate_values", "Each trial's metric per epoch"],
];

function readPath(params, path) {
  return path.split(".").reduce((node, key) => (node == null ? undefined : node[key]), params);
}

function trialsTable(sweep, trials) {
  const settings = sweep.params.sweep;
  const paths = Object.keys(settings.space ?? {});
  const metric = settings.metric ?? "val_acc";
  const best = sweep.result?.best_trial;
  const rows = trials.map((trial, number) => el("tr", {class: trial.id === best ? "best" : null},
    el("td", {class: "number"}, number),
    el("td", {}, el("a", {href: `#job=${trial.id}`}, trial.id.slice(0, 12))),
    el("td", {class: trial.status}, trial.result?.pruned ? `pruned at epoch ${trial.result.at_epoch}` : trial.status),
    paths.map((path) => cell(readPath(trial.params, path))),
    cell(trial.metrics[metric]),
    el("td", {class: "number"}, `${trial.progress.epoch}/${trial.progress.epochs}`)));
  return el("table", {id: "trials"},
    el("tr", {}, el("th", {}, "#"), el("th", {}, "trial"), el("th", {}, "status"),
      paths.map((path) => el("th", {}, path)), el("th", {class: "number"}, metric), el("th", {}, "epochs")),
    rows);
}

export async function sweepSection(section, sweep) {
  const settings = sweep.params.sweep;
  const page = await getJSON(`/v1/jobs?parent=${sweep.id}&limit=500`);
  const trials = [...page.items].reverse();  // oldest first: trial 0 is the first asked
  const summary = sweep.result?.best_trial
    ? el("p", {}, `Best trial: `, el("a", {href: `#job=${sweep.result.best_trial}`}, sweep.result.best_trial.slice(0, 12)),
      `, ${settings.metric} ${fmt(sweep.result.best_value)} with ${JSON.stringify(sweep.result.best_params)}`)
    : el("p", {class: "muted"}, "No best trial yet.");
  const charts = el("div", {class: "charts"});
  section.replaceChildren(
    el("h3", {}, `Sweep: ${settings.search ?? ""} search, ${page.total} trial(s) by ${settings.metric}`),
    summary, trialsTable(sweep, trials), charts);
  try {
    await drawSweepPlots(charts, sweep.id);
  } catch (error) {
    charts.replaceChildren(errorText(error));
  }
}

async function drawSweepPlots(container, sweepId) {
  const answer = await getJSON(`/v1/jobs/${sweepId}/sweep-plots`);
  if (!answer.complete) {
    container.replaceChildren(el("p", {class: "muted"}, "Optuna's plots appear once a trial has finished with a value."));
    return;
  }
  container.replaceChildren(el("p", {class: "muted", style: "width: 100%"},
    `Optuna's plots: ${answer.complete} of ${answer.trials} trial(s) finished with a value; ${answer.metric}, ${answer.direction}.`));
  for (const [name, title] of PLOTS) {
    const figure = answer.plots[name];
    if (!figure || !figure.data?.length) continue;
    const div = el("div", {id: `sweep-${name}`, class: "chart wide"});
    container.append(div);
    try {
      await window.Plotly.newPlot(div, figure.data, {...figure.layout, title: {text: title}},
        {responsive: true, displaylogo: false});
    } catch (error) {  // parallel coordinates draw with WebGL, which a browser may lack
      div.replaceChildren(el("p", {class: "muted"}, `${title}: ${error.message ?? error}`));
    }
  }
}
