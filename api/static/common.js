// What every view of the page shares: building elements, reading and writing the API (with the
// token where auth is on), formatting numbers, and drawing plotly charts.
"use strict";

export const content = () => document.getElementById("content");

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    node.append(child instanceof Node ? child : String(child ?? "-"));
  }
  return node;
}

// With D2L_AUTH=on the page's reads carry the token as a cookie (the API accepts it on GET only,
// so a cookie can never cancel or delete anything); what the page sends (a job, a prediction)
// carries it as `Authorization: Bearer`, read from the same cookie.
function token() {
  const match = document.cookie.match(/(?:^|;\s*)d2l_token=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export function askForToken() {
  if (document.getElementById("token-form")) return;
  const input = el("input", {id: "token", type: "password", size: 50, placeholder: "d2l_..."});
  const form = el("form", {id: "token-form"}, "API token: ", input, " ", el("button", {}, "use"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    document.cookie = `d2l_token=${encodeURIComponent(input.value.trim())}; path=/; SameSite=Strict`;
    location.reload();
  });
  content().replaceChildren(form);
}

export class ApiError extends Error {
  constructor(path, status, detail) {
    super(`${path}: ${status} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    this.status = status;
    this.detail = detail;
  }
}

async function answer(path, response) {
  if (response.status === 401) { askForToken(); throw new ApiError(path, 401, "this service needs an API token"); }
  if (!response.ok) {
    const text = await response.text();
    let detail = text;
    try { detail = JSON.parse(text).detail ?? text; } catch (_) { /* not JSON */ }
    throw new ApiError(path, response.status, detail);
  }
  return response.json();
}

export async function getJSON(path) {
  return answer(path, await fetch(path));
}

// A view that exists only on some services (or only for some models): its JSON, or null for
// any answer but 200 (the page then leaves the view out).
export async function getOptional(path) {
  try {
    const response = await fetch(path);
    return response.status === 200 ? await response.json() : null;
  } catch (_) {
    return null;
  }
}

export async function send(path, body) {
  const headers = {};
  if (token()) headers.Authorization = `Bearer ${token()}`;
  if (!(body instanceof FormData)) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: "POST", headers, body: body instanceof FormData ? body : JSON.stringify(body),
  });
  return answer(path, response);
}

// Numbers as people read them: 4 significant digits, powers of ten where they are tiny or huge.
export function fmt(value) {
  if (typeof value !== "number") return value === undefined || value === null ? "-" : String(value);
  if (Number.isInteger(value)) return value.toLocaleString("en");
  const size = Math.abs(value);
  if (size !== 0 && (size < 1e-3 || size >= 1e5)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

export function fmtAny(value) {
  return Array.isArray(value) ? `[${value.map(fmtAny).join(", ")}]` : fmt(value);
}

export function errorText(error) {
  return el("p", {class: "error"}, error instanceof ApiError ? String(error.message) : String(error));
}

export function table(headers, rows, {numeric = []} = {}) {
  const head = el("tr", {}, headers.map((name) => el("th", {class: numeric.includes(name) ? "number" : null}, name)));
  return el("table", {}, head, rows);
}

export function cell(value) {
  return el("td", {class: typeof value === "number" ? "number" : null}, fmtAny(value));
}

// plotly: interactive charts with real axes (ticks, grid, hover), drawn into a div.
export const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
  "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

export function chartDiv(id, {wide = false} = {}) {
  return el("div", {id, class: wide ? "chart wide" : "chart"});
}

export function plot(div, traces, layout = {}) {
  const base = {
    margin: {l: 70, r: 20, t: 40, b: 50},
    title: {x: 0.02, xanchor: "left"},  // clear of plotly's tool bar, top right
    legend: {font: {size: 10}},
    hovermode: "closest",
  };
  const title = {...base.title, ...(layout.title ?? {})};
  return window.Plotly.react(div, traces, {...base, ...layout, title}, {responsive: true, displaylogo: false});
}

export function axis(title, extra = {}) {
  return {title: {text: title}, showgrid: true, zeroline: false, ...extra};
}

// Epochs are whole: every one labelled on a short run, plotly's own steps on a long one.
export function epochAxis(epochs) {
  const most = Math.max(1, ...epochs.flat());
  return axis("epoch", most <= 12 ? {dtick: 1, tick0: 0} : {});
}

// A log axis of powers of ten (1e-12 ... 1e0): the C14 lesson, vanishing gradients in sight.
export function logAxis(title) {
  return axis(title, {type: "log", exponentformat: "power"});
}
