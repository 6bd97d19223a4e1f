#!/usr/bin/env node
// The portal's chart library against the brief's other candidate: one line of N points (default
// 100,000) drawn by uPlot (the portal's, from node_modules) and, when PLOTLY_JS names a Plotly
// bundle, by Plotly's scattergl, in Debian's headless Chromium. Prints, per round, the time to
// the first drawing and the mean time to redraw after new data (for uPlot a frame's work; over
// 16 ms a chart stutters). Needs `make node-install` and /usr/bin/chromium:
//
//     node bench/web_chart.mjs [points] [rounds]
//     npm pack plotly.js-dist-min && tar xzf plotly.js-dist-min-*.tgz &&
//         PLOTLY_JS=package/plotly.min.js node bench/web_chart.mjs
//
// Headless Chromium renders WebGL in software, which is harder on Plotly's scattergl than a GPU
// would be; the bundle sizes (printed too) do not depend on that.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { chromium } from "@playwright/test";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const points = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 3);
const uplotJs = join(root, "node_modules", "uplot", "dist", "uPlot.iife.min.js");
const plotlyJs = process.env["PLOTLY_JS"];

function size(path) {
  const bytes = readFileSync(path);
  return `${(statSync(path).size / 1024).toFixed(0)} kB minified, ${(gzipSync(bytes).length / 1024).toFixed(0)} kB gzipped`;
}

const page = `<!doctype html><html><body><div id="u"></div><div id="p"></div>
<script src="uplot.js"></script>${plotlyJs ? '<script src="plotly.js"></script>' : ""}
<script>
const N = ${points};
const xs = new Float64Array(N), ys = new Float64Array(N);
for (let i = 0; i < N; i++) { xs[i] = 1.7e9 + i / 1000; ys[i] = Math.sin(i / 500) + Math.random() * 0.1; }
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));
async function uplot() {
  let t = performance.now();
  const chart = new uPlot({ width: 1000, height: 300, series: [{}, { stroke: "blue" }] }, [xs, ys], document.getElementById("u"));
  await tick();
  const first = performance.now() - t;
  let redraw = 0;
  for (let k = 0; k < 20; k++) { ys[k] += 1; t = performance.now(); chart.setData([xs, ys]); await tick(); redraw += performance.now() - t; }
  chart.destroy();
  return { first, redraw: redraw / 20 };
}
async function plotly() {
  if (typeof Plotly === "undefined") return null;
  const trace = () => [{ x: Array.from(xs), y: Array.from(ys), type: "scattergl", mode: "lines" }];
  let t = performance.now();
  await Plotly.newPlot("p", trace(), { width: 1000, height: 300 });
  const first = performance.now() - t;
  t = performance.now();
  for (let k = 0; k < 20; k++) { ys[k] += 1; await Plotly.react("p", trace(), { width: 1000, height: 300 }); }
  const redraw = (performance.now() - t) / 20;
  Plotly.purge("p");
  return { first, redraw };
}
window.bench = async () => ({ uplot: await uplot(), plotly: await plotly() });
</script></body></html>`;

const folder = mkdtempSync(join(tmpdir(), "etp-chart-bench-"));
writeFileSync(join(folder, "index.html"), page);
writeFileSync(join(folder, "uplot.js"), readFileSync(uplotJs));
if (plotlyJs) writeFileSync(join(folder, "plotly.js"), readFileSync(plotlyJs));

const browser = await chromium.launch({ executablePath: process.env["ETP_CHROMIUM"] ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const tab = await browser.newPage();
  await tab.goto(`file://${join(folder, "index.html")}`);
  console.log(`one line of ${points} points, ${rounds} rounds`);
  console.log(`uPlot: ${size(uplotJs)}${plotlyJs ? `; Plotly: ${size(plotlyJs)}` : ""}`);
  const ms = (value) => `${value.toFixed(1)} ms`;
  for (let round = 1; round <= rounds; round++) {
    const { uplot, plotly } = await tab.evaluate(() => window.bench());
    const other = plotly ? `; Plotly scattergl first ${ms(plotly.first)}, redraw ${ms(plotly.redraw)}` : "";
    console.log(`round ${round}: uPlot first ${ms(uplot.first)}, redraw ${ms(uplot.redraw)}${other}`);
  }
} finally {
  await browser.close();
  rmSync(folder, { recursive: true, force: true });
}
