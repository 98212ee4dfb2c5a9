// Inside a trained net: its test confusion matrix, the test examples it gets most wrong, and
// what each conv/pool stage makes of one input. Each view is drawn only where the service
// answers it (200): a regression model, or a service without these endpoints, shows none.
"use strict";

import {axis, el, fmt, getOptional, plot} from "./common.js";

const TOP_LOSSES = 12;
const CHANNELS_SHOWN = 8;

// Values of one picture, however they are nested: (H, W), (C, H, W) or (H, W, C) -> an
// (H, W) grid of grey levels, or of [r, g, b] where there are three channels.
function pixels(values) {
  if (!Array.isArray(values) || !Array.isArray(values[0])) return null;  // a row of features
  if (!Array.isArray(values[0][0])) return {grid: values, channels: 1};
  if (values.length === 1) return {grid: values[0], channels: 1};
  if (values.length === 3) {
    const [r, g, b] = values;
    return {grid: r.map((row, y) => row.map((_, x) => [r[y][x], g[y][x], b[y][x]])), channels: 3};
  }
  if (values[0][0].length === 3) return {grid: values, channels: 3};  // as a photo stores it
  return {grid: values[0].map((row, y) => row.map((_, x) =>
    values.reduce((sum, channel) => sum + channel[y][x], 0) / values.length)), channels: 1};
}

// A picture as a small canvas, scaled up with hard pixel edges; each picture is stretched to
// its own range (dark = its least value, light = its greatest).
export function pictureCanvas(values, size = 84) {
  const picture = pixels(values);
  if (!picture) return el("span", {class: "muted"}, "(not a picture)");
  const {grid, channels} = picture;
  const height = grid.length, width = grid[0].length;
  const flat = grid.flat(2);
  const low = Math.min(...flat), high = Math.max(...flat), span = high - low || 1;
  const canvas = el("canvas", {width, height});
  const image = canvas.getContext("2d").createImageData(width, height);
  grid.forEach((row, y) => row.forEach((value, x) => {
    const [r, g, b] = channels === 3 ? value : [value, value, value];
    const at = 4 * (y * width + x);
    image.data.set([r, g, b].map((v) => Math.round(255 * (v - low) / span)), at);
    image.data[at + 3] = 255;
  }));
  canvas.getContext("2d").putImageData(image, 0, 0);
  const scale = Math.max(1, Math.floor(size / Math.max(width, height)));
  canvas.style.width = `${width * scale}px`;
  canvas.style.height = `${height * scale}px`;
  return canvas;
}

export async function insideSection(section, job) {
  const [confusion, losses] = await Promise.all([
    getOptional(`/v1/jobs/${job.id}/confusion`),
    getOptional(`/v1/jobs/${job.id}/top-losses?limit=${TOP_LOSSES}`),
  ]);
  section.replaceChildren();
  if (confusion) confusionView(section, confusion);
  if (losses) topLossesView(section, losses);
  if (job.model_id) await featureMapsView(section, job.model_id, job.params.dataset?.name);
}

function evaluated(answer) {
  const cut = answer.cut ? ` (the first ${fmt(answer.evaluated)} of ${fmt(answer.test_examples)})` : "";
  return `${fmt(answer.evaluated)} test examples${cut}, accuracy ${fmt(answer.accuracy)}`;
}

function confusionView(section, answer) {
  const names = answer.class_names.map(String);
  const div = el("div", {id: "confusion-chart", class: "chart", style: "width: 560px; height: 520px"});
  section.append(el("h3", {id: "confusion"}, "Confusion matrix"),
    el("p", {}, `True class down, predicted class across: ${evaluated(answer)}. `,
      "The diagonal is what it gets right; a bright cell off it is a pair of classes it mixes up."),
    div);
  const annotate = names.length <= 20;
  plot(div, [{
    type: "heatmap", z: answer.matrix, x: names, y: names, colorscale: "Blues", reversescale: true,
    hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>",
    ...(annotate ? {texttemplate: "%{z}"} : {}),
  }], {
    xaxis: axis("predicted", {type: "category", side: "bottom"}),
    yaxis: axis("true", {type: "category", autorange: "reversed"}),
    margin: {l: 80, r: 20, t: 20, b: 60},
  });
}

function topLossesView(section, answer) {
  const tiles = answer.items.map((item) => el("div", {class: "tile"},
    pictureCanvas(item.sample),
    el("div", {}, `true ${item.label}`),
    el("div", {class: "outside"}, `said ${item.prediction} (${fmt(item.probability)})`),
    el("div", {class: "muted"}, `loss ${fmt(item.loss)}`)));
  section.append(el("h3", {id: "top-losses"}, "What it gets most wrong"),
    el("p", {}, `The test examples with the highest loss, of ${evaluated(answer)}.`),
    el("div", {class: "tiles"}, tiles));
}

async function featureMapsView(section, modelId, dataset) {
  if (!dataset) return;
  const index = el("input", {type: "number", min: 0, value: 0, style: "width: 6em"});
  const body = el("div", {id: "feature-maps-body"});
  const show = async () => {
    const query = new URLSearchParams({dataset, split: "test", index: index.value || "0"});
    const answer = await getOptional(`/v1/models/${modelId}/feature-maps?${query}`);
    if (!answer) {
      body.replaceChildren(el("p", {class: "muted"}, "No feature maps for this input."));
      return false;
    }
    body.replaceChildren(...featureMapRows(answer));
    return true;
  };
  const heading = el("h3", {id: "feature-maps"}, "Feature maps");
  const picker = el("p", {}, "What each conv and pooling stage sees of test example ", index,
    " (the first channels of each stage; bright = strong response).");
  section.append(heading, picker, body);
  index.addEventListener("change", show);
  if (!(await show())) { heading.remove(); picker.remove(); body.remove(); }
}

function featureMapRows(answer) {
  const said = `predicted ${answer.prediction.label} (${fmt(answer.prediction.probability)})`;
  const truth = answer.input?.label != null ? `, true ${answer.input.label}` : "";
  const rows = [el("div", {class: "maps"}, el("span", {class: "label"}, `input: ${said}${truth}`),
    pictureCanvas(answer.image, 96))];
  for (const layer of answer.layers) {
    const maps = layer.maps.slice(0, CHANNELS_SHOWN).map((map) => pictureCanvas(map, 56));
    rows.push(el("div", {class: "maps"},
      el("span", {class: "label"}, `${layer.layer} ${layer.kind} ${layer.channels}×${layer.height}×${layer.width}`),
      maps));
  }
  return rows;
}
