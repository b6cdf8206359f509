// Bundles the pages' JavaScript and CSS (ECharts, Leaflet and our own code, from npm) into
// services/dispatch/console/static/, which the dispatch service serves: nothing is fetched from a
// CDN at run time. `npm run build` writes the files (they are committed); `npm run check`
// rebuilds into a temporary folder and fails when the committed files differ (CI, make web-check).
import { build } from "esbuild";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const OUT = new URL("../services/dispatch/console/static/", import.meta.url).pathname;
const check = process.argv.includes("--check");
const outdir = check ? mkdtempSync(join(tmpdir(), "wangge-web-")) : OUT;

await build({
  entryPoints: { console: "src/console.js", handler: "src/handler.js" },
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outdir,
  loader: { ".png": "dataurl", ".svg": "dataurl" },
  legalComments: "eof",
  logLevel: "warning",
});

if (check) {
  const stale = [];
  for (const name of readdirSync(outdir)) {
    let committed = null;
    try {
      committed = readFileSync(join(OUT, name));
    } catch {}
    if (committed === null || !committed.equals(readFileSync(join(outdir, name)))) {
      stale.push(name);
    }
  }
  rmSync(outdir, { recursive: true, force: true });
  if (stale.length) {
    console.error(`stale bundle (run make web and commit): ${stale.join(", ")}`);
    process.exit(1);
  }
  console.log("bundle up to date");
}
