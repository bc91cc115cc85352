// The lockfile (kiln.lock): the pinned state of a recipe set, committed to git, so that what a
// build depends on outside the recipes is reviewable and drift is caught:
//   - every fixed output: name -> sha256 and where its bytes may come from
//   - every host tool: package version and binary digest
//   - the recipe set's identity: its entry file
// Sorted, human-readable JSON. `kiln lock` writes it and shows the diff; `--locked` refuses to
// build when it would change.
import { KilnError } from "../store/errors.js";
import { canonicalJson } from "./canonical.js";
import type { FetchSource } from "./derivation.js";
import type { Node } from "./evaluate.js";
import { describeSource } from "./fetch.js";
import { underRoot } from "./recipe-snapshot.js";

export const LOCK_VERSION = 1;

export interface Lock {
  version: number;
  recipes: { entry: string };
  fixedOutputs: Record<string, { sha256: string; sources: string[] }>;
  hostTools: Record<string, { package: string | null; version: string | null; digest: string }>;
}

/**
 * A fetch source as the lock names it: local files and mirror folders inside the recipe set's
 * folder relative to it, so that the lock is the same in every clone, on every machine.
 */
function portable(s: FetchSource, root: string): FetchSource {
  if ("file" in s) return { file: underRoot(root, s.file) };
  if ("mirror" in s) return { mirror: underRoot(root, s.mirror) };
  return s;
}

/** The lock of every derivation in `nodes`; `entry` relative to `root`, the folder of the lock. */
export function computeLock(entry: string, nodes: Iterable<Node>, root: string): Lock {
  const fixedOutputs: Lock["fixedOutputs"] = {};
  const hostTools: Lock["hostTools"] = {};
  for (const n of nodes) {
    if (n.drv.fixed) {
      fixedOutputs[n.name] = { sha256: n.drv.fixed.sha256, sources: (n.meta.sources ?? []).map((s) => describeSource(portable(s, root))) };
    }
    for (const [name, fp] of Object.entries(n.drv.hostTools)) {
      hostTools[name] = { package: fp.package, version: fp.version, digest: fp.digest };
    }
  }
  return { version: LOCK_VERSION, recipes: { entry }, fixedOutputs: sortKeys(fixedOutputs), hostTools: sortKeys(hostTools) };
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]!]));
}

/**
 * Read the text of a kiln.lock. Anything that is not one (truncated or hand-broken JSON, another
 * shape) is refused with the file and, for bad JSON, the line and column where it goes wrong.
 */
export function parseLock(text: string, file: string): Lock {
  const refuse = (what: string, position?: string) =>
    new KilnError("LOCK_INVALID", `${position ?? file} is not a valid kiln.lock: ${what}`,
      `fix it by hand, restore it from git (git checkout -- ${file}), or delete it and run \`kiln lock\` to write it again`,
      { file, ...(position ? { position } : {}) });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    const at = /at position (\d+)/.exec(msg);
    const offset = at ? Number(at[1]) : /end of JSON input/.test(msg) ? text.length : undefined;
    throw refuse(msg.replace(/ in JSON at position \d+.*$/, ""), offset === undefined ? undefined : `${file}:${lineColumn(text, offset)}`);
  }
  const o = v as Partial<Lock> | null;
  const isMap = (x: unknown) => typeof x === "object" && x !== null && !Array.isArray(x);
  if (!isMap(o)) throw refuse("it is not a JSON object");
  if (o!.version !== LOCK_VERSION) throw refuse(`its version is ${JSON.stringify(o!.version)}, and this kiln reads version ${LOCK_VERSION}`);
  if (!isMap(o!.recipes) || typeof o!.recipes!.entry !== "string") throw refuse("it has no recipes.entry");
  for (const k of ["fixedOutputs", "hostTools"] as const) if (!isMap(o![k])) throw refuse(`${k} is not an object`);
  return o as Lock;
}

/** 1-based line:column of a character offset in `text`. */
function lineColumn(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return `${line}:${offset - before.lastIndexOf("\n")}`;
}

/** Stable text: sorted keys, two-space indent, one trailing newline. */
export function renderLock(lock: Lock): string {
  return JSON.stringify(JSON.parse(canonicalJson(lock)), null, 2) + "\n";
}

export interface LockChange {
  /** e.g. "hostTools.gcc.version" */
  path: string;
  old?: unknown;
  new?: unknown;
}

/** Leaf-by-leaf differences between two locks (a missing old lock shows everything as added). */
export function diffLocks(oldLock: Lock | undefined, newLock: Lock): LockChange[] {
  const flat = (v: unknown, prefix: string, out: Map<string, unknown>) => {
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) flat(x, prefix ? `${prefix}.${k}` : k, out);
    } else out.set(prefix, v);
    return out;
  };
  const a = oldLock ? flat(oldLock, "", new Map()) : new Map<string, unknown>();
  const b = flat(newLock, "", new Map());
  const changes: LockChange[] = [];
  for (const k of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(k);
    const y = b.get(k);
    if (JSON.stringify(x) === JSON.stringify(y)) continue;
    changes.push({ path: k, ...(a.has(k) ? { old: x } : {}), ...(b.has(k) ? { new: y } : {}) });
  }
  return changes;
}

export function renderDiff(changes: LockChange[]): string {
  const show = (v: unknown) => (typeof v === "string" ? v : JSON.stringify(v));
  return changes
    .map((c) => (c.old === undefined ? `  + ${c.path}: ${show(c.new)}` : c.new === undefined ? `  - ${c.path}: ${show(c.old)}` : `  ~ ${c.path}: ${show(c.old)} -> ${show(c.new)}`))
    .join("\n");
}
