// The page's router: the part after # names the view (#job=<id>, #experiment=<name>, #models,
// #recipes, #draw=<model>); no hash is the job list.
"use strict";

import {content, errorText} from "./common.js";
import {showDraw} from "./draw.js";
import {showExperiment, showExperiments, showJobs} from "./experiments.js";
import {leaveJob, showJob} from "./job.js";
import {showModels, showRecipes} from "./models.js";

const VIEWS = {
  job: showJob,
  experiment: showExperiment,
  models: showModels,
  recipes: showRecipes,
  draw: showDraw,
};

async function route() {
  leaveJob();
  const hash = new URLSearchParams(location.hash.slice(1));
  const [name, value] = [...hash.entries()][0] ?? [];
  try {
    await (VIEWS[name] ?? showJobs)(value || null);
  } catch (error) {
    content().replaceChildren(errorText(error));
  }
}

window.addEventListener("hashchange", route);
showExperiments().catch((error) => { document.getElementById("experiments").replaceChildren(errorText(error)); });
route();
