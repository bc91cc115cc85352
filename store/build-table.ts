// Owner of the tables builds (every build attempt: the history `why` and `log` read),
// derivations (canonical encodings of evaluated derivations) and resolutions (which resolved
// hash each derivation last had).
import type { Db } from "./database.js";

export interface BuildRecordStart {
  drvHash: string;
  resolvedHash: string;
  name: string;
  inputs: Record<string, string>;
  logFile: string;
  startedAt: number;
}

export interface BuildRow {
  id: number;
  drv_hash: string;
  resolved_hash: string;
  name: string;
  started_at: number;
  ended_at: number | null;
  status: "running" | "built" | "failed" | "cancelled";
  exit_code: number | null;
  log_file: string | null;
  inputs: string;
  outputs: string | null;
}

export class BuildTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      putDrv: db.prepare("INSERT OR IGNORE INTO derivations (hash, name, json) VALUES (?, ?, ?)"),
      getDrv: db.prepare<[string], { hash: string; name: string; json: string }>("SELECT * FROM derivations WHERE hash = ?"),
      getDrvName: db.prepare<[string], string>("SELECT name FROM derivations WHERE hash = ?").pluck(),
      getDrvNames: db.prepare<[string], { hash: string; name: string }>("SELECT j.value AS hash, d.name AS name FROM json_each(?) j CROSS JOIN derivations d ON d.hash = j.value"),
      missingDrvs: db.prepare<[string], { value: string }>("SELECT value FROM json_each(?) j WHERE NOT EXISTS (SELECT 1 FROM derivations d WHERE d.hash = j.value)"),
      putResolution: db.prepare("INSERT OR REPLACE INTO resolutions (drv_hash, resolved_hash, updated_at) VALUES (?, ?, ?)"),
      putResolutions: db.prepare<[number, string]>(
        "INSERT OR REPLACE INTO resolutions (drv_hash, resolved_hash, updated_at) SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), ? FROM json_each(?)",
      ),
      getResolution: db.prepare<[string], { resolved_hash: string }>("SELECT resolved_hash FROM resolutions WHERE drv_hash = ?"),
      start: db.prepare("INSERT INTO builds (drv_hash, resolved_hash, name, started_at, status, log_file, inputs) VALUES (?, ?, ?, ?, 'running', ?, ?)"),
      finish: db.prepare("UPDATE builds SET ended_at = ?, status = ?, exit_code = ?, outputs = ? WHERE id = ?"),
      last: db.prepare<[string], BuildRow>("SELECT * FROM builds WHERE drv_hash = ? ORDER BY id DESC LIMIT 1"),
      lastByName: db.prepare<[string], BuildRow>("SELECT * FROM builds WHERE name = ? ORDER BY id DESC LIMIT 1"),
      running: db.prepare<[], { id: number; resolved_hash: string }>("SELECT id, resolved_hash FROM builds WHERE status = 'running'"),
      msByDrv: db.prepare<[string], { ms: number }>("SELECT ended_at - started_at AS ms FROM builds WHERE drv_hash = ? AND status = 'built' ORDER BY id DESC LIMIT 1"),
      msByName: db.prepare<[string], { ms: number }>("SELECT ended_at - started_at AS ms FROM builds WHERE name = ? AND status = 'built' ORDER BY id DESC LIMIT 1"),
      outputsOf: db.prepare<[string], { outputs: string | null }>("SELECT outputs FROM builds WHERE resolved_hash = ? AND status = 'built' ORDER BY id DESC LIMIT 1"),
      previous: db.prepare<[string, string], { drv_hash: string; started_at: number }>(
        "SELECT drv_hash, started_at FROM builds WHERE name = ? AND status = 'built' AND drv_hash != ? ORDER BY id DESC LIMIT 1",
      ),
      collectable: db.prepare<[number], { id: number; resolved_hash: string }>(
        `SELECT b.id, b.resolved_hash FROM builds b
         WHERE b.status != 'running' AND coalesce(b.ended_at, b.started_at) < ?
           AND NOT EXISTS (SELECT 1 FROM json_each(coalesce(b.outputs, '{}')) o JOIN valid_paths v ON v.path = o.value)`,
      ),
      builtVersions: db.prepare<[string, number], { drv_hash: string }>(
        "SELECT drv_hash FROM builds WHERE name = ? AND status = 'built' GROUP BY drv_hash ORDER BY max(id) DESC LIMIT ?",
      ),
      deleteMany: db.prepare("DELETE FROM builds WHERE id IN (SELECT value FROM json_each(?))"),
      logFiles: db.prepare<[], { id: number; log_file: string }>("SELECT id, log_file FROM builds WHERE log_file IS NOT NULL"),
      all: db.prepare<[], BuildRow>("SELECT * FROM builds ORDER BY id"),
      builtWithDrv: db.prepare<[], { inputs: string; outputs: string | null; json: string | null }>(
        "SELECT b.inputs, b.outputs, d.json FROM builds b LEFT JOIN derivations d ON d.hash = b.drv_hash WHERE b.status = 'built'",
      ),
    };
  }

  // ---- derivations and resolutions -----------------------------------------------------------

  recordDerivation(hash: string, name: string, json: string): void {
    this.q.putDrv.run(hash, name, json);
  }

  /** Hashes among `hashes` with no recorded derivation. */
  missingDerivations(hashes: string[]): Set<string> {
    return new Set(this.q.missingDrvs.all(JSON.stringify(hashes)).map((r) => r.value));
  }

  derivation(hash: string): { hash: string; name: string; json: string } | undefined {
    return this.q.getDrv.get(hash);
  }

  derivationName(hash: string): string | undefined {
    return this.q.getDrvName.get(hash);
  }

  /** The names of those of `hashes` that are recorded, in one query. */
  derivationNames(hashes: readonly string[]): Map<string, string> {
    return new Map(this.q.getDrvNames.all(JSON.stringify(hashes)).map((r) => [r.hash, r.name]));
  }

  resolution(drvHash: string): string | undefined {
    return this.q.getResolution.get(drvHash)?.resolved_hash;
  }

  recordResolution(drvHash: string, resolvedHash: string, now: number): void {
    this.q.putResolution.run(drvHash, resolvedHash, now);
  }

  recordResolutions(pairs: Array<[string, string]>, now: number): void {
    if (pairs.length) this.q.putResolutions.run(now, JSON.stringify(pairs));
  }

  // ---- build records -------------------------------------------------------------------------

  start(b: BuildRecordStart): number {
    return Number(this.q.start.run(b.drvHash, b.resolvedHash, b.name, b.startedAt, b.logFile, JSON.stringify(b.inputs)).lastInsertRowid);
  }

  finish(id: number, status: "failed" | "cancelled", exitCode: number | null, now: number): void {
    this.q.finish.run(now, status, exitCode, null, id);
  }

  complete(id: number, outputs: Record<string, string>, now: number): void {
    this.q.finish.run(now, "built", 0, JSON.stringify(outputs), id);
  }

  last(drvHash: string): BuildRow | undefined {
    return this.q.last.get(drvHash);
  }

  lastByName(name: string): BuildRow | undefined {
    return this.q.lastByName.get(name);
  }

  all(): BuildRow[] {
    return this.q.all.all();
  }

  running(): Array<{ id: number; resolved_hash: string }> {
    return this.q.running.all();
  }

  /** ms of the last successful build of this derivation, else of the last one with its name. */
  duration(drvHash: string, name: string): { ms: number; exact: boolean } | undefined {
    const exact = this.q.msByDrv.get(drvHash);
    if (exact) return { ms: exact.ms, exact: true };
    const guess = this.q.msByName.get(name);
    return guess ? { ms: guess.ms, exact: false } : undefined;
  }

  /** What the latest successful build of a resolved derivation produced, as recorded. */
  recordedOutputs(resolvedHash: string): Record<string, string> | undefined {
    const row = this.q.outputsOf.get(resolvedHash);
    return row?.outputs ? (JSON.parse(row.outputs) as Record<string, string>) : undefined;
  }

  /** The latest successful build of another derivation with this name. */
  previousBuild(name: string, drvHash: string): { drvHash: string; at: number } | undefined {
    const row = this.q.previous.get(name, drvHash);
    return row ? { drvHash: row.drv_hash, at: row.started_at } : undefined;
  }

  /** The derivations with this name that were built successfully, newest first (at most `limit`). */
  builtVersions(name: string, limit: number): string[] {
    return this.q.builtVersions.all(name, limit).map((r) => r.drv_hash);
  }

  /** Finished builds from before `before` whose outputs are all gone from the store. */
  collectable(before: number): Array<{ id: number; resolved_hash: string }> {
    return this.q.collectable.all(before);
  }

  deleteIds(ids: number[]): void {
    if (ids.length) this.q.deleteMany.run(JSON.stringify(ids));
  }

  /** Successful builds with their inputs, outputs and derivation (gc --keep-build-deps). */
  builtWithDerivations(): Array<{ inputs: string; outputs: string | null; json: string | null }> {
    return this.q.builtWithDrv.all();
  }

  logFiles(): Array<{ id: number; log_file: string }> {
    return this.q.logFiles.all();
  }
}
