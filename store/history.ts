// History queries over the store database: realisations of named targets (migration 3) and
// recorded build durations. Kept beside Store rather than in it: these are read by 'why' and
// forecasts only, never on the build path.
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
  at: number;
}

function fromRow(r: Row): TargetRealisation {
  return {
    id: r.id, target: r.target, output: r.output, drvHash: r.drv_hash, resolvedHash: r.resolved_hash, path: r.path,
    recipes: r.recipes_rev ? { rev: r.recipes_rev, dirty: r.recipes_dirty === 1 } : null, at: r.at,
  };
}

export function recordTargetRealisations(store: Store, rows: Array<Omit<TargetRealisation, "id">>): void {
  if (rows.length === 0) return;
  const ins = store.db.prepare(
    "INSERT INTO target_realisations (target, output, drv_hash, resolved_hash, path, recipes_rev, recipes_dirty, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  store.db.transaction(() => {
    for (const r of rows) ins.run(r.target, r.output, r.drvHash, r.resolvedHash, r.path, r.recipes?.rev ?? null, r.recipes ? (r.recipes.dirty ? 1 : 0) : null, r.at);
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
