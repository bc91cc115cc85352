// kiln's launcher (dist/kiln.cjs). Its first lines are a shell's (cli/build.mjs) that start Node
// on it without NODE_EXTRA_CA_CERTS, which kiln reads only when it makes an HTTPS request
// (engine/extra-ca.ts). A no-op `kiln realize` is answered here from its record
// (cli/fast.ts) in a few milliseconds; a plain `kiln gc` runs gc's own small bundle
// (dist/kiln-gc.cjs: cli/gc-args.ts says which command lines are plain), a plain `kiln plan` or
// `kiln eval` theirs (dist/kiln-eval.cjs, cli/eval-args.ts); everything else runs the full CLI
// (dist/kiln-main.cjs). A bundle is compiled with V8's code cache: compiling the 0.9 MB
// CLI, and then every function a command runs, was a fifth of an evaluation of pi4-llm-os. The
// cache (<bundle>.cache) names the Node version and the bundle (the content digest the build
// appends to it) it was made for and carries a BLAKE3 digest of its code (against damage, not
// tampering: dist/ is trusted as the code beside it is; BLAKE3 because every command loads its
// binding anyway, where SHA-1 or zlib's CRC-32 would load node:crypto or zlib, ~4 ms, at every
// start): V8 checks neither the source's content (only its length) nor, here, the code's
// integrity, and damaged code would crash every command. A cache of another bundle, a damaged
// one, one V8 rejects, or none at all is made anew when the command ends; where dist/ is not
// writable, kiln runs without one.
import { accessSync, constants, existsSync, readFileSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Script } from "node:vm";
import { IMPORT_HOOK, REQUIRE_HOOK } from "../engine/dynamic-import.js";
import { adoptDeferredCa } from "../engine/extra-ca.js";
import { loadBlake } from "../store/blake-binding.js";
import { sqliteModule } from "../store/database.js";
import { endAnswered, tryFastRealize } from "./fast.js";
import { parseEvalArgs } from "./eval-args.js";
import { parseGcArgs } from "./gc-args.js";

function internalError(e: unknown): void {
  process.stderr.write(`internal error (a bug in kiln, please report it):\n${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 70;
}

/** The bundle's identity: the digest cli/build.mjs appends as its last line. */
function identity(source: string): string {
  const id = /\/\/ kiln-bundle-id ([0-9a-f]{64})\s*$/.exec(source.slice(-100))?.[1] ?? "unknown";
  return `${process.version} ${id}`;
}

/**
 * [u32 header length][header: identity, BLAKE3 of the code][V8's code]. The binding is loaded
 * here, not at the launcher's start: a no-op realize (cli/fast.ts) never needs it.
 */
function digest(code: Buffer): string {
  return loadBlake().module.blake3(code).toString("hex");
}

function readCache(file: string, id: string): Buffer | undefined {
  try {
    const data = readFileSync(file);
    const n = data.readUInt32LE(0);
    const [version, bundle, sum] = data.subarray(4, 4 + n).toString().split(" ");
    if (`${version} ${bundle}` !== id) return undefined;
    const code = data.subarray(4 + n);
    return digest(code) === sum ? code : undefined;
  } catch {
    return undefined;
  }
}

function writeCache(file: string, id: string, code: Buffer): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const header = Buffer.from(`${id} ${digest(code)}`);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(header.length, 0);
    writeFileSync(tmp, Buffer.concat([size, header, code]), { flag: "wx" });
    renameSync(tmp, file);
  } catch {
    // full, or gone read-only meanwhile: the next run compiles without a cache, as this one did
    try {
      unlinkSync(tmp);
    } catch {
      /* never made */
    }
  }
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * `source` compiled as the body of a function of `params`, through V8's code cache in `cacheFile`
 * for code of this identity: made (after the command, so that it holds the functions the command
 * compiled too) where there is none, it is another's or V8 rejects it, and the directory is
 * writable.
 */
function compileCached(file: string, source: string, id: string, cacheFile: string, params: string): (...a: unknown[]) => void {
  const cachedData = readCache(cacheFile, id);
  const script = new Script(`(function (${params}) {${source}\n})`, { filename: file, ...(cachedData ? { cachedData } : {}) });
  if ((!cachedData || script.cachedDataRejected) && writable(dirname(cacheFile))) {
    process.once("exit", () => writeCache(cacheFile, id, script.createCachedData()));
  }
  return script.runInThisContext() as (...a: unknown[]) => void;
}

/**
 * esbuild's JavaScript API as Node would load it (a CommonJS module at its own path, which it
 * checks), compiled through a code cache of its own beside the bundles (`esbuild.cache`, for this
 * Node and this exact file): a plan after an edit bundles the recipes, and compiling the API's
 * functions was ~5 ms of it.
 */
let esbuildApi: unknown;
function loadEsbuild(resolveFrom: NodeJS.Require): unknown {
  if (esbuildApi !== undefined) return esbuildApi;
  const file = resolveFrom.resolve("esbuild");
  const bytes = readFileSync(file);
  const module = { exports: {} as unknown };
  const fn = compileCached(file, bytes.toString("utf8"), `${process.version} esbuild-${digest(bytes)}`, join(dirname(__filename), "esbuild.cache"), "exports, require, module, __filename, __dirname");
  fn(module.exports, createRequire(file), module, file, dirname(file));
  return (esbuildApi = module.exports);
}

/** Run a bundle of dist/ (built by cli/build.mjs: a function body that exports `done`). */
function runBundle(name: string): void {
  const file = join(dirname(__filename), name);
  // Buffer decoding (simdutf) is ~10x faster here than readFileSync(file, "utf8") on a 0.9 MB file
  const source = readFileSync(file).toString("utf8");
  const fn = compileCached(file, source, identity(source), `${file}.cache`, "exports, require, module, __filename, __dirname, __kilnUrl");
  // a script compiled from a code cache has no import() of its own: the bundle uses this one
  (globalThis as { [IMPORT_HOOK]?: (s: string) => Promise<unknown> })[IMPORT_HOOK] = (s) => import(s);
  const module = { exports: {} as { done?: Promise<unknown> } };
  // better-sqlite3's JavaScript is the launcher's own copy (bundled for cli/fast.ts): the bundle
  // would otherwise find and compile its files again, ~4-5 ms
  const base = createRequire(file);
  const require = Object.assign((id: string): unknown => (id === "better-sqlite3" ? sqliteModule : base(id)), base);
  (globalThis as { [REQUIRE_HOOK]?: (s: string) => unknown })[REQUIRE_HOOK] = (s) => (s === "esbuild" ? loadEsbuild(base) : base(s));
  fn(module.exports, require, module, file, dirname(file), pathToFileURL(file).href);
  module.exports.done?.catch(internalError);
}

/** The light bundle that runs this command line (a plain gc, plan or eval), when it is there. */
function lightBundle(argv: readonly string[]): string | undefined {
  const name = parseGcArgs(argv) ? "kiln-gc.cjs" : parseEvalArgs(argv) ? "kiln-eval.cjs" : undefined;
  return name && existsSync(join(dirname(__filename), name)) ? name : undefined;
}

// the file of NODE_EXTRA_CA_CERTS, which the launcher's shell line kept from Node's start
adoptDeferredCa();
const argv = process.argv.slice(2);
let answered = false;
try {
  answered = tryFastRealize(argv);
} catch {
  // whatever went wrong (a locked database, a link in the way), the full CLI does it properly
  answered = false;
}
if (answered) endAnswered();
else {
  try {
    runBundle(lightBundle(argv) ?? "kiln-main.cjs");
  } catch (e) {
    internalError(e);
  }
}
