// npm run build: the compiled modules (dist/engine, dist/store, dist/cli: recipes import
// dist/engine/api.js; the TUI is loaded from dist/cli at run time) and two bundles:
//   dist/kiln.cjs       the launcher (package.json "bin"): answers a no-op realize from its record
//                       (cli/fast.ts) with node built-ins and SQLite only. CommonJS, because
//                       Node starts a CommonJS file ~13 ms sooner than an ES module here.
//   dist/kiln-main.cjs  the whole CLI, which the launcher compiles with V8's code cache for
//                       everything else (cli/kiln.ts): a script, so a function body the
//                       launcher runs, not a module; its map beside it, for stack traces.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, readFileSync, rmSync } from "node:fs";
import { build } from "esbuild";

execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  // native bindings, and the S3 client (loaded only for s3:// caches)
  external: ["better-sqlite3", "@napi-rs/blake-hash", "@napi-rs/lzma", "esbuild", "zstd-napi", "@aws-sdk/client-s3"],
  logLevel: "warning",
};
await build({
  ...common,
  entryPoints: ["cli/main.ts"],
  format: "cjs",
  // no sourceMappingURL comment: engine/source-map.ts finds the map beside the file when a stack
  // trace is printed, and nothing parses it before
  sourcemap: "external",
  outfile: "dist/kiln-main.cjs",
  // the launcher passes the file's URL in (cli/kiln.ts)
  define: { "import.meta.url": "__kilnUrl" },
});
// the bundle's identity, last (the map's lines stay as they are): the launcher uses a code cache
// only if it was made from a bundle with this identity
appendFileSync("dist/kiln-main.cjs", `\n// kiln-main-id ${createHash("sha256").update(readFileSync("dist/kiln-main.cjs")).digest("hex")}\n`);
await build({
  ...common,
  entryPoints: ["cli/kiln.ts"],
  format: "cjs",
  outfile: "dist/kiln.cjs",
  define: { "import.meta.url": "__kilnUrl" },
  banner: { js: "#!/usr/bin/env node\nconst __kilnUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// the single bundle of earlier versions, if a checkout still has it
chmodSync("dist/kiln.cjs", 0o755);
rmSync("dist/kiln.mjs", { force: true });
rmSync("dist/kiln-main.mjs", { force: true });
rmSync("dist/kiln-main.mjs.map", { force: true });
rmSync("dist/kiln-fast.cjs", { force: true });
