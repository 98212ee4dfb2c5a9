// Draw a digit (or drop an image) for a model and see its top-k classes as bars. The canvas is
// turned into one raw sample exactly as the model's dataset stores them (its raw shape and value
// range, from the model's `preprocessing`), and the page says which polarity the model learned:
// the course's digits are light ink on a dark ground, so a digit drawn dark on light is not what
// it has seen.
"use strict";

import {axis, content, el, errorText, fmt, getJSON, getOptional, plot, send} from "./common.js";
import {pictureCanvas} from "./inside.js";

const SIZE = 280;  // canvas pixels a side
const TOP_K = 5;

export async function showDraw(modelId) {
  if (!modelId) return chooseModel();
  const model = await getJSON(`/v1/models/${encodeURIComponent(modelId)}`);
  const prep = model.preprocessing;
  if (!prep || prep.layout === "tabular" || model.task !== "classification") {
    content().replaceChildren(el("h2", {}, `Model ${model.id}`),
      el("p", {class: "note"}, "This model does not classify images: there is nothing to draw for it."));
    return;
  }
  const board = new Board(model);
  const polarity = await trainedPolarity(model);
  content().replaceChildren(
    el("h2", {}, `Draw for model ${model.id.slice(0, 12)}`),
    el("p", {}, `${model.arch} trained on ${model.dataset} `, el("a", {href: `#job=${model.job_id}`}, "(its job)"),
      model.aliases.length ? `, known as ${model.aliases.join(", ")}` : ""),
    el("p", {id: "polarity", class: "note"}, polarity.text),
    el("div", {class: "lab"}, board.panel(polarity.sample), board.answer));
}

async function chooseModel() {
  const page = await getJSON("/v1/models?limit=100");
  const images = page.items.filter((m) => m.task === "classification" && m.preprocessing?.layout !== "tabular");
  content().replaceChildren(el("h2", {}, "Draw a digit"),
    images.length ? el("p", {}, "Choose a model:") : el("p", {}, "No image classifier is registered yet: train one (see recipes)."),
    el("ul", {}, images.map((m) => el("li", {}, el("a", {href: `#draw=${m.id}`}, m.id.slice(0, 12)),
      ` ${m.arch} on ${m.dataset}`, m.aliases.length ? ` (${m.aliases.join(", ")})` : "",
      ` test acc ${fmt(m.metrics.test_acc)}`))));
}

// Which way round the model's pictures are: measured on a test sample where the service shows
// one (the border of a picture is its background), else the course's convention for its own
// greyscale sets.
async function trainedPolarity(model) {
  const prep = model.preprocessing;
  const top = Math.round(1 / prep.scale);
  const shape = prep.raw_shape.join("×");
  const range = `raw values 0 to ${top} per pixel (${shape})`;
  const query = new URLSearchParams({dataset: model.dataset, split: "test", index: "0"});
  const sample = (await getOptional(`/v1/models/${model.id}/feature-maps?${query}`))?.image ?? null;
  let lightOnDark = sample ? borderIsDark(sample) : null;
  if (lightOnDark === null) {
    const dataset = await getOptional(`/v1/datasets/${encodeURIComponent(model.dataset)}`);
    if (dataset && dataset.source !== "upload" && dataset.in_channels === 1) lightOnDark = true;
  }
  const how = lightOnDark === null ? "Its polarity is not known here: compare with a picture of its dataset."
    : lightOnDark ? `It learned light strokes on a dark ground: 0 is the background, ${top} the ink. ` +
      "The canvas draws that way; a digit drawn dark on light (tick invert) is the opposite of anything it saw, and is read as something else (often 0)."
      : `It learned dark strokes on a light ground (${top} is the background): tick invert to draw as it saw.`;
  return {text: `Trained on ${model.dataset}: ${range}. ${how}`, sample, lightOnDark};
}

function borderIsDark(image) {
  const grid = Array.isArray(image[0][0]) ? image[0] : image;  // the first channel
  const border = [...grid[0], ...grid[grid.length - 1], ...grid.map((row) => row[0]), ...grid.map((row) => row[row.length - 1])];
  const all = grid.flat();
  const low = Math.min(...all), high = Math.max(...all);
  if (high === low) return null;
  const mean = border.reduce((a, b) => a + b, 0) / border.length;
  return (mean - low) / (high - low) < 0.5;
}

// The drawing board: a canvas, its strokes and dropped images, and the model's answer.
class Board {
  constructor(model) {
    this.model = model;
    this.prep = model.preprocessing;
    const shape = this.prep.raw_shape;
    [this.height, this.width] = shape.length === 3 && shape[0] <= 4 ? shape.slice(1) : shape.slice(0, 2);
    this.canvas = el("canvas", {id: "draw-canvas", width: SIZE, height: SIZE});
    this.context = this.canvas.getContext("2d", {willReadFrequently: true});
    this.invert = el("input", {type: "checkbox", id: "invert"});
    this.status = el("p", {id: "draw-status", class: "muted"}, "Draw with the mouse (or a finger), or drop an image on the board.");
    this.answer = el("div", {id: "draw-answer"}, el("div", {id: "topk-chart", class: "chart"}));
    this.clear();
    this.listen();
  }

  panel(sample) {
    const file = el("input", {type: "file", accept: "image/*", id: "draw-file"});
    file.addEventListener("change", () => file.files[0] && this.drop(file.files[0]));
    const clear = el("button", {type: "button"}, "clear");
    clear.addEventListener("click", () => { this.clear(); this.status.textContent = "Cleared."; });
    this.invert.addEventListener("change", () => this.predict());
    return el("div", {},
      this.canvas,
      el("p", {}, clear, " ", el("label", {}, this.invert, " invert (dark on light)"), " ", file),
      sample ? el("p", {class: "muted"}, "A test picture of its data: ", pictureCanvas(sample, 56)) : "",
      this.status);
  }

  clear() {
    this.context.fillStyle = "#000";
    this.context.fillRect(0, 0, SIZE, SIZE);
  }

  point(event) {
    const box = this.canvas.getBoundingClientRect();
    return [(event.clientX - box.left) * SIZE / box.width, (event.clientY - box.top) * SIZE / box.height];
  }

  listen() {
    const c = this.context;
    let drawing = false;
    this.canvas.addEventListener("pointerdown", (event) => {
      drawing = true;
      this.canvas.setPointerCapture?.(event.pointerId);
      c.strokeStyle = "#fff"; c.lineCap = "round"; c.lineJoin = "round";
      c.lineWidth = Math.max(16, 1.2 * SIZE / this.width);
      c.beginPath();
      c.moveTo(...this.point(event));
      c.lineTo(...this.point(event));
      c.stroke();
    });
    this.canvas.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      c.lineTo(...this.point(event));
      c.stroke();
    });
    const end = () => { if (drawing) { drawing = false; this.predict(); } };
    this.canvas.addEventListener("pointerup", end);
    this.canvas.addEventListener("pointercancel", end);
    this.canvas.addEventListener("dragover", (event) => { event.preventDefault(); this.canvas.classList.add("dragging"); });
    this.canvas.addEventListener("dragleave", () => this.canvas.classList.remove("dragging"));
    this.canvas.addEventListener("drop", (event) => {
      event.preventDefault();
      this.canvas.classList.remove("dragging");
      const file = event.dataTransfer.files[0];
      if (file) this.drop(file);
    });
  }

  // A dropped picture is painted on the board (fitted, on black), so the board always shows
  // what is sent; a light background is inverted, the way the model saw its data.
  async drop(file) {
    try {
      const bitmap = await createImageBitmap(file);
      const scale = Math.min(SIZE / bitmap.width, SIZE / bitmap.height);
      const [w, h] = [bitmap.width * scale, bitmap.height * scale];
      this.clear();
      this.context.drawImage(bitmap, (SIZE - w) / 2, (SIZE - h) / 2, w, h);
      this.invert.checked = this.lightBackground();
      this.status.textContent = this.invert.checked
        ? "The image has a light background: inverted, as the model saw its data." : "Image placed on the board.";
      await this.predict();
    } catch (error) {
      this.status.replaceChildren(errorText(error));
    }
  }

  lightBackground() {
    const data = this.context.getImageData(0, 0, SIZE, 1).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += data[i];
    return sum / (data.length / 4) > 127;
  }

  // The board averaged down to the raw grid, at the dataset's value range (0 to 1/scale).
  sample() {
    const data = this.context.getImageData(0, 0, SIZE, SIZE).data;
    const top = 1 / this.prep.scale, whole = Math.abs(top - Math.round(top)) < 1e-6;
    const grid = [];
    for (let row = 0; row < this.height; row++) {
      const line = [];
      for (let col = 0; col < this.width; col++) {
        const [y0, y1] = [Math.floor(row * SIZE / this.height), Math.floor((row + 1) * SIZE / this.height)];
        const [x0, x1] = [Math.floor(col * SIZE / this.width), Math.floor((col + 1) * SIZE / this.width)];
        let sum = 0;
        for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
          const at = 4 * (y * SIZE + x);
          sum += (data[at] + data[at + 1] + data[at + 2]) / 3;
        }
        let level = sum / ((y1 - y0) * (x1 - x0) * 255);
        if (this.invert.checked) level = 1 - level;
        line.push(whole ? Math.round(level * top) : Number((level * top).toFixed(4)));
      }
      grid.push(line);
    }
    return this.shaped(grid);
  }

  shaped(grid) {
    const shape = this.prep.raw_shape;
    if (shape.length === 2) return grid;
    if (shape[0] <= 4) return Array.from({length: shape[0]}, () => grid);  // (C, H, W)
    return grid.map((row) => row.map((v) => Array(shape[2]).fill(v)));  // (H, W, C)
  }

  async predict() {
    try {
      const k = Math.min(TOP_K, this.model.class_names.length);
      const answer = await send(`/v1/models/${this.model.id}/predict`, {inputs: this.sample(), top_k: k});
      this.show(answer.predictions[0]);
    } catch (error) {
      this.status.replaceChildren(errorText(error));
    }
  }

  show(prediction) {
    // Most likely first (a JavaScript object lists integer-like keys, "0" to "9", in their
    // own order, whatever order the JSON had).
    const entries = Object.entries(prediction.probabilities).sort((a, b) => b[1] - a[1]);
    this.status.textContent = `It says ${prediction.label} (${fmt(entries[0][1])}).`;
    const div = this.answer.querySelector("#topk-chart");
    plot(div, [{
      type: "bar", orientation: "h", x: entries.map(([, p]) => p).reverse(),
      y: entries.map(([label]) => ` ${label} `).reverse(), marker: {color: "#1f77b4"},
      text: entries.map(([, p]) => fmt(p)).reverse(), textposition: "outside", cliponaxis: false,
    }], {
      title: {text: `top ${entries.length}: ${prediction.label}`},
      xaxis: axis("probability", {range: [0, 1]}), yaxis: axis("class", {type: "category"}),
    });
  }
}
