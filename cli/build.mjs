// npm run build: the compiled modules (dist/engine, dist/store, dist/cli: the TUI is loaded from
// dist/cli at run time, and KILN_TEST_CLI=dist/cli/main.js runs the CLI unbundled) and three bundles:
//   dist/kiln.cjs       the launcher (package.json "bin"): answers a no-op realize from its record
//                       (cli/fast.ts) with node built-ins and SQLite only. CommonJS, because
//                       Node starts a CommonJS file ~13 ms sooner than an ES module here.
//   dist/kiln-main.cjs  the whole CLI, which the launcher compiles with V8's code cache for
//                       everything else (cli/kiln.ts): a script, so a function body the
//                       launcher runs, not a module; its map beside it, for stack traces.
//   dist/kiln-gc.cjs    `kiln gc` alone (cli/gc-main.ts), the same way, for a plain gc command
//                       line (cli/gc-args.ts).
//   dist/kiln-eval.cjs  `kiln plan` and `kiln eval` (cli/eval-main.ts), the same way, for a plain
//                       command line of either (cli/eval-args.ts).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { appendFileSync, chmodSync, existsSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

/**
 * string-width (yargs' help layout) builds an Intl.Segmenter and regular expressions over Unicode
 * properties (\p{RGI_Emoji}...) when its module loads: ~35-50 ms here, in ICU, at every start of
 * every command, though only help text is ever measured. Each is made at its first use instead:
 * `const x = new Intl.Segmenter()` and `const x = /...\p{...}/` at the top of the module become
 * `x()`, a function that makes the value once.
 */
function lazyStringWidth() {
  const declaration = /^const (\w+) = (new Intl\.Segmenter\(\)|\/.*\\p\{.*\/[a-z]*);$/gm;
  return {
    name: "lazy-string-width",
    setup(b) {
      b.onLoad({ filter: /[\\/]string-width[\\/]index\.js$/ }, (args) => {
        let source = readFileSync(args.path, "utf8");
        const names = [];
        source = source.replace(declaration, (_, name, value) => {
          names.push(name);
          return `let ${name}Made; const ${name}Lazy = () => (${name}Made ??= ${value});`;
        });
        if (names.length === 0) throw new Error(`${args.path}: no Intl.Segmenter or Unicode-property regular expression at its top level any more; update lazyStringWidth in cli/build.mjs`);
        for (const name of names) source = source.replace(new RegExp(`(?<![\\w.])${name}\\b(?!Made|Lazy)`, "g"), `${name}Lazy()`);
        return { contents: source, loader: "js" };
      });
    },
  };
}

/**
 * Two things yargs' platform shim does at every start, for help text kiln rarely prints:
 * - it guesses a version for `--version` from the package.json nearest to its "main file": the
 *   folder above its node_modules, and where there is none (kiln's bundle), the working
 *   directory. From a user's directory that is a readdir of every folder up to the root, and
 *   where none has a package.json, an AssertionError that loads node:assert: ~3 ms, for a version
 *   kiln turns off (`.version(false)`). Its main file is kiln's own package instead (dist/..),
 *   where the walk ends at once.
 * - it reads the terminal's width, which makes process.stdout (for a pipe, a socket with Node's
 *   net machinery: ~3-5 ms). It is read when help is laid out instead.
 */
function yargsShim() {
  const edits = [
    ["const mainFilename = __dirname.substring(0, __dirname.lastIndexOf('node_modules'));",
      'const mainFilename = fileURLToPath(new URL("../package.json", import.meta.url));'],
    ["stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null",
      "get stdColumns() { return typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null; }"],
  ];
  return {
    name: "yargs-shim",
    setup(b) {
      b.onLoad({ filter: /[\\/]yargs[\\/]lib[\\/]platform-shims[\\/]esm\.mjs$/ }, (args) => {
        let source = readFileSync(args.path, "utf8");
        for (const [from, to] of edits) {
          if (!source.includes(from)) throw new Error(`${args.path}: no \`${from}\` any more; update yargsShim in cli/build.mjs`);
          source = source.replace(from, to);
        }
        return { contents: source, loader: "js" };
      });
    },
  };
}

/**
 * lru-cache (the digest cache's memory) picks its clock when its module loads:
 * `typeof performance`, which makes Node load perf_hooks (~1.3 ms of every start) for a clock
 * that only entries with a time to live read, and kiln's have none. The clock is picked at its
 * first use instead, the same way.
 */
function lazyLruClock() {
  const from = 'var L=typeof performance=="object"&&performance&&typeof performance.now=="function"?performance:Date;';
  const to = 'var L={now:()=>(typeof performance=="object"&&performance&&typeof performance.now=="function"?performance:Date).now()};';
  return {
    name: "lazy-lru-clock",
    setup(b) {
      b.onLoad({ filter: /[\\/]lru-cache[\\/]dist[\\/]esm[\\/]node[\\/]index\.min\.js$/ }, (args) => {
        const source = readFileSync(args.path, "utf8");
        if (!source.includes(from)) throw new Error(`${args.path}: no \`${from}\` any more; update lazyLruClock in cli/build.mjs`);
        return { contents: source.replace(from, to), loader: "js" };
      });
    },
  };
}

/**
 * Node's built-in modules that are not part of its start-up snapshot cost a compilation when
 * first required (child_process pulls in net and dgram, https pulls in tls, fs/promises its
 * streams), and zstd-napi (the binary cache's archives) a native binding and its streams:
 * 20-30 ms at every start, for modules most commands never touch (an eval spawns nothing,
 * fetches nothing). Each is bundled as a stand-in whose properties load the real module on first
 * access; the property names are the ones this Node and this package have, read at build time.
 * Where a module's functions are taken at load by the code that imports them (chokidar keeps
 * fs/promises' stat), a plain function (a lower-case name: not a class) is a stand-in function
 * that loads the module when first called.
 */
const LAZY_BUILTINS = ["child_process", "crypto", "dgram", "http", "https", "net", "tls", "tty", "zlib", "worker_threads", "perf_hooks",
  "readline", "stream/promises", "dns", "http2", "inspector", "v8", "assert", "fs/promises"];
const LAZY_PACKAGES = ["zstd-napi"];
const CALL_STAND_INS = new Set(["fs/promises"]);
/**
 * yargs takes assert's strictEqual and notStrictEqual when its module loads and calls them while
 * it reads the options of every command: loading node:assert for that (its AssertionError makes
 * process.stderr) is ~3 ms of every start. These two check what Node's own do (Object.is) and load
 * node:assert only when the check fails (or an argument is missing), for its error.
 */
const CHECKED_STAND_INS = {
  assert: {
    strictEqual: "(...a) => { if (a.length < 2 || !Object.is(a[0], a[1])) load().strictEqual(...a); }",
    notStrictEqual: "(...a) => { if (a.length < 2 || Object.is(a[0], a[1])) load().notStrictEqual(...a); }",
  },
};
function lazyModules() {
  const require = createRequire(import.meta.url);
  const specifier = (m) => (LAZY_PACKAGES.includes(m) ? m : `node:${m}`);
  const names = new Map([...LAZY_BUILTINS, ...LAZY_PACKAGES].map((m) => {
    const real = require(specifier(m));
    const callable = (k) => CALL_STAND_INS.has(m) && typeof real[k] === "function" && /^[a-z]/.test(k);
    return [m, Object.getOwnPropertyNames(real).map((k) => [k, callable(k)])];
  }));
  const escape = (m) => m.replace(/[/-]/g, "\\$&");
  return {
    name: "lazy-modules",
    setup(b) {
      const filter = new RegExp(`^((node:)?(${LAZY_BUILTINS.map(escape).join("|")})|${LAZY_PACKAGES.map(escape).join("|")})$`);
      b.onResolve({ filter }, (args) => args.namespace === "lazy-module"
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ""), namespace: "lazy-module" });
      b.onLoad({ filter: /.*/, namespace: "lazy-module" }, (args) => ({
        contents: `let m; const load = () => (m ??= require(${JSON.stringify(specifier(args.path))}));\n` +
          `const call = (k) => function (...a) { return load()[k].apply(this, a); };\n` +
          `const checked = { ${Object.entries(CHECKED_STAND_INS[args.path] ?? {}).map(([k, f]) => `${k}: ${f}`).join(", ")} };\n` +
          `for (const [k, callable] of ${JSON.stringify(names.get(args.path))}) Object.defineProperty(exports, k, { enumerable: true, ...(k in checked ? { value: checked[k] } : callable ? { value: call(k) } : { get: () => load()[k] }) });\n`,
        loader: "js",
      }));
    },
  };
}

execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" });
const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  // native bindings, and the S3 client (loaded only for s3:// caches); zstd-napi is one too, made
  // lazy by lazyModules
  external: ["better-sqlite3", "@napi-rs/blake-hash", "@napi-rs/lzma", "esbuild", "@aws-sdk/client-s3"],
  logLevel: "warning",
  plugins: [lazyStringWidth(), yargsShim(), lazyLruClock(), lazyModules()],
};
/**
 * The engine the bundles carry, for engine/module-records.ts: module records made by one bundle of
 * this build are good for the others (a realize's for the plan after an edit), and for no other
 * build. Every source of engine/ and store/ goes into it, and the locked packages.
 */
const engineId = (() => {
  const h = createHash("sha256");
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1)).forEach((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) walk(p);
    else if (/\.(ts|c)$/.test(e.name) && !/\.test\.ts$/.test(e.name)) h.update(`${p}\0`).update(readFileSync(p)).update("\0");
  });
  for (const d of ["engine", "store"]) walk(d);
  // and the packages they run with (BLAKE3's binding, esbuild)
  h.update(readFileSync("package-lock.json"));
  return h.digest("hex");
})();

// the bundles the launcher runs: the whole CLI, gc's own (cli/gc-main.ts: a plain `kiln gc`
// without the rest) and plan's and eval's (cli/eval-main.ts); each with its identity last (the map's lines stay as they are), so the
// launcher uses a code cache only if it was made from a bundle with this identity
for (const [entry, out] of [["cli/main.ts", "dist/kiln-main.cjs"], ["cli/gc-main.ts", "dist/kiln-gc.cjs"], ["cli/eval-main.ts", "dist/kiln-eval.cjs"]]) {
  await build({
    ...common,
    entryPoints: [entry],
    format: "cjs",
    // no sourceMappingURL comment: engine/source-map.ts finds the map beside the file when a stack
    // trace is printed, and nothing parses it before
    sourcemap: "external",
    outfile: out,
    // the launcher passes the file's URL in (cli/kiln.ts)
    define: { "import.meta.url": "__kilnUrl", __KILN_ENGINE_ID: JSON.stringify(engineId) },
  });
  appendFileSync(out, `\n// kiln-bundle-id ${createHash("sha256").update(readFileSync(out)).digest("hex")}\n`);
}
await build({
  ...common,
  // better-sqlite3's JavaScript goes into the launcher (its addon stays a file, loaded by path)
  external: common.external.filter((m) => m !== "better-sqlite3"),
  entryPoints: ["cli/kiln.ts"],
  format: "cjs",
  outfile: "dist/kiln.cjs",
  define: { "import.meta.url": "__kilnUrl" },
  // run as a program, the file is first a shell script (to JavaScript, the second line is a string
  // and a comment): it starts Node on itself with NODE_EXTRA_CA_CERTS moved aside, which Node 20
  // would load at every start, ~38 ms for a system bundle (engine/extra-ca.ts). `node
  // dist/kiln.cjs` skips it: Node then loads the file itself, as for any script.
  banner: {
    js: [
      "#!/bin/sh",
      `":" //; if [ -n "\${NODE_EXTRA_CA_CERTS-}" ]; then KILN_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export KILN_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"`,
      "const __kilnUrl = require('node:url').pathToFileURL(__filename).href;",
    ].join("\n"),
  },
});
// the single bundle of earlier versions, if a checkout still has it
chmodSync("dist/kiln.cjs", 0o755);
/**
 * Compile `out` with the C compiler (CC, else cc), written aside and renamed into place (a running
 * kiln may have the old one mapped). Where that fails, `out` is removed and a note says what is
 * slower without it.
 */
function compile(out, args, without) {
  try {
    execFileSync(process.env.CC || "cc", ["-O2", "-Wall", ...args, "-o", `${out}.tmp`], { stdio: ["ignore", "inherit", "inherit"] });
    renameSync(`${out}.tmp`, out);
  } catch (e) {
    rmSync(`${out}.tmp`, { force: true });
    rmSync(out, { force: true });
    process.stderr.write(`note: ${out} not built (${e.code === "ENOENT" ? "no C compiler, cc" : "cc failed"}); ${without}\n`);
  }
}
// the sandbox's helper (engine/builders/sandbox-helper.c): where there is no C compiler, builds
// take the slower way into their namespace, through unshare(1), a shell and mount(8)
compile("dist/kiln-sandbox", ["engine/builders/sandbox-helper.c"], "builds start a little slower without it");
// the native tree hasher (store/tree-hash.c, with the official BLAKE3 C implementation in
// store/blake3-c): without it, large source trees are hashed by store/archive.ts's own walk
{
  const b3 = (f) => `store/blake3-c/${f}`;
  const simd = process.arch === "x64"
    ? ["sse2", "sse41", "avx2", "avx512"].map((s) => b3(`blake3_${s}_x86-64_unix.S`))
    : process.arch === "arm64"
      ? ["-DBLAKE3_USE_NEON=1", b3("blake3_neon.c")]
      : ["-DBLAKE3_NO_SSE2", "-DBLAKE3_NO_SSE41", "-DBLAKE3_NO_AVX2", "-DBLAKE3_NO_AVX512"];
  const blake3 = [...["blake3.c", "blake3_dispatch.c", "blake3_portable.c"].map(b3), ...simd];
  compile("dist/kiln-hash", ["-pthread", "store/tree-hash.c", ...blake3], "large source trees are hashed more slowly without it");
  // the text hasher (store/text-hash.c), a Node-API addon built against the headers of the Node
  // that runs this build (npm's nodedir, else the include/node beside its binary): without it,
  // store/digest.ts hashes text through @napi-rs/blake-hash, ~10% slower an evaluation
  const headers = [process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, "include", "node"), join(dirname(dirname(process.execPath)), "include", "node")]
    .find((d) => d && existsSync(join(d, "node_api.h")));
  const slower = "evaluation hashes text a little more slowly without it";
  if (headers) compile("dist/kiln-text-hash.node", ["-shared", "-fPIC", "-fvisibility=hidden", "-Wl,-Bsymbolic", "-I", headers, "store/text-hash.c", ...blake3], slower);
  else {
    rmSync("dist/kiln-text-hash.node", { force: true });
    process.stderr.write(`note: dist/kiln-text-hash.node not built (no node_api.h in npm's nodedir or beside ${process.execPath}); ${slower}\n`);
  }
}
rmSync("dist/kiln.mjs", { force: true });
rmSync("dist/kiln-main.mjs", { force: true });
rmSync("dist/kiln-main.mjs.map", { force: true });
rmSync("dist/kiln-fast.cjs", { force: true });
