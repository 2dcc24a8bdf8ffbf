// Drives the example page in Debian's Chromium through playwright-core (no browser download).
//
//   node widget/browser/drive.mjs '<plan as JSON>'
//
// plan: {url, chromium?, bypassCSP?, userDataDir, steps: [...]}; each step is one of
//   {"do": "snapshot"}                  record what the widget shows (see snapshot() below)
//   {"do": "sort", "value": "rating_desc"}   choose a sort order in the widget's select
//   {"do": "next"} | {"do": "prev"}     click the pager
//   {"do": "all_pages"}                 record the review ids of every page (clicking Next)
//   {"do": "screenshot", "path": "..."} full-page PNG
// Prints one JSON object: {snapshots: [...], pages: [...], console: [...], pageErrors: [...], dialogs: n}.
import { chromium } from "playwright-core";

const plan = JSON.parse(process.argv[2]);
const args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function snapshot() {
  const root = document.querySelector("[data-review-widget]");
  const q = (sel) => root.querySelector(sel);
  const text = (sel) => (q(sel) ? q(sel).textContent : null);
  return {
    state: root.getAttribute("data-state"),
    sort: q("[data-role=sort]") ? q("[data-role=sort]").value : null,
    page: root.getAttribute("data-page"),
    pageInfo: text("[data-role=page-info]"),
    average: text("[data-role=average]"),
    reviewCount: text("[data-role=review-count]"),
    histogram: Object.fromEntries([...root.querySelectorAll("[data-role=histogram] li")].map(
      (li) => [li.getAttribute("data-star"), Number(li.getAttribute("data-count"))])),
    notShown: text("[data-role=not-shown]"),
    notShownCount: q("[data-role=not-shown]") ? Number(q("[data-role=not-shown]").getAttribute("data-count")) : null,
    moderation: text("[data-role=moderation]"),
    reviews: [...root.querySelectorAll("[data-role=review]")].map((li) => ({
      id: li.getAttribute("data-review-id"),
      rating: Number(li.getAttribute("data-rating")),
      createdAt: li.querySelector("time").getAttribute("datetime"),
      title: li.querySelector("[data-role=title]") ? li.querySelector("[data-role=title]").textContent : null,
      body: li.querySelector("[data-role=body]").textContent,
      badges: [...li.querySelectorAll("[data-badge]")].map((b) => b.getAttribute("data-badge")),
      badgeTexts: [...li.querySelectorAll("[data-badge]")].map((b) => b.textContent),
      visible: li.offsetParent !== null,
    })),
    elementsInsideWidget: {
      img: root.querySelectorAll("img").length,
      script: root.querySelectorAll("script").length,
      b: root.querySelectorAll("b").length,
      iframe: root.querySelectorAll("iframe").length,
    },
    pwned: window.__pwned === undefined ? null : window.__pwned,
    jsonld: [...document.querySelectorAll('script[type="application/ld+json"]')].map((s) => JSON.parse(s.textContent)),
    visibleText: root.innerText,
  };
}

const out = { snapshots: [], pages: [], console: [], pageErrors: [], dialogs: 0, requests: [] };
// A fresh, empty profile directory per run (Playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(plan.userDataDir, {
  executablePath: plan.chromium || "/usr/bin/chromium",
  args,
  headless: true,
  bypassCSP: !!plan.bypassCSP,
  viewport: { width: 1000, height: 900 },
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  page.on("dialog", async (d) => { out.dialogs += 1; await d.dismiss(); });
  page.on("request", (r) => out.requests.push(r.url()));
  await page.goto(plan.url, { waitUntil: "load" });
  await page.waitForSelector("[data-review-widget][data-state=ready]", { timeout: 20000 });
  await page.waitForTimeout(plan.settleMs ?? 200);   // let any injected handler (onerror) have its chance
  for (const step of plan.steps) {
    if (step.do === "snapshot") out.snapshots.push(await page.evaluate(snapshot));
    else if (step.do === "sort") await page.selectOption("[data-review-widget] [data-role=sort]", step.value);
    else if (step.do === "next") await page.click("[data-review-widget] [data-role=next]");
    else if (step.do === "prev") await page.click("[data-review-widget] [data-role=prev]");
    else if (step.do === "all_pages") {
      for (;;) {
        out.pages.push(await page.evaluate(() => [...document.querySelectorAll("[data-role=review]")].map(
          (li) => ({ id: li.getAttribute("data-review-id"), rating: Number(li.getAttribute("data-rating")) }))));
        if (await page.isDisabled("[data-review-widget] [data-role=next]")) break;
        await page.click("[data-review-widget] [data-role=next]");
      }
    } else if (step.do === "screenshot") await page.screenshot({ path: step.path, fullPage: true });
    else throw new Error(`unknown step ${JSON.stringify(step)}`);
  }
  out.finalPwned = await page.evaluate(() => (window.__pwned === undefined ? null : window.__pwned));
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(out));
