// The no-op fast path of `kiln realize`: when nothing the last identical realize depended on has
// changed (cli/noop.ts) and its outputs are still valid in the store, answer at once: print the
// paths, renew the result links and record the realisation, without loading the recipes or the
// rest of kiln. Anything it does not understand (another command, an option it does not know,
// a changed file, a missing output, a newer store schema) returns false and the full CLI runs.
//
// Loaded by the launcher before anything else: node built-ins, better-sqlite3 and small modules.
import { existsSync, lstatSync } from "node:fs";
import { join } from "node:path";
import { keepWalShort, openCurrentDatabase } from "../store/database.js";
import type { StorePathName } from "../store/paths.js";
import { Tables } from "../store/tables.js";
import { toTargetRow } from "../store/target-table.js";
import type { KilnEvent } from "../engine/events.js";
import { jsonReporter } from "./reporters/json.js";
import { plainReporter } from "./reporters/plain.js";
import { linkName, replaceLink } from "./links.js";
import { writeFd } from "./output.js";
import { evalCacheOn, recipesEntry, storeRoot } from "./locate.js";
import { buildId, noopIdent, readValidRecord } from "./noop.js";
import { parsePlain, type PlainSpec } from "./plain-args.js";

export interface FastArgs {
  store?: string;
  recipes?: string;
  reporter?: string;
  link: boolean;
  outLink?: string;
  targets: string[];
}

/** realize's options a no-op's answer reads, and the globals that cannot change it (cli/plain-args.ts). */
const REALIZE: PlainSpec = {
  command: "realize",
  values: { "--out-link": "outLink", "-o": "outLink" },
  flags: { "--no-link": ["link", false], "--link": ["link", true] },
  ignoredFlags: new Set(["--keep-going", "-k", "--eval-cache"]),
  positionals: true,
  optionsBeforeCommand: true,
};

/** Parse `kiln [globals] realize [opts] targets...`; undefined if anything is unfamiliar. */
export function parseFast(argv: string[]): FastArgs | undefined {
  const p = parsePlain(argv, REALIZE);
  if (!p || p.positionals.length === 0) return undefined;
  return {
    link: p.options.link !== false, targets: p.positionals,
    ...(p.store !== undefined ? { store: p.store } : {}), ...(p.recipes !== undefined ? { recipes: p.recipes } : {}),
    ...(p.reporter !== undefined ? { reporter: p.reporter } : {}), ...(p.options.outLink !== undefined ? { outLink: p.options.outLink as string } : {}),
  };
}

function reporter(a: FastArgs): (e: KilnEvent) => void {
  const write = (s: string) => writeFd(2, s);
  if (a.reporter === "json") return jsonReporter(write, Date.now);
  if (a.reporter === "quiet") return () => {};
  // the TUI has nothing to show for a no-op: one plain line says it
  return plainReporter({ write, logs: false, now: Date.now });
}

/**
 * Answer a no-op realize from its record; false when the full CLI must run. After an answer the
 * store's database is left open, and the caller ends the process at once (`endAnswered`).
 */
export function tryFastRealize(argv: string[]): boolean {
  if (!evalCacheOn({})) return false;
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
  // a store the full CLI has opened is in WAL mode (a property of the file) and migrated;
  // anything else is left to the full CLI
  const db = openCurrentDatabase(dbFile);
  if (!db) return false;
  const t = new Tables(db);
  let answered = false;
  try {
    const storeDir = join(root, "store");
    const now = Date.now();
    const base = a.outLink ?? "result";
    const links = a.link ? rec.roots.map((r, i) => ({ link: linkName(base, i + 1, r.output), path: r.path })) : [];
    // something in the way of a link: the full CLI says what
    for (const l of links) if (existsSync(l.link) && !lstatSync(l.link).isSymbolicLink()) return false;
    const paths = rec.roots.map((r) => r.path);
    // One write transaction checks validity and records the realize. Links are made after it, so
    // their paths are temp-rooted first, until the links are there (the gc protocol, store/gc.ts):
    // to gc, a link root whose link does not point at its path yet is stale. Without links,
    // nothing relies on the paths once the transaction is over: no temp root.
    const rooted = links.length > 0;
    const ok = t.transaction(() => {
      if (rooted) t.tempRoots.addMany(paths);
      for (const r of rec.roots) if (t.paths.id(r.path as StorePathName) === undefined || !existsSync(join(storeDir, r.path))) return false;
      for (const l of links) t.roots.put(`link:${l.link}`, "link", l.path, now);
      t.paths.touchMany(paths, now);
      t.targets.insert(rec.roots.map((r) => toTargetRow({ target: r.target, output: r.output, drvHash: r.drv, resolvedHash: r.resolved, path: r.path, recipes: rec.recipes, snapshot: rec.snapshot, at: now })));
      return true;
    });
    if (!ok) {
      if (rooted) t.tempRoots.dropOwn();
      return false;
    }
    for (const l of links) replaceLink(l.link, join(storeDir, l.path));
    if (rooted) t.tempRoots.dropOwn();
    const events = reporter(a);
    const targets = [...new Set(rec.roots.map((r) => r.target))];
    events({ type: "evaluated", targets, derivations: rec.derivations, ms: Date.now() - t0, unchanged: true });
    events({ type: "finished", built: 0, cached: rec.roots.length, failed: 0, ms: Date.now() - t0, unchanged: true });
    writeFd(1, rec.roots.map((r) => `${join(storeDir, r.path)}\n`).join(""));
    keepWalShort(db, dbFile);
    answered = true;
    return true;
  } finally {
    if (!answered) db.close();
  }
}

/**
 * End the process after an answer, leaving the database open. Closing the last connection
 * checkpoints: it syncs the WAL and the database, and the next kiln then syncs a new WAL's
 * header, ~3 ms of a no-op that waits for nothing else. process.exit skips better-sqlite3's exit
 * hook, so the answer's committed transaction stays in the WAL, as a crash here would leave it
 * (what WAL mode is made for): every later connection reads it, and the first to open the
 * database reads all of the WAL (~7 us a page here). So answers fold the WAL into the database
 * once it holds 64 pages (keepWalShort: the syncs of a close, every ~20 answers). The output was
 * written synchronously (writeFd): nothing is pending.
 */
export function endAnswered(): never {
  process.exit();
}
