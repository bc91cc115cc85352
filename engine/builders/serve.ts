// The builder side of a remote build (`kiln builder-serve`, run over SSH by engine/builders/ssh.ts):
// three exchanges on stdin/stdout, each in one SSH session.
//
//   missing  stdin: JSON list of store path names; stdout: JSON list of those this store lacks
//   import   stdin: a tar of, per path (references first), `<path>.json` ({path, narDigest,
//            references, ca}) and `<path>.tar.zst` (store/path-archive.ts); each is imported,
//            verified by re-hashing like any substitute
//   build    stdin: a BuildRequest (JSON); the build's output goes to stderr as it comes; stdout:
//            a tar of `<output>.tar.zst` for each output the build produced (its tree as built,
//            unregistered: the requester registers it, so the digest is made where the result is
//            used) and `result.json` ({exitCode, signal})
//
// A tar stream frames the messages: entries with sizes, no hand-written format.
import { createReadStream, createWriteStream, statSync } from "node:fs";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { KilnError } from "../../store/errors.js";
import type { LocalStore } from "../../store/local-store.js";
import { packPath, unpackPath } from "../../store/path-archive.js";
import { parseStorePathName, removeTree, type StorePathName } from "../../store/paths.js";
import type { Builder } from "../builder.js";
import type { BuildRequest } from "../build-request.js";

export interface ImportInfo {
  path: StorePathName;
  narDigest: string;
  references: StorePathName[];
  ca?: string;
}

export interface BuildOutcome {
  exitCode: number | null;
  signal: string | null;
}

async function readAll(input: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const protocol = (what: string) => new KilnError("USAGE", `builder-serve: ${what}`, "builder-serve is run by another kiln over SSH, not by hand");

/** A message that must be JSON: what came instead is a protocol error (exit 2), not a crash. */
function parseMessage(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw protocol(`expected ${what} as JSON, got ${JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text)}`);
  }
}

function storePaths(v: unknown): StorePathName[] {
  if (!Array.isArray(v) || v.some((p) => typeof p !== "string" || !parseStorePathName(p) || p.includes("/"))) throw protocol("expected a JSON list of store path names");
  return v as StorePathName[];
}

export async function serveMissing(store: LocalStore, input: Readable, output: Writable): Promise<void> {
  const paths = storePaths(parseMessage((await readAll(input)).toString("utf8"), "a list of store path names"));
  output.write(JSON.stringify(paths.filter((p) => !store.isValid(p))) + "\n");
}

export async function serveImport(store: LocalStore, input: Readable, signal: AbortSignal): Promise<void> {
  const scratch = store.scratchDir("builder-import");
  try {
    const extract = tar.extract();
    const done = pipeline(input, extract, { signal });
    done.catch(() => {}); // awaited below; an import that throws first stops the stream early
    let info: ImportInfo | undefined;
    for await (const entry of extract) {
      const name = entry.header.name;
      if (name.endsWith(".json")) {
        info = parseMessage((await readAll(entry)).toString("utf8"), `the path's description (${name})`) as ImportInfo;
        storePaths([info.path, ...info.references]);
        continue;
      }
      if (!info || name !== `${info.path}.tar.zst`) throw protocol(`unexpected entry ${name}`);
      const file = join(scratch, name);
      await pipeline(entry, createWriteStream(file));
      const tree = join(scratch, info.path);
      await unpackPath(file, info.path, tree, signal);
      removeTree(file);
      store.importPath({ tree, path: info.path, references: info.references, narDigest: info.narDigest, ...(info.ca ? { ca: info.ca } : {}) });
      info = undefined;
    }
    await done;
  } finally {
    removeTree(scratch);
  }
}

export async function serveBuild(store: LocalStore, builder: Builder, input: Readable, output: Writable, log: (chunk: Buffer) => void, signal: AbortSignal): Promise<void> {
  const req = parseMessage((await readAll(input)).toString("utf8"), "a build request") as BuildRequest;
  if (typeof req !== "object" || req === null || !Array.isArray(req.inputs) || typeof req.system !== "string" || typeof req.outputs !== "object") {
    throw protocol("expected a build request (inputs, system, outputs...)");
  }
  const absent = storePaths(req.inputs).filter((p) => !store.isValid(p));
  if (absent.length) throw protocol(`inputs missing from this store: ${absent.slice(0, 3).join(", ")}`);
  // the requester decides where it may run: only what this machine builds, locally
  if (!builder.systems.includes(req.system)) throw new KilnError("SYSTEM_UNSUPPORTED", `this builder builds for ${builder.systems.join(", ")}, not ${req.system}`, "remove system=" + req.system + " from this builder's URL", { system: req.system });
  builder.checkAvailable();
  const r = await builder.build(req, { signal, onOutput: log });
  const scratch = store.scratchDir("builder-out");
  const pack = tar.pack();
  const sent = pipeline(pack, output);
  try {
    for (const [o, host] of Object.entries(r.outputs)) {
      if (host === undefined || r.exitCode !== 0) continue;
      const file = join(scratch, `${o}.tar.zst`);
      await packPath(host, req.outputs[o]!, file, { signal });
      await new Promise<void>((resolve, reject) => {
        const sink = pack.entry({ name: `${o}.tar.zst`, size: statSync(file).size }, (e) => (e ? reject(e) : resolve()));
        createReadStream(file).pipe(sink);
      });
    }
    const outcome: BuildOutcome = { exitCode: r.exitCode, signal: r.signal };
    pack.entry({ name: "result.json" }, JSON.stringify(outcome));
    pack.finalize();
    await sent;
  } finally {
    r.release();
    removeTree(scratch);
  }
}
