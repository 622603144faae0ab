// Drives the console in headless Chromium (Debian's /usr/bin/chromium through playwright-core:
// no browser is downloaded) and checks what a radiologist would do with it: open every view,
// find a rule, try an example of each decision in the playground, upload a file, search
// consults; on every page no JavaScript error, no failed request, and axe-core finds no
// serious or critical accessibility violation. Saves one screenshot per view.
//
// node console.mjs BASE_URL SCREENSHOT_DIR EXAMPLES_DIR CONSULT_ID SHADOW_RULE
// CONSULT_ID: a consult the gateway rejected before SHADOW_RULE was switched to shadow mode in
// site data (the test edits a copy of rules/ and reloads).
// Exit status 0 when every check passed; the failures are printed otherwise.

import { chromium } from "playwright-core";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, shots, examples, consultId, shadowRule] = process.argv.slice(2);
if (!base || !shots || !examples || !consultId || !shadowRule) {
  console.error("usage: node console.mjs BASE_URL SCREENSHOT_DIR EXAMPLES_DIR CONSULT_ID SHADOW_RULE");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");
const failures = [];
const fail = (what) => { failures.push(what); console.error("FAIL " + what); };
const ok = (what) => console.log("ok   " + what);

const profile = mkdtempSync(join(tmpdir(), "rg-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  chromiumSandbox: false,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
  viewport: { width: 1280, height: 900 },
});

/** A page whose errors and failed requests are collected under `label`. */
async function watched(label) {
  const page = await context.newPage();
  page.on("pageerror", (e) => fail(`${label}: JavaScript error: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") fail(`${label}: console error: ${m.text()}`); });
  page.on("requestfailed", (r) => fail(`${label}: request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => { if (r.status() >= 400) fail(`${label}: ${r.status()} for ${r.url()}`); });
  return page;
}

async function axe(page, label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) {
    fail(`${label}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`);
  }
  if (bad.length === 0) ok(`${label}: axe, no serious or critical violations (${result.violations.length} minor)`);
}

async function open(path, label, shot) {
  const page = await watched(label);
  const res = await page.goto(base + path, { waitUntil: "load" });
  if (!res || res.status() !== 200) fail(`${label}: status ${res && res.status()}`);
  const h1 = await page.textContent("h1");
  if (!h1) fail(`${label}: no h1`);
  await axe(page, label);
  if (shot) await page.screenshot({ path: join(shots, shot), fullPage: false });
  return page;
}

// Every view, with its screenshot.
const rules = await open("/console", "rules", "rules.png");
const dashboard = await open("/console/dashboard", "dashboard", "dashboard.png");
const consults = await open("/console/consults", "consults");

// Keyboard: the first Tab reaches the skip link, which moves focus to the content.
await rules.keyboard.press("Tab");
const first = await rules.evaluate(() => document.activeElement && document.activeElement.textContent);
if (first !== "Skip to content") fail(`rules: first Tab focused ${JSON.stringify(first)}`);
else ok("rules: first Tab reaches the skip link");
await rules.keyboard.press("Enter");
const afterSkip = await rules.evaluate(() => document.activeElement && document.activeElement.id);
if (afterSkip !== "main") fail(`rules: the skip link moved focus to ${JSON.stringify(afterSkip)}`);

// Find a rule: typing filters the catalogue.
await rules.fill("#rule-filter", "DVT clinic");
const shown = await rules.$$eval("article.rule", (as) => as.filter((a) => !a.hidden).map((a) => a.id));
if (!shown.includes("rule-US13") || shown.length > 3) fail(`rules: filter 'DVT clinic' shows ${shown}`);
else ok(`rules: filter 'DVT clinic' shows ${shown.join(", ")}`);
const guidance = await rules.textContent("#rule-US13 blockquote");
if (!guidance || guidance.trim().length < 20) fail(`rules: US13 shows no guidance quote (${JSON.stringify(guidance)})`);
else ok("rules: US13 shows its guidance quote");
// The rule switched to shadow mode shows its mode and its would-be hits.
const shadowText = await rules.textContent(`#rule-${shadowRule}`);
if (!shadowText.includes("mode: shadow") || !shadowText.includes("would have fired 1 times (shadow)")) {
  fail(`rules: ${shadowRule} does not show shadow mode and its would-be hit: ${shadowText}`);
} else ok(`rules: ${shadowRule} in shadow mode, would have fired once`);

// The dashboard: pictures, and the shadow rule's would-be decisions beside the enforced ones.
const figures = await dashboard.$$eval("figure svg[role=img]", (s) => s.length);
if (figures < 5) fail(`dashboard: ${figures} charts`);
else ok(`dashboard: ${figures} charts`);
const shadowSection = await dashboard.textContent("main");
if (!shadowSection.includes(`${shadowRule} → would be rejected`)) fail(`dashboard: no would-be decision of ${shadowRule}`);
else ok(`dashboard: ${shadowRule} → would be rejected`);
// Its count links to the consults it would have rejected.
await Promise.all([dashboard.waitForNavigation(), dashboard.click(`a[href^="/console/consults?shadow=${shadowRule}"]`)]);
const wouldBe = await dashboard.$$eval("#consult-results tbody tr", (rs) => rs.length);
if (wouldBe !== 1) fail(`dashboard → consults: ${wouldBe} consults the shadow rule would have decided`);
else ok("dashboard → the consult the shadow rule would have rejected");
await axe(dashboard, "consults of a shadow rule");

// The playground, on an example of each decision, typed (pasted) into the form.
const cases = [
  ["general/gen01-cxr-with-clinical-question.json", "accepted"],
  ["general/gen01-no-clinical-information.json", "rejected"],
  ["us/us13-calf-swelling-query-dvt.json", "redirected"],
];
let playground;
for (const [file, decision] of cases) {
  const page = await watched(`playground ${decision}`);
  await page.goto(base + "/console/playground");
  await page.fill("#body", readFileSync(join(examples, file), "utf8"));
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  const shown = await page.$(`.decision.${decision}`);
  if (!shown) fail(`playground: ${file} did not show ${decision}`);
  else ok(`playground: ${file} → ${decision}`);
  const explained = await page.textContent("main");
  for (const part of ["Codes and words matched", "Context looked up", "Rules that fired"]) {
    if (!explained.includes(part)) fail(`playground ${decision}: no '${part}'`);
  }
  await axe(page, `playground ${decision}`);
  if (decision === "redirected") playground = page;
}
await playground.screenshot({ path: join(shots, "playground.png"), fullPage: false });

// Upload a file: it lands in the text box.
{
  const page = await watched("playground upload");
  await page.goto(base + "/console/playground");
  const file = join(examples, "us/us13-calf-swelling-query-dvt.json");
  await page.setInputFiles("#upload", file);
  await page.waitForFunction(() => document.getElementById("body").value.length > 0);
  const text = await page.inputValue("#body");
  if (text !== readFileSync(file, "utf8")) fail("playground: the uploaded file is not in the text box");
  else ok("playground: an uploaded file fills the text box");
}

// Consult search: the form submits and the page answers.
await consults.selectOption("#decision", "rejected");
await Promise.all([consults.waitForNavigation(), consults.click("form button[type=submit]")]);
if (!consults.url().includes("decision=rejected")) fail(`consults: search went to ${consults.url()}`);
else ok("consults: the search form submits");
await axe(consults, "consults search");

// Look up a consult by its id: its page shows the decision, the rules fired and the findings,
// and explains it again under the rules it was decided with (before the shadow switch).
{
  const page = await watched("consult by id");
  await page.goto(base + "/console/consults");
  await page.fill("#consult-id", consultId);
  await Promise.all([page.waitForNavigation(), page.press("#consult-id", "Enter")]);
  if (!page.url().endsWith(`/console/consults/${consultId}`)) fail(`consult lookup went to ${page.url()}`);
  const shown = await page.$(".decision.rejected");
  const text = await page.textContent("main");
  if (!shown || !text.includes(shadowRule) || !text.includes("Findings")) fail(`consult ${consultId}: ${text.slice(0, 400)}`);
  else ok(`consult ${consultId}: rejected, ${shadowRule} fired`);
  await axe(page, "consult");
  await page.screenshot({ path: join(shots, "consults.png"), fullPage: false });
  await Promise.all([page.waitForNavigation(), page.click(`a[href="/console/consults/${consultId}/explain"]`)]);
  const explained = await page.$(".decision.rejected");
  const why = await page.textContent("main");
  if (!explained || !why.includes("an earlier rule set") || !why.includes("Rules that fired (1)")) {
    fail(`consult explained: ${why.slice(0, 400)}`);
  } else ok("consult explained again under its own (earlier) rule set: rejected");
  await axe(page, "consult explained");
}

await context.close();
rmSync(profile, { recursive: true, force: true });
if (failures.length > 0) {
  console.error(`${failures.length} browser check(s) failed`);
  process.exit(1);
}
console.log("all browser checks passed");
