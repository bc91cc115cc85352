// kiln's launcher (dist/kiln.cjs). A no-op `kiln realize` is answered here from its record
// (cli/fast.ts) in a few milliseconds; everything else runs the full CLI (dist/kiln-main.cjs),
// compiled with V8's code cache: compiling the 0.9 MB bundle, and then every function a command
// runs, was a fifth of an evaluation of pi4-llm-os. The cache (dist/kiln-main.cjs.cache) holds
// the identity of the bundle it was made from; a cache of another build, one V8 rejects, or none
// at all is made anew when the command ends. Where dist/ is not writable, kiln runs without one.
import { closeSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Script } from "node:vm";
import { IMPORT_HOOK } from "../engine/dynamic-import.js";
import { tryFastRealize } from "./fast.js";

function internalError(e: unknown): void {
  process.stderr.write(`internal error (a bug in kiln, please report it):\n${(e as Error)?.stack ?? String(e)}\n`);
  process.exitCode = 70;
}

/** The bundle's identity: a cache made from another build of it must not be used. */
function identity(file: string): string {
  const s = statSync(file);
  return `${process.version}:${s.size}:${s.mtimeMs}:${s.ino}`;
}

function readCache(file: string, id: string): Buffer | undefined {
  try {
    const data = readFileSync(file);
    const n = data.readUInt32LE(0);
    if (data.subarray(4, 4 + n).toString() !== id) return undefined;
    return data.subarray(4 + n);
  } catch {
    return undefined;
  }
}

function writeCache(file: string, id: string, data: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const head = Buffer.alloc(4);
    const idBytes = Buffer.from(id);
    head.writeUInt32LE(idBytes.length, 0);
    const fd = openSync(tmp, "w");
    try {
      writeSync(fd, head);
      writeSync(fd, idBytes);
      writeSync(fd, data);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch {
    // dist/ is read-only, or full: the next run compiles without a cache, as this one did
  }
}

function runMain(): void {
  const file = join(dirname(__filename), "kiln-main.cjs");
  const cacheFile = `${file}.cache`;
  const id = identity(file);
  const cachedData = readCache(cacheFile, id);
  const source = readFileSync(file, "utf8");
  const script = new Script(`(function (exports, require, module, __filename, __dirname, __kilnUrl) {${source}\n})`, {
    filename: file,
    ...(cachedData ? { cachedData } : {}),
  });
  if (!cachedData || script.cachedDataRejected) {
    // after the command, so the cache holds the functions it compiled too
    process.once("exit", () => writeCache(cacheFile, id, script.createCachedData()));
  }
  // a script compiled from a code cache has no import() of its own: the bundle uses this one
  (globalThis as { [IMPORT_HOOK]?: (s: string) => Promise<unknown> })[IMPORT_HOOK] = (s) => import(s);
  const module = { exports: {} as { done?: Promise<unknown> } };
  (script.runInThisContext() as (...a: unknown[]) => void)(module.exports, createRequire(file), module, file, dirname(file), pathToFileURL(file).href);
  module.exports.done?.catch(internalError);
}

let answered = false;
try {
  answered = tryFastRealize(process.argv.slice(2));
} catch {
  // whatever went wrong (a locked database, a link in the way), the full CLI does it properly
  answered = false;
}
if (!answered) {
  try {
    runMain();
  } catch (e) {
    internalError(e);
  }
}
