// History queries over the store database: realisations of named targets (migration 3) and
// recorded build durations. Kept beside Store rather than in it: these are read by 'why' and
// forecasts only, never on the build path; and history's own collection policy.
import { readdirSync, statSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { tablesOf, type LocalStore } from "./local-store.js";
import { toTargetRow, type TargetRow } from "./target-table.js";

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

type Row = TargetRow;

function fromRow(r: Row): TargetRealisation {
  return {
    id: r.id, target: r.target, output: r.output, drvHash: r.drv_hash, resolvedHash: r.resolved_hash, path: r.path,
    recipes: r.recipes_rev ? { rev: r.recipes_rev, dirty: r.recipes_dirty === 1 } : null, snapshot: r.recipes_snapshot, at: r.at,
  };
}

export function recordTargetRealisations(store: LocalStore, rows: Array<Omit<TargetRealisation, "id">>): void {
  if (rows.length === 0) return;
  const t = tablesOf(store);
  t.transaction(() => t.targets.insert(rows.map(toTargetRow)));
}

/** Realisations of one target, newest first. */
export function targetRealisations(store: LocalStore, target: string, limit = 1000): TargetRealisation[] {
  return tablesOf(store).targets.ofTarget(target, limit).map(fromRow);
}

/** The newest realisations of any target, newest first. */
export function recentTargetRealisations(store: LocalStore, limit: number): TargetRealisation[] {
  return tablesOf(store).targets.recent(limit).map(fromRow);
}

/**
 * How long the last successful build of each derivation took (ms); for a derivation never built,
 * the last successful build of a derivation with the same name: a good guess for "the next version".
 */
export function buildDurations(store: LocalStore, nodes: Array<{ hash: string; name: string }>): Map<string, { ms: number; exact: boolean }> {
  const builds = tablesOf(store).builds;
  const out = new Map<string, { ms: number; exact: boolean }>();
  for (const n of nodes) {
    const d = builds.duration(n.hash, n.name);
    if (d) out.set(n.hash, d);
  }
  return out;
}

/**
 * What the latest successful build of a resolved derivation produced, as recorded: still known
 * when gc has collected the outputs (and with them their realisation rows), so `why` can tell
 * "rebuilt" from "rebuilt, identical" for history whose outputs are gone.
 */
export function recordedOutputs(store: LocalStore, resolvedHash: string): Record<string, string> | undefined {
  return tablesOf(store).builds.recordedOutputs(resolvedHash);
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
function logFiles(store: LocalStore): Map<string, number> {
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
export function collectHistory(store: LocalStore, opts: HistoryGcOptions): HistoryGcResult {
  const t = tablesOf(store);
  const filesBefore = logFiles(store);
  const plan = () => {
    const rows = t.targets.allByTarget().map(fromRow);
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
    const candidates = t.builds.collectable(opts.before);
    const doomedBuilds = candidates.filter((b) => !keepRes.has(b.resolved_hash)).map((b) => b.id);
    if (!opts.dryRun) {
      t.targets.deleteIds(doomedTargets);
      t.builds.deleteIds(doomedBuilds);
      t.recipeSnapshots.collect(opts.before);
    }
    return { targetRows: doomedTargets.length, buildRows: doomedBuilds.length, doomedBuilds, targets };
  };
  const p = opts.dryRun ? t.snapshot(plan) : t.transaction(plan);

  // logs: those no (remaining) build record refers to
  const doomed = new Set(p.doomedBuilds);
  const referenced = new Set<string>();
  for (const r of t.builds.logFiles()) {
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
export function builtVersions(store: LocalStore, names: string[], limit: number): Map<string, string[]> {
  const builds = tablesOf(store).builds;
  const out = new Map<string, string[]>();
  for (const name of new Set(names)) out.set(name, builds.builtVersions(name, limit));
  return out;
}

/**
 * For each derivation, the latest successful build of another derivation with its name: the
 * version it replaces (what `why` compares it with). One indexed query per node, as above.
 */
export function previousBuilds(store: LocalStore, nodes: Array<{ hash: string; name: string }>): Map<string, { drvHash: string; at: number }> {
  const builds = tablesOf(store).builds;
  const out = new Map<string, { drvHash: string; at: number }>();
  for (const n of nodes) {
    const prev = builds.previousBuild(n.name, n.hash);
    if (prev) out.set(n.hash, prev);
  }
  return out;
}
