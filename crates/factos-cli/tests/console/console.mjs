// Drives the factos console in Debian's Chromium against a running
// `factos serve`, and prints one JSON line of what it found.
//
// node console.mjs <base url> <token> <screenshot dir or "-">
//
// The page is used as an operator would: by its labels, buttons and keys.
// What the checks compare against (what `factos read` finds) is the Rust
// test's job (tests/console.rs); this script reports, and fails only when
// the page does not behave at all.

import { chromium } from "playwright-core";

const [base, token, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.FACTOS_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--headless=new"],
});
const report = {};
const outside = [];
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 860 } });
  // Nothing may leave the machine: every request goes to the server.
  page.on("request", (request) => {
    if (!request.url().startsWith(base)) outside.push(request.url());
  });
  await page.goto(base + "/console");

  // A wrong token sees nothing.
  await page.getByLabel("Token", { exact: true }).fill("not-the-token");
  await page.getByRole("button", { name: "Use" }).click();
  await page.getByRole("alert").waitFor({ state: "visible" });
  report.wrongToken = {
    alert: await page.getByRole("alert").textContent(),
    rows: await page.locator("#results tr").count(),
  };
  await page.getByRole("tab", { name: "Health" }).click();
  await page.getByRole("alert").waitFor({ state: "visible" });
  report.wrongToken.healthCards = await page.locator("#cards .card").count();
  await page.getByRole("tab", { name: "Events" }).click();

  // The right token; a query of two items, newest first, every page.
  await page.getByLabel("Token", { exact: true }).fill(token);
  await page.getByRole("button", { name: "Use" }).click();
  await page.locator("#results tr").first().waitFor();
  await page.getByLabel("Item 1 types").fill("Placed");
  await page.getByLabel("Item 1 tags").fill("order:1");
  await page.getByRole("button", { name: "Add item" }).click();
  await page.getByLabel("Item 2 types").fill("Shipped");
  await page.getByLabel("Item 2 tags").fill("order:2, batch:x");
  await page.getByLabel("Page", { exact: true }).fill("2");
  // The answer to this query, not the one the page showed before.
  const loads = await page.locator("#results").getAttribute("data-loads");
  await page.getByRole("button", { name: "Find" }).click();
  await page.waitForFunction((before) => document.querySelector("#results").dataset.loads !== before, loads);
  // Next page, with the keyboard, until there is none.
  for (let pages = 0; pages < 100 && (await page.locator("#more").isVisible()); pages++) {
    const before = await page.locator("#results tr").count();
    await page.locator("#more").focus();
    await page.keyboard.press("Enter");
    await page.waitForFunction((n) => document.querySelectorAll("#results tr").length > n, before);
  }
  report.newestFirst = await page.locator("#results tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.position)));

  // An event's detail, reached with the keyboard.
  await page.locator("#results tr").first().focus();
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.locator("#payload").waitFor();
  report.detail = {
    heading: await page.locator("#detail h2").textContent(),
    payload: await page.locator("#payload").textContent(),
  };
  if (shots !== "-") await page.screenshot({ path: shots + "/console-events.png" });

  // "Events of this stream".
  await page.getByRole("link", { name: /^events of stream / }).click();
  await page.waitForFunction(() => document.querySelector("#scope").textContent.startsWith("Events of stream"));
  // The server pages the stream (--max-read 100): the next page is one
  // click away.
  report.streamFirstPage = await page.locator("#results tr").count();
  while (await page.locator("#more").isVisible()) {
    const loads = await page.locator("#results").getAttribute("data-loads");
    await page.locator("#more").click();
    await page.waitForFunction((before) => document.querySelector("#results").dataset.loads !== before, loads);
  }
  report.stream = await page.locator("#results tr").evaluateAll((rows) => rows.map((r) => r.children[2].textContent));

  // Live: an event appended now shows within a second.
  await page.getByRole("tab", { name: "Live" }).click();
  await page.getByLabel("Types", { exact: true }).fill("Shouted");
  await page.getByRole("button", { name: "Follow" }).click();
  await page.waitForFunction(() => document.querySelector("#live-state").textContent === "following");
  const appended = Date.now();
  const answer = await fetch(base + "/append", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ events: [{ type: "Shouted", tags: ["live:1"], data: { hello: "console" } }], stream: "live" }),
  });
  const positions = (await answer.json()).positions;
  await page.locator("#live-results tr").first().waitFor({ timeout: 5000 });
  report.live = {
    position: positions[0],
    shownPosition: Number(await page.locator("#live-results tr").first().getAttribute("data-position")),
    millis: Date.now() - appended,
  };
  // Paused, a new event waits; resumed, it shows.
  await page.getByRole("button", { name: "Pause" }).click();
  await fetch(base + "/append", {
    method: "POST",
    headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: JSON.stringify({ events: [{ type: "Shouted", tags: ["live:2"], data: { hello: "again" } }], stream: "live" }),
  });
  await page.waitForFunction(() => document.querySelector("#live-state").textContent.startsWith("paused (1"));
  report.live.rowsWhilePaused = await page.locator("#live-results tr").count();
  await page.getByRole("button", { name: "Resume" }).click();
  report.live.rowsAfterResume = await page.locator("#live-results tr").count();
  if (shots !== "-") await page.screenshot({ path: shots + "/console-live.png" });

  // Health: the cards, the chart, the tables.
  await page.getByRole("tab", { name: "Health" }).click();
  await page.locator("#chart rect.bar").first().waitFor({ state: "attached" });
  report.health = {
    cards: await page.locator("#cards .card").allTextContents(),
    bars: await page.locator("#chart rect.bar").count(),
    busiestRate: Math.max(...(await page.locator("#chart rect.bar").evaluateAll((bars) => bars.map((b) => Number(b.dataset.rate))))),
    types: await page.locator("#types tr").allTextContents(),
    runners: await page.locator("#runners tr").allTextContents(),
    parked: await page.locator("#parked tr").allTextContents(),
  };
  if (shots !== "-") await page.screenshot({ path: shots + "/console-health.png", fullPage: true });
  // Retrying a parked effect: its runner (beside the server) hands it over
  // again and removes it; the page shows that after a refresh.
  const retried = await page.locator("#parked tr td:nth-child(2)").first().textContent();
  await page.getByRole("button", { name: "Retry " + retried, exact: true }).click();
  const deadline = Date.now() + 20000;
  while ((await page.locator("#parked tr", { hasText: retried }).count()) > 0) {
    if (Date.now() > deadline) throw new Error("the retried effect " + retried + " stayed parked");
    await page.waitForTimeout(250);
    await page.getByRole("button", { name: "Refresh" }).click();
  }
  report.health.retried = retried;
  report.health.parkedAfterRetry = await page.locator("#parked tr").count();
  // Discarding the other.
  await page.getByRole("button", { name: /^Discard / }).click();
  await page.waitForFunction(() => document.querySelectorAll("#parked tr").length === 0);
  report.health.parkedAfterDiscard = await page.locator("#parked tr").count();
  report.outside = outside;
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
