// The no-op record: what a successful `kiln realize` needs to answer the same command again
// without loading the recipes, evaluating them or walking the graph.
//
// A realize that succeeds writes one record per (recipe entry, targets, PATH, kiln build): the
// stat of every file its result depended on (the recipe files esbuild bundled, every file and
// folder under the local sources, the host tools' binaries and their packages' dpkg file lists, the git files
// that name HEAD) and the store paths its targets resolved to. The next identical command
// (cli/fast.ts, before the full CLI is even loaded) takes the record only if every stat is
// unchanged and every target path is still valid in the store; anything else, and the command runs
// as usual. Like ninja's stat check, a changed stat (touch, checkout) costs one full evaluation,
// never a wrong answer; the evaluation then finds by content that nothing changed.
//
// This module is loaded by the launcher: node built-ins only.
import { lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { nearestAbove } from "./locate.js";

/** path, size, mtimeMs, ctimeMs, inode, mode (all -1 when the path does not exist) */
export type StatTuple = [string, number, number, number, number, number];

export interface NoopRoot {
  target: string;
  output: string;
  drv: string;
  /** resolved derivation hash (null for a fixed output) */
  resolved: string | null;
  /** store path name */
  path: string;
}

export interface NoopRecord {
  v: typeof RECORD_VERSION;
  key: string;
  /** everything besides files that the key stands for (compared in full: the key is short) */
  ident: string;
  stats: StatTuple[];
  roots: NoopRoot[];
  /** derivations in the evaluated graph, for the report */
  derivations: number;
  recipes: { rev: string; dirty: boolean } | null;
  /** the recipe snapshot the evaluation recorded (store/recipe-snapshots.ts), renewed with the history */
  snapshot?: string | null;
}

const RECORD_VERSION = 1;

export function statTuple(p: string): StatTuple {
  try {
    const s = lstatSync(p);
    return [p, s.size, s.mtimeMs, s.ctimeMs, s.ino, s.mode];
  } catch {
    return [p, -1, -1, -1, -1, -1];
  }
}

/**
 * The identity of the running kiln build: the stat of the bundle that holds the engine
 * (dist/kiln-main.cjs next to the launcher). Undefined when kiln does not run from its bundle
 * (e.g. under tsx): then no record is written or read.
 */
export function buildId(): string | undefined {
  const script = process.argv[1];
  if (!script) return undefined;
  try {
    const main = join(dirname(realpathSync(script)), "kiln-main.cjs");
    const s = lstatSync(main);
    return `${main}:${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch {
    return undefined;
  }
}

/** Everything besides files that decides what a realize evaluates to. */
export function noopIdent(entry: string, targets: string[], build: string): string {
  const env = Object.keys(process.env)
    .filter((k) => k.startsWith("KILN_") && k !== "KILN_STORE" && k !== "KILN_EVAL_CACHE")
    .sort()
    .map((k) => [k, process.env[k]]);
  return JSON.stringify([RECORD_VERSION, entry, targets, process.env.PATH ?? "", env, build]);
}

/**
 * The record's file name for an identity: two 32-bit FNV-1a lanes, not a cryptographic hash
 * (loading node:crypto costs the launcher ~8 ms); the record holds the identity itself, and a
 * record whose identity differs is not used.
 */
export function noopKey(ident: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ ident.length;
  for (let i = 0; i < ident.length; i++) {
    const c = ident.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}

export function recordFile(storeRoot: string, key: string): string {
  return join(storeRoot, "eval-cache", "noop", `${key}.json`);
}

/** The record for `ident` if it exists and every file it names is as it was; else undefined. */
export function readValidRecord(storeRoot: string, ident: string): NoopRecord | undefined {
  const key = noopKey(ident);
  let rec: NoopRecord;
  try {
    rec = JSON.parse(readFileSync(recordFile(storeRoot, key), "utf8")) as NoopRecord;
  } catch {
    return undefined;
  }
  if (rec.v !== RECORD_VERSION || rec.key !== key || rec.ident !== ident || !Array.isArray(rec.stats) || !Array.isArray(rec.roots)) return undefined;
  for (const s of rec.stats) {
    const now = statTuple(s[0]);
    for (let i = 1; i < 6; i++) if (now[i] !== s[i]) return undefined;
  }
  return rec;
}

/** Stat tuples of a path and, for a folder, everything under it (folders too: adding a file changes its folder). */
export function statTree(path: string, out: StatTuple[]): void {
  const t = statTuple(path);
  out.push(t);
  if (t[5] !== -1 && (t[5] & 0o170000) === 0o040000) {
    for (const name of readdirSync(path).sort()) statTree(join(path, name), out);
  }
}

/**
 * The git files that name the recipe set's HEAD commit: .git/HEAD, the branch's loose ref and
 * packed-refs. A commit or checkout rewrites one of them. Undefined if the layout is not
 * understood (then no record is written).
 */
export function gitHeadFiles(from: string): string[] | undefined {
  let mode = -1;
  const dir = nearestAbove(from, (d) => (mode = statTuple(join(d, ".git"))[5]) !== -1);
  if (dir === undefined) return [];
  const dotgit = join(dir, ".git");
  let gitdir = dotgit;
  if ((mode & 0o170000) !== 0o040000) {
    const m = /^gitdir: (.*)$/m.exec(readFileSync(dotgit, "utf8"));
    if (!m) return undefined;
    gitdir = m[1]!.startsWith("/") ? m[1]! : join(dir, m[1]!);
  }
  let common = gitdir;
  try {
    const c = readFileSync(join(gitdir, "commondir"), "utf8").trim();
    common = c.startsWith("/") ? c : join(gitdir, c);
  } catch {
    /* not a linked worktree */
  }
  const files = [join(gitdir, "HEAD"), join(common, "packed-refs")];
  const head = readFileSync(files[0]!, "utf8").trim();
  const ref = /^ref: (refs\/.+)$/.exec(head);
  if (ref) files.push(join(common, ref[1]!));
  else if (!/^[0-9a-f]{40,64}$/.test(head)) return undefined;
  return files;
}

/**
 * Whether a file changed after (or just before) `t0`, the moment the evaluation began: it may have
 * been read before or after the change, so its stat cannot vouch for what was evaluated.
 * File timestamps come from a clock that may lag the wall clock by a tick: 100 ms of margin.
 */
export function isRacy(stats: StatTuple[], t0: number): boolean {
  const since = t0 - 100;
  return stats.some((s) => s[2] >= since || s[3] >= since);
}

export function writeRecord(storeRoot: string, rec: NoopRecord): void {
  const file = recordFile(storeRoot, rec.key);
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, JSON.stringify(rec));
  renameSync(tmp, file);
}
