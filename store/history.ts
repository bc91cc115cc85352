// History queries over the store database: realisations of named targets (migration 3) and
// recorded build durations. Kept beside Store rather than in it: these are read by 'why' and
// forecasts only, never on the build path; and history's own collection policy.
import { readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { collectRecipeSnapshots } from "./recipe-snapshots.js";
import type { Store } from "./store.js";

export interface RecipesRev {
  /** full git commit hash of HEAD */
  rev: string;
  /** the work tree had uncommitted changes */
  dirty: boolean;
}

export interface TargetRealisation {
  id: number;
  target: string;
  output: string;
  drvHash: string;
  resolvedHash: string | null;
  path: string;
  recipes: RecipesRev | null;
  /** the recipe files the evaluation read (store/recipe-snapshots.ts), when recorded */
  snapshot: string | null;
  at: number;
}

interface Row {
  id: number;
  target: string;
  output: string;
  drv_hash: string;
  resolved_hash: string | null;
  path: string;
  recipes_rev: string | null;
  recipes_dirty: number | null;
  recipes_snapshot: string | null;
  at: number;
}

function fromRow(r: Row): TargetRealisation {
  return {
    id: r.id, target: r.target, output: r.output, drvHash: r.drv_hash, resolvedHash: r.resolved_hash, path: r.path,
    recipes: r.recipes_rev ? { rev: r.recipes_rev, dirty: r.recipes_dirty === 1 } : null, snapshot: r.recipes_snapshot, at: r.at,
  };
}

export function recordTargetRealisations(store: Store, rows: Array<Omit<TargetRealisation, "id">>): void {
  if (rows.length === 0) return;
  const ins = store.db.prepare(
    "INSERT INTO target_realisations (target, output, drv_hash, resolved_hash, path, recipes_rev, recipes_dirty, recipes_snapshot, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  store.db.transaction(() => {
    for (const r of rows) ins.run(r.target, r.output, r.drvHash, r.resolvedHash, r.path, r.recipes?.rev ?? null, r.recipes ? (r.recipes.dirty ? 1 : 0) : null, r.snapshot, r.at);
  }).immediate();
}

/** Realisations of one target, newest first. */
export function targetRealisations(store: Store, target: string, limit = 1000): TargetRealisation[] {
  return store.db
    .prepare<[string, number], Row>("SELECT * FROM target_realisations WHERE target = ? ORDER BY id DESC LIMIT ?")
    .all(target, limit)
    .map(fromRow);
}

/** The newest realisations of any target, newest first. */
export function recentTargetRealisations(store: Store, limit: number): TargetRealisation[] {
  return store.db.prepare<[number], Row>("SELECT * FROM target_realisations ORDER BY id DESC LIMIT ?").all(limit).map(fromRow);
}

/**
 * How long the last successful build of each derivation took (ms); for a derivation never built,
 * the last successful build of a derivation with the same name: a good guess for "the next version".
 */
export function buildDurations(store: Store, nodes: Array<{ hash: string; name: string }>): Map<string, { ms: number; exact: boolean }> {
  const byDrv = store.db.prepare<[string], { ms: number }>(
    "SELECT ended_at - started_at AS ms FROM builds WHERE drv_hash = ? AND status = 'built' ORDER BY id DESC LIMIT 1",
  );
  const byName = store.db.prepare<[string], { ms: number }>(
    "SELECT ended_at - started_at AS ms FROM builds WHERE name = ? AND status = 'built' ORDER BY id DESC LIMIT 1",
  );
  const out = new Map<string, { ms: number; exact: boolean }>();
  for (const n of nodes) {
    const exact = byDrv.get(n.hash);
    if (exact) {
      out.set(n.hash, { ms: exact.ms, exact: true });
      continue;
    }
    const guess = byName.get(n.name);
    if (guess) out.set(n.hash, { ms: guess.ms, exact: false });
  }
  return out;
}

/**
 * What the latest successful build of a resolved derivation produced, as recorded: still known
 * when gc has collected the outputs (and with them their realisation rows), so `why` can tell
 * "rebuilt" from "rebuilt, identical" for history whose outputs are gone.
 */
export function recordedOutputs(store: Store, resolvedHash: string): Record<string, string> | undefined {
  const row = store.db
    .prepare<[string], { outputs: string | null }>("SELECT outputs FROM builds WHERE resolved_hash = ? AND status = 'built' ORDER BY id DESC LIMIT 1")
    .get(resolvedHash);
  return row?.outputs ? (JSON.parse(row.outputs) as Record<string, string>) : undefined;
}

export interface HistoryGcOptions {
  /** rows from before this time (ms since the epoch) may go */
  before: number;
  dryRun?: boolean;
  /**
   * The resolved derivation hashes whose build records `why` needs to explain the realisations
   * that are kept (called inside the transaction with those rows).
   */
  keepResolved: (kept: TargetRealisation[]) => Set<string>;
}

export interface HistoryGcResult {
  targetRows: number;
  buildRows: number;
  logFiles: number;
  logBytes: number;
  /** targets with recorded history left */
  targets: number;
}

/** A log file's place under logs/ ('ab/<hash>.log'), whatever the store's host path was when recorded. */
function logKey(file: string): string | undefined {
  const k = file.split("/").slice(-2).join("/");
  return /^[0-9A-Za-z]{2}\/[0-9A-Za-z_-]+\.log$/.test(k) ? k : undefined;
}

/** Build logs under logs/: their keys and sizes. */
function logFiles(store: Store): Map<string, number> {
  const out = new Map<string, number>();
  let dirs: string[];
  try {
    dirs = readdirSync(store.logDir);
  } catch {
    return out;
  }
  for (const d of dirs) {
    let files: string[];
    try {
      files = readdirSync(join(store.logDir, d));
    } catch {
      continue; // not a directory
    }
    for (const f of files) {
      const k = logKey(`${d}/${f}`);
      if (!k) continue;
      try {
        out.set(k, statSync(join(store.logDir, k)).size);
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return out;
}

/**
 * History's own collection policy (`kiln gc --history-older-than`): delete target realisations
 * and build records from before `before`, and the build logs no record refers to any more. Kept
 * whatever their age, so that `why` keeps explaining what it explains today:
 *   - per target, its latest realisation and the newest one before it with another derivation
 *     (what `why <target>` compares by default);
 *   - the build records of the resolved derivations in those realisations' trees
 *     (`keepResolved`): they say what was built, once gc has collected the outputs;
 *   - the build records of outputs still in the store (`kiln log`, `gc --keep-build-deps`), and
 *     builds still running.
 * Rows go in one transaction; log files after it commits. A log file is removed only when no
 * build record refers to it, and the directory is listed before the records are read (a build
 * records itself before it writes its log), so a crash at any point leaves at worst log files
 * without records, which the next run removes.
 */
export function collectHistory(store: Store, opts: HistoryGcOptions): HistoryGcResult {
  const filesBefore = logFiles(store);
  const plan = () => {
    const rows = store.db.prepare<[], Row>("SELECT * FROM target_realisations ORDER BY target, id DESC").all().map(fromRow);
    const kept: TargetRealisation[] = [];
    const doomedTargets: number[] = [];
    let targets = 0;
    for (let i = 0; i < rows.length; ) {
      let j = i;
      while (j < rows.length && rows[j]!.target === rows[i]!.target) j++;
      const group = rows.slice(i, j); // one target, newest first
      const latest = group[0]!;
      const base = group.find((r) => r.drvHash !== latest.drvHash);
      targets++;
      for (const r of group) {
        if (r === latest || r === base) kept.push(r);
        else if (r.at < opts.before) doomedTargets.push(r.id);
      }
      i = j;
    }
    const keepRes = opts.keepResolved(kept);
    const candidates = store.db
      .prepare<[number], { id: number; resolved_hash: string }>(
        `SELECT b.id, b.resolved_hash FROM builds b
         WHERE b.status != 'running' AND coalesce(b.ended_at, b.started_at) < ?
           AND NOT EXISTS (SELECT 1 FROM json_each(coalesce(b.outputs, '{}')) o JOIN valid_paths v ON v.path = o.value)`,
      )
      .all(opts.before);
    const doomedBuilds = candidates.filter((b) => !keepRes.has(b.resolved_hash)).map((b) => b.id);
    if (!opts.dryRun) {
      store.db.prepare("DELETE FROM target_realisations WHERE id IN (SELECT value FROM json_each(?))").run(JSON.stringify(doomedTargets));
      store.db.prepare("DELETE FROM builds WHERE id IN (SELECT value FROM json_each(?))").run(JSON.stringify(doomedBuilds));
      collectRecipeSnapshots(store, opts.before);
    }
    return { targetRows: doomedTargets.length, buildRows: doomedBuilds.length, doomedBuilds, targets };
  };
  const tx = store.db.transaction(plan);
  const p = opts.dryRun ? tx() : tx.immediate();

  // logs: those no (remaining) build record refers to
  const doomed = new Set(p.doomedBuilds);
  const referenced = new Set<string>();
  for (const r of store.db.prepare<[], { id: number; log_file: string }>("SELECT id, log_file FROM builds WHERE log_file IS NOT NULL").all()) {
    if (opts.dryRun && doomed.has(r.id)) continue;
    const k = logKey(r.log_file);
    if (k) referenced.add(k);
  }
  let files = 0;
  let bytes = 0;
  for (const [k, size] of filesBefore) {
    if (referenced.has(k)) continue;
    if (!opts.dryRun) {
      try {
        unlinkSync(join(store.logDir, k));
      } catch {
        continue; // removed meanwhile (another gc)
      }
    }
    files++;
    bytes += size;
  }
  return { targetRows: p.targetRows, buildRows: p.buildRows, logFiles: files, logBytes: bytes, targets: p.targets };
}

/** The derivations of each name that were built successfully, newest first (at most `limit` per name). */
export function builtVersions(store: Store, names: string[], limit: number): Map<string, string[]> {
  const q = store.db.prepare<[string, number], { drv_hash: string }>(
    "SELECT drv_hash FROM builds WHERE name = ? AND status = 'built' GROUP BY drv_hash ORDER BY max(id) DESC LIMIT ?",
  );
  const out = new Map<string, string[]>();
  for (const name of new Set(names)) out.set(name, q.all(name, limit).map((r) => r.drv_hash));
  return out;
}

/**
 * For each derivation, the latest successful build of another derivation with its name: the
 * version it replaces (what `why` compares it with). One indexed query per node, as above.
 */
export function previousBuilds(store: Store, nodes: Array<{ hash: string; name: string }>): Map<string, { drvHash: string; at: number }> {
  const q = store.db.prepare<[string, string], { drv_hash: string; started_at: number }>(
    "SELECT drv_hash, started_at FROM builds WHERE name = ? AND status = 'built' AND drv_hash != ? ORDER BY id DESC LIMIT 1",
  );
  const out = new Map<string, { drvHash: string; at: number }>();
  for (const n of nodes) {
    const row = q.get(n.name, n.hash);
    if (row) out.set(n.hash, { drvHash: row.drv_hash, at: row.started_at });
  }
  return out;
}
