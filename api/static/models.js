// The registered models with their aliases, and the course's recipes: a form that launches one,
// with the book's numbers beside it (the job's page then sets them beside its own).
"use strict";

import {cell, content, el, errorText, fmtAny, getJSON, send, table} from "./common.js";

export async function showModels() {
  const page = await getJSON("/v1/models?limit=100");
  const rows = page.items.map((model) => el("tr", {},
    el("td", {}, el("a", {href: `#draw=${model.id}`}, model.id.slice(0, 12))),
    el("td", {}, model.aliases.length ? model.aliases.join(", ") : el("span", {class: "muted"}, "none")),
    el("td", {}, model.arch), el("td", {}, model.dataset), el("td", {}, model.task),
    cell(model.metrics.test_acc ?? model.metrics.test_loss),
    el("td", {}, el("a", {href: `#job=${model.job_id}`}, model.job_id.slice(0, 12))),
    el("td", {}, el("a", {href: `#experiment=${encodeURIComponent(model.experiment)}`}, model.experiment)),
    el("td", {}, model.created_at.slice(0, 19).replace("T", " "))));
  content().replaceChildren(el("h2", {}, "Models"),
    el("p", {}, `${page.total} models, newest first. A model's id opens its drawing board; aliases `,
      `(name:version, name:latest, name:production) are set with POST /v1/models/{id}/alias.`),
    table(["model", "aliases", "arch", "dataset", "task", "test acc / loss", "job", "experiment", "created"], el("tbody", {id: "models"}, rows)));
}

// A variant runs where the book's data is absent (e.g. on the bundled digits).
function variantOptions(recipe) {
  const book = el("option", {value: ""}, `the book's setup (${recipe.book_data.dataset}${recipe.book_data.available ? "" : ", data missing here"})`);
  return [book, ...recipe.variants.map((v) => el("option", {value: v.name}, `${v.name}: ${v.description}`))];
}

function bookPanel(recipe, variant) {
  const checks = (variant ? recipe.variants.find((v) => v.name === variant)?.checks : recipe.checks) ?? [];
  const book = Object.entries(recipe.book).map(([key, value]) => el("tr", {}, el("td", {}, key), cell(value)));
  return el("div", {id: "book-panel"},
    el("h3", {}, `${recipe.chapter} ${recipe.title}`),
    el("p", {}, `The book printed: ${recipe.book_printed}`),
    book.length ? table(["quantity", "book"], book, {numeric: ["book"]}) : "",
    checks.length ? el("div", {}, el("p", {}, "This run is checked against:"),
      table(["metric", "expected", "why"], checks.map((c) => el("tr", {}, el("td", {}, c.metric), el("td", {}, c.expected), el("td", {class: "muted"}, c.why))))) : "",
    el("p", {class: "muted"}, `Preprocessing: ${recipe.preprocessing}. Init: ${recipe.init}.`),
    recipe.book_data.available || variant ? "" : el("p", {class: "note"}, recipe.book_data.message ?? "The book's data is not on this service."),
    recipe.notes.map((note) => el("p", {class: "note"}, note)));
}

export async function showRecipes(selected) {
  const recipes = await getJSON("/v1/recipes");
  const byName = Object.fromEntries(recipes.map((r) => [r.name, r]));
  const recipeSelect = el("select", {id: "recipe", name: "recipe"},
    recipes.map((r) => el("option", {value: r.name}, `${r.chapter} ${r.name}: ${r.title}`)));
  const variantSelect = el("select", {id: "variant", name: "variant"});
  const epochs = el("input", {id: "epochs", name: "epochs", type: "number", min: 1, step: 1});
  const experiment = el("input", {id: "experiment-name", name: "experiment", placeholder: "the recipe's own"});
  const message = el("div", {id: "launch-message"});
  const panel = el("div", {});
  const form = el("form", {class: "launch", id: "launch"},
    el("label", {}, "Recipe", recipeSelect), el("label", {}, "Run", variantSelect),
    el("label", {}, "Epochs", epochs), el("label", {}, "Experiment", experiment),
    el("button", {type: "submit"}, "launch"), message);
  const choose = () => {
    const recipe = byName[recipeSelect.value];
    variantSelect.replaceChildren(...variantOptions(recipe));
    if (!recipe.book_data.available && recipe.variants.length) variantSelect.value = recipe.variants[0].name;
    showVariant();
  };
  const showVariant = () => {
    const recipe = byName[recipeSelect.value];
    const job = variantSelect.value ? recipe.variants.find((v) => v.name === variantSelect.value).job : recipe.job;
    epochs.placeholder = job.hyperparameters?.epochs ?? "";
    epochs.value = "";
    panel.replaceChildren(bookPanel(recipe, variantSelect.value));
  };
  recipeSelect.addEventListener("change", choose);
  variantSelect.addEventListener("change", showVariant);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.replaceChildren(el("em", {}, "submitting..."));
    try {
      const job = await send("/v1/jobs", launchBody(recipeSelect.value, variantSelect.value, epochs.value, experiment.value));
      location.hash = `job=${job.id}`;
    } catch (error) {
      message.replaceChildren(errorText(error));
    }
  });
  if (byName[selected]) recipeSelect.value = selected;
  content().replaceChildren(el("h2", {}, "Recipes: the course's experiments"),
    el("p", {}, "Launch one; its page sets the book's numbers beside its own when it ends."),
    el("div", {class: "lab"}, form, panel),
    el("h3", {}, "Every recipe"), recipesTable(recipes));
  choose();
}

function launchBody(recipe, variant, epochs, experiment) {
  const body = {recipe};
  if (variant) body.recipe_variant = variant;
  if (epochs) body.hyperparameters = {epochs: Number(epochs)};
  if (experiment.trim()) body.experiment = experiment.trim();
  return body;
}

function recipesTable(recipes) {
  const rows = recipes.map((r) => el("tr", {},
    el("td", {}, r.chapter), el("td", {}, el("a", {href: `#recipes=${r.name}`}, r.name)), el("td", {}, r.title),
    el("td", {}, Object.entries(r.book).map(([k, v]) => `${k} ${fmtAny(v)}`).join(", ") || r.book_printed),
    el("td", {}, r.variants.map((v) => v.name).join(", ") || "-")));
  return table(["chapter", "recipe", "title", "the book's numbers", "variants"], rows);
}
