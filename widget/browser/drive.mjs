// Drives the example page in Debian's Chromium through playwright-core (no browser download).
//
//   node widget/browser/drive.mjs '<plan as JSON>'
//
// plan: {url, chromium?, bypassCSP?, userDataDir, steps: [...], locale?, htmlLang?, waitState?}
//   locale: the browser's language (Playwright's context option: navigator.languages, Accept-Language)
//   htmlLang: rewrite the example page's <html lang="..."> to this value; "" removes the attribute
//   waitState: the widget state to wait for before the steps ("ready" by default, or "error")
//   waitFor: a CSS selector to wait for instead (a page without the widget, e.g. a JSON-LD page)
// each step is one of
//   {"do": "snapshot"}                  record what the widget shows (see snapshot() below)
//   {"do": "open_moderation"}           expand the "how we moderate" note
//   {"do": "sort", "value": "rating_desc"}   choose a sort order in the widget's select
//   {"do": "next"} | {"do": "prev"}     click the pager
//   {"do": "all_pages"}                 record the review ids of every page (clicking Next)
//   {"do": "screenshot", "path": "..."} full-page PNG
//   {"do": "elements", "within"?: sel}  record every element's tag name (inside ``within``), every script's
//                                       type and every on* attribute on the page
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
    uiLocale: root.getAttribute("data-ui-locale"),
    rootLang: root.getAttribute("lang"),
    dataLocale: root.getAttribute("data-locale"),
    htmlLang: document.documentElement.getAttribute("lang"),
    navigatorLanguages: [...navigator.languages],
    heading: text("[data-role=heading]"),
    sortLabel: q("[data-role=sort]") ? q("[data-role=sort]").parentElement.firstChild.textContent : null,
    sortOptions: q("[data-role=sort]") ? [...q("[data-role=sort]").options].map((o) => o.textContent) : [],
    prevText: text("[data-role=prev]"),
    nextText: text("[data-role=next]"),
    histogramLabels: [...root.querySelectorAll("[data-role=histogram] li")].map(
      (li) => li.querySelector(".rw-hist-label").textContent),
    histogramNote: text(".rw-hist-note"),
    moderationTitle: text("[data-role=moderation] summary"),
    moderationLines: Object.fromEntries([...root.querySelectorAll("[data-role=moderation] p[data-message]")].map(
      (p) => [p.getAttribute("data-message"), p.textContent])),
    error: root.getAttribute("data-error"),
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
      dateText: li.querySelector("time").textContent,
      lang: li.getAttribute("lang"),
      bodyDir: li.querySelector("[data-role=body]").getAttribute("dir"),
      bodyDirection: getComputedStyle(li.querySelector("[data-role=body]")).direction,
      headDirection: getComputedStyle(li.querySelector(".rw-review-head")).direction,
      titleDir: li.querySelector("[data-role=title]") ? li.querySelector("[data-role=title]").getAttribute("dir") : null,
      bodyRect: (() => { const r = li.querySelector("[data-role=body]").getBoundingClientRect();
        return { left: r.left, right: r.right, width: r.width }; })(),
      ratingText: li.querySelector(".rw-rating").textContent,
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
  ...(plan.locale ? { locale: plan.locale } : {}),
});
try {
  const page = context.pages()[0] || await context.newPage();
  page.on("console", (m) => out.console.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => out.pageErrors.push(String(e)));
  page.on("dialog", async (d) => { out.dialogs += 1; await d.dismiss(); });
  page.on("request", (r) => out.requests.push(r.url()));
  if (plan.htmlLang !== undefined && plan.htmlLang !== null) {
    await page.route("**/example.html*", async (route) => {
      const resp = await route.fetch();
      const html = (await resp.text()).replace(/<html[^>]*>/,
        plan.htmlLang === "" ? "<html>" : `<html lang="${plan.htmlLang}">`);
      await route.fulfill({ response: resp, body: html });
    });
  }
  await page.goto(plan.url, { waitUntil: "load" });
  await page.waitForSelector(plan.waitFor || `[data-review-widget][data-state=${plan.waitState || "ready"}]`,
                             { timeout: 20000 });
  await page.waitForTimeout(plan.settleMs ?? 200);   // let any injected handler (onerror) have its chance
  for (const step of plan.steps) {
    if (step.do === "snapshot") out.snapshots.push(await page.evaluate(snapshot));
    else if (step.do === "open_moderation") await page.evaluate(() => {
      document.querySelector("[data-review-widget] [data-role=moderation]").open = true; });
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
    else if (step.do === "elements") out.elements = await page.evaluate((within) => ({
      tags: [...document.querySelectorAll(within ? `${within} *` : "*")].map((e) => e.tagName.toLowerCase()),
      scripts: [...document.querySelectorAll("script")].map((e) => e.getAttribute("type")),
      handlers: [...document.querySelectorAll("*")].flatMap((e) => [...e.attributes].map((a) => a.name))
        .filter((n) => n.startsWith("on")) }), step.within || null);
    else throw new Error(`unknown step ${JSON.stringify(step)}`);
  }
  out.finalPwned = await page.evaluate(() => (window.__pwned === undefined ? null : window.__pwned));
} finally {
  await context.close();
}
process.stdout.write(JSON.stringify(out));
