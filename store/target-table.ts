// Owner of the table target_realisations: every realisation of a named target, with the recipe
// set's git revision (what `kiln why` compares).
import type { Db } from "./database.js";

export interface TargetRow {
  id: number;
  target: string;
  output: string;
  drv_hash: string;
  resolved_hash: string | null;
  path: string;
  recipes_rev: string | null;
  recipes_dirty: number | null;
  /** the recipe files the evaluation read (recipe-snapshot-table.ts), when recorded */
  recipes_snapshot: string | null;
  at: number;
}

export type NewTargetRow = Omit<TargetRow, "id">;

/** The row of a target realisation as history.ts (and the no-op launcher) describe it. */
export function toTargetRow(r: { target: string; output: string; drvHash: string; resolvedHash: string | null; path: string; recipes: { rev: string; dirty: boolean } | null; snapshot?: string | null; at: number }): NewTargetRow {
  return {
    target: r.target, output: r.output, drv_hash: r.drvHash, resolved_hash: r.resolvedHash, path: r.path,
    recipes_rev: r.recipes?.rev ?? null, recipes_dirty: r.recipes ? (r.recipes.dirty ? 1 : 0) : null,
    recipes_snapshot: r.snapshot ?? null, at: r.at,
  };
}

export class TargetTable {
  private readonly q;
  constructor(private readonly db: Db) {
    this.q = {
      insert: db.prepare(
        "INSERT INTO target_realisations (target, output, drv_hash, resolved_hash, path, recipes_rev, recipes_dirty, recipes_snapshot, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ),
      ofTarget: db.prepare<[string, number], TargetRow>("SELECT * FROM target_realisations WHERE target = ? ORDER BY id DESC LIMIT ?"),
      recent: db.prepare<[number], TargetRow>("SELECT * FROM target_realisations ORDER BY id DESC LIMIT ?"),
      allByTarget: db.prepare<[], TargetRow>("SELECT * FROM target_realisations ORDER BY target, id DESC"),
      deleteMany: db.prepare("DELETE FROM target_realisations WHERE id IN (SELECT value FROM json_each(?))"),
    };
  }

  /** Insert rows (the caller's transaction, or one of its own). */
  insert(rows: NewTargetRow[]): void {
    for (const r of rows) this.q.insert.run(r.target, r.output, r.drv_hash, r.resolved_hash, r.path, r.recipes_rev, r.recipes_dirty, r.recipes_snapshot, r.at);
  }

  ofTarget(target: string, limit: number): TargetRow[] {
    return this.q.ofTarget.all(target, limit);
  }

  recent(limit: number): TargetRow[] {
    return this.q.recent.all(limit);
  }

  /** Every row, grouped by target, newest first within each. */
  allByTarget(): TargetRow[] {
    return this.q.allByTarget.all();
  }

  deleteIds(ids: number[]): void {
    if (ids.length) this.q.deleteMany.run(JSON.stringify(ids));
  }
}
