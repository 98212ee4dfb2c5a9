// A job's recorded metrics as charts: its learning curves (one chart per metric, a line per
// split), the per-layer gradient and weight norms over epochs on log axes, and a k-fold job's
// held-out curves fold by fold.
"use strict";

import {COLOURS, axis, chartDiv, el, epochAxis, logAxis, plot} from "./common.js";

const LAYERS = "layers";
const ORDER = ["loss", "acc"];  // the course's Animator: losses first, then accuracies
const natural = (a, b) => a.localeCompare(b, "en", {numeric: true});

// Rows of GET /v1/jobs/{id}/metrics -> series keyed "split|name", each {split, name, x, y}.
export function seriesOf(rows) {
  const series = new Map();
  for (const row of rows) {
    const key = `${row.split}|${row.name}`;
    if (!series.has(key)) series.set(key, {split: row.split, name: row.name, x: [], y: []});
    const line = series.get(key);
    line.x.push(row.epoch);
    line.y.push(row.value);
  }
  return [...series.values()];
}

function spansDecades(values) {
  const positive = values.filter((v) => v > 0);
  return positive.length === values.length && positive.length > 1 &&
    Math.max(...positive) / Math.min(...positive) > 1e3;
}

// One chart per metric name (loss, acc, grad_norm, ...) of the job's own splits (train, val,
// test): a k-fold job's fold splits (c0/f1/val) are drawn by foldCharts.
export function curveCharts(container, series) {
  const own = series.filter((s) => s.split !== LAYERS && !s.split.includes("/"));
  const names = [...new Set(own.map((s) => s.name))]
    .sort((a, b) => (ORDER.indexOf(a) + 1 || 99) - (ORDER.indexOf(b) + 1 || 99) || natural(a, b));
  container.replaceChildren();
  for (const name of names) {
    const lines = own.filter((s) => s.name === name);
    const div = chartDiv(`curve-${name}`);
    container.append(div);
    const log = name.includes("norm") || spansDecades(lines.flatMap((s) => s.y));
    plot(div, lines.map((s, i) => ({
      x: s.x, y: s.y, name: `${s.split}_${s.name}`, mode: s.x.length > 1 ? "lines+markers" : "markers",
      line: {color: COLOURS[i % COLOURS.length]},
    })), {
      title: {text: name === "acc" ? "accuracy" : name},
      xaxis: epochAxis(lines.map((s) => s.x)),
      yaxis: log ? logAxis(name) : axis(name),
    });
  }
  return names.length;
}

// The per-layer norms the service records every epoch (split "layers", names
// grad_norm:<parameter> and weight_norm:<parameter>), a line per parameter, on log axes: a
// sigmoid net's first layers sit decades below its last (ch. 5.4, the C14 lesson).
export function layerNormCharts(container, series) {
  const layers = series.filter((s) => s.split === LAYERS);
  container.replaceChildren();
  if (!layers.length) return 0;
  for (const [prefix, title] of [["grad_norm:", "gradient norm per layer"], ["weight_norm:", "weight norm per layer"]]) {
    const lines = layers.filter((s) => s.name.startsWith(prefix))
      .sort((a, b) => natural(a.name, b.name));
    if (!lines.length) continue;
    const div = chartDiv(`layers-${prefix.slice(0, -1)}`, {wide: true});
    container.append(div);
    plot(div, lines.map((s, i) => ({
      x: s.x, y: s.y, name: s.name.slice(prefix.length), mode: "lines",
      line: {color: COLOURS[i % COLOURS.length], dash: i >= COLOURS.length ? "dot" : "solid"},
    })), {
      title: {text: `${title} (log scale)`},
      xaxis: epochAxis(lines.map((s) => s.x)),
      yaxis: logAxis(prefix.slice(0, -1)),
    });
  }
  return layers.length;
}

// A k-fold job's held-out metric per epoch, a line per fold, coloured by candidate.
export function foldChart(container, series, metric, labels) {
  const [split, name] = [metric.slice(0, metric.indexOf("_")), metric.slice(metric.indexOf("_") + 1)];
  const lines = series.filter((s) => s.name === name && s.split.endsWith(`/${split}`))
    .sort((a, b) => natural(a.split, b.split));
  container.replaceChildren();
  if (!lines.length) return;
  const div = chartDiv("folds-chart", {wide: true});
  container.append(div);
  const seen = new Set();
  plot(div, lines.map((s) => {
    const candidate = s.split.split("/")[0];
    const index = Number(candidate.slice(1)) || 0;
    const first = !seen.has(candidate);
    seen.add(candidate);
    return {
      x: s.x, y: s.y, mode: "lines", name: labels[candidate] ?? candidate, legendgroup: candidate,
      showlegend: first, hovertext: s.split, line: {color: COLOURS[index % COLOURS.length], width: 1.5},
    };
  }), {
    title: {text: `${metric} of each held-out fold, by candidate`},
    xaxis: epochAxis(lines.map((s) => s.x)),
    yaxis: axis(metric),
  });
}

// `section` (in the page already, so the chart takes its size): the candidates' table and
// the folds' chart.
export function foldsSection(section, job, series) {
  const result = job.result ?? {};
  const selectBy = result.select_by ?? job.params.kfold?.select_by ?? "val_acc";
  const labels = Object.fromEntries((result.candidates ?? []).map((c) => [c.tag, c.label]));
  const chart = el("div", {class: "charts"});
  section.replaceChildren(
    el("h3", {}, `k-fold cross-validation (k = ${result.k ?? job.params.kfold?.k ?? "?"})`),
    result.candidates ? candidatesTable(result)
      : el("p", {class: "muted"}, "Mean and spread per candidate appear when every fold has run."),
    chart);
  foldChart(chart, series, selectBy, labels);
}

const FOLD_METRICS = ["val_acc", "val_loss", "train_acc", "train_loss"];

function candidatesTable(result) {
  const metrics = FOLD_METRICS.filter((m) => result.candidates.some((c) => typeof c[`mean_${m}`] === "number"));
  const rows = result.candidates.map((c) => el("tr", {class: c.label === result.winner ? "best" : null},
    el("td", {}, c.label === result.winner ? `${c.label} (chosen)` : c.label),
    metrics.map((m) => el("td", {class: "number"}, `${meanStd(c, m)}`)),
    el("td", {class: "number"}, c.folds.length)));
  const folds = result.candidates.flatMap((c) => c.folds.map((f) => el("tr", {},
    el("td", {}, c.label), el("td", {class: "number"}, f.fold),
    metrics.map((m) => el("td", {class: "number"}, fmtFold(f[m]))))));
  return el("div", {},
    el("p", {}, `Candidates by ${result.select_by}: mean ± standard deviation over the folds; `,
      `the chosen one was then retrained on every fold (the curves above).`),
    el("table", {id: "candidates"},
      el("tr", {}, el("th", {}, "candidate"), metrics.map((m) => el("th", {class: "number"}, m)), el("th", {class: "number"}, "folds")),
      rows),
    el("details", {}, el("summary", {}, "every fold"),
      el("table", {}, el("tr", {}, el("th", {}, "candidate"), el("th", {}, "fold"), metrics.map((m) => el("th", {}, m))), folds)));
}

function fmtFold(value) {
  return typeof value === "number" ? value.toFixed(4) : "-";
}

function meanStd(candidate, metric) {
  const mean = candidate[`mean_${metric}`], std = candidate[`std_${metric}`];
  return typeof mean === "number" ? `${mean.toFixed(4)} ± ${(std ?? 0).toFixed(4)}` : "-";
}
