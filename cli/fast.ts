// The no-op fast path of `kiln realize`: when nothing the last identical realize depended on has
// changed (cli/noop.ts) and its outputs are still valid in the store, answer at once: print the
// paths, renew the result links and record the realisation, without loading the recipes or the
// rest of kiln. Anything it does not understand (another command, an option it does not know,
// a changed file, a missing output, a newer store schema) returns false and the full CLI runs.
//
// Loaded by the launcher before anything else: node built-ins, better-sqlite3 and small modules.
import type Database from "better-sqlite3";
import { existsSync, lstatSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { MIGRATIONS } from "../store/migrations.js";
import { SELF_PID, SELF_START } from "../store/process.js";
import type { KilnEvent } from "../engine/events.js";
import { jsonReporter } from "./reporters/json.js";
import { plainReporter } from "./reporters/plain.js";
import { linkName, replaceLink } from "./links.js";
import { recipesEntry, storeRoot } from "./locate.js";
import { buildId, noopIdent, readValidRecord } from "./noop.js";

export interface FastArgs {
  store?: string;
  recipes?: string;
  reporter?: string;
  link: boolean;
  outLink?: string;
  targets: string[];
}

/** Options that take a value, and flags, that cannot change a no-op's answer. */
const VALUE_OPTS: Record<string, keyof FastArgs | null> = {
  "--store": "store", "--recipes": "recipes", "-f": "recipes", "--reporter": "reporter",
  "--out-link": "outLink", "-o": "outLink", "--jobs": null, "-j": null, "--cores": null, "--mirror": null,
};
const FLAGS: Record<string, ((a: FastArgs) => void) | null> = {
  "--no-link": (a) => (a.link = false), "--link": (a) => (a.link = true), "--keep-going": null, "-k": null, "--eval-cache": null,
};

/** Parse `kiln [globals] realize [opts] targets...`; undefined if anything is unfamiliar. */
export function parseFast(argv: string[]): FastArgs | undefined {
  const a: FastArgs = { link: true, targets: [] };
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    let value: string | undefined;
    if (arg.startsWith("--") && arg.includes("=")) {
      value = arg.slice(arg.indexOf("=") + 1);
      arg = arg.slice(0, arg.indexOf("="));
    }
    if (arg in VALUE_OPTS) {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) return undefined;
      }
      const k = VALUE_OPTS[arg];
      if (k) (a as unknown as Record<string, string>)[k] = value;
      continue;
    }
    if (arg in FLAGS && value === undefined) {
      FLAGS[arg]?.(a);
      continue;
    }
    if (arg.startsWith("-")) return undefined;
    if (command === undefined) command = arg;
    else a.targets.push(arg);
  }
  if (command !== "realize" || a.targets.length === 0) return undefined;
  if (a.reporter !== undefined && !["tui", "plain", "json", "quiet"].includes(a.reporter)) return undefined;
  return a;
}

function reporter(a: FastArgs): (e: KilnEvent) => void {
  const write = (s: string) => process.stderr.write(s);
  if (a.reporter === "json") return jsonReporter(write, Date.now);
  if (a.reporter === "quiet") return () => {};
  // the TUI has nothing to show for a no-op: one plain line says it
  return plainReporter({ write, logs: false, now: Date.now });
}

/**
 * better-sqlite3, loaded the quick way: require (no ESM-from-CommonJS export scan) and the addon
 * by its path (no search by the 'bindings' package); ~25 ms less start-up here.
 */
function openDb(file: string): Database.Database {
  const require = createRequire(import.meta.url);
  const Db = require("better-sqlite3") as typeof Database;
  let nativeBinding: string | undefined;
  try {
    nativeBinding = require.resolve("better-sqlite3/build/Release/better_sqlite3.node");
  } catch {
    /* built elsewhere: let it search */
  }
  return new Db(file, nativeBinding ? { nativeBinding } : {});
}

/** Answer a no-op realize from its record; false when the full CLI must run. */
export function tryFastRealize(argv: string[]): boolean {
  if (process.env.KILN_EVAL_CACHE === "0") return false;
  const a = parseFast(argv);
  if (!a) return false;
  const entry = recipesEntry(a);
  const bid = buildId();
  if (!bid) return false;
  const root = storeRoot(a);
  const t0 = Date.now();
  const rec = readValidRecord(root, noopIdent(entry, a.targets, bid));
  if (!rec) return false;
  const dbFile = join(root, "db.sqlite");
  if (!existsSync(dbFile)) return false;
  const db = openDb(dbFile);
  try {
    db.pragma("busy_timeout = 10000");
    db.pragma("synchronous = NORMAL");
    // a store the full CLI has opened is in WAL mode (a property of the file) and migrated;
    // anything else is left to the full CLI
    if (db.pragma("journal_mode", { simple: true }) !== "wal") return false;
    if (db.pragma("user_version", { simple: true }) !== MIGRATIONS.length) return false;
    const storeDir = join(root, "store");
    const now = Date.now();
    const base = a.outLink ?? "result";
    const links = a.link ? rec.roots.map((r, i) => ({ link: linkName(base, i + 1, r.output), path: r.path })) : [];
    // something in the way of a link: the full CLI says what
    for (const l of links) if (existsSync(l.link) && !lstatSync(l.link).isSymbolicLink()) return false;
    const pathId = db.prepare<[string], { id: number }>("SELECT id FROM valid_paths WHERE path = ?");
    const putTemp = db.prepare("INSERT OR IGNORE INTO temp_roots (pid, pid_start, path) VALUES (?, ?, ?)");
    const touch = db.prepare("UPDATE valid_paths SET last_used = ? WHERE path = ?");
    const putRoot = db.prepare("INSERT OR REPLACE INTO roots (name, kind, path, created_at) VALUES (?, 'link', ?, ?)");
    const putHistory = db.prepare(
      "INSERT INTO target_realisations (target, output, drv_hash, resolved_hash, path, recipes_rev, recipes_dirty, recipes_snapshot, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    // one write transaction: root first, then check validity (the gc protocol, store/gc.ts)
    const ok = db.transaction(() => {
      for (const r of rec.roots) putTemp.run(SELF_PID, SELF_START, r.path);
      for (const r of rec.roots) if (!pathId.get(r.path) || !existsSync(join(storeDir, r.path))) return false;
      for (const l of links) putRoot.run(`link:${l.link}`, l.path, now);
      for (const r of rec.roots) {
        touch.run(now, r.path);
        putHistory.run(r.target, r.output, r.drv, r.resolved, r.path, rec.recipes?.rev ?? null, rec.recipes ? (rec.recipes.dirty ? 1 : 0) : null, rec.snapshot ?? null, now);
      }
      return true;
    }).immediate();
    if (!ok) {
      db.prepare("DELETE FROM temp_roots WHERE pid = ? AND pid_start = ?").run(SELF_PID, SELF_START);
      return false;
    }
    for (const l of links) replaceLink(l.link, join(storeDir, l.path));
    db.prepare("DELETE FROM temp_roots WHERE pid = ? AND pid_start = ?").run(SELF_PID, SELF_START);
    const events = reporter(a);
    const targets = [...new Set(rec.roots.map((r) => r.target))];
    events({ type: "evaluated", targets, derivations: rec.derivations, ms: Date.now() - t0, unchanged: true });
    events({ type: "finished", built: 0, cached: rec.roots.length, failed: 0, ms: Date.now() - t0, unchanged: true });
    for (const r of rec.roots) process.stdout.write(`${join(storeDir, r.path)}\n`);
    return true;
  } finally {
    db.close();
  }
}
