// Owner of the table temp_roots: the paths running kiln processes rely on or have just produced
// (pid + start time; rows of a dead process are stale and ignored). The protocol with a
// concurrent gc is in store/gc.ts.
import type { Db } from "./database.js";
import { SELF_PID, SELF_START } from "./process.js";

export class TempRootTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      put: db.prepare("INSERT OR IGNORE INTO temp_roots (pid, pid_start, path) VALUES (?, ?, ?)"),
      putMany: db.prepare<[number, string, string]>("INSERT OR IGNORE INTO temp_roots (pid, pid_start, path) SELECT ?, ?, value FROM json_each(?)"),
      dropOwn: db.prepare("DELETE FROM temp_roots WHERE pid = ? AND pid_start = ?"),
      all: db.prepare<[], { pid: number; pid_start: string; path: string }>("SELECT pid, pid_start, path FROM temp_roots ORDER BY id"),
      procs: db.prepare<[], { pid: number; pid_start: string }>("SELECT DISTINCT pid, pid_start FROM temp_roots"),
      maxId: db.prepare<[], { m: number | null }>("SELECT max(id) AS m FROM temp_roots"),
      since: db.prepare<[number], { id: number; path: string }>("SELECT id, path FROM temp_roots WHERE id > ? ORDER BY id"),
    };
  }

  /** Root one path for the life of this process. */
  add(path: string): void {
    this.q.put.run(SELF_PID, SELF_START, path);
  }

  addMany(paths: string[]): void {
    if (paths.length) this.q.putMany.run(SELF_PID, SELF_START, JSON.stringify(paths));
  }

  /** This process's rows: its temporary roots end with it. */
  dropOwn(): void {
    this.q.dropOwn.run(SELF_PID, SELF_START);
  }

  /** Rows of a process (pid + start time). */
  dropProcess(pid: number, pidStart: string): number {
    return this.q.dropOwn.run(pid, pidStart).changes;
  }

  all(): Array<{ pid: number; pid_start: string; path: string }> {
    return this.q.all.all();
  }

  processes(): Array<{ pid: number; pid_start: string }> {
    return this.q.procs.all();
  }

  maxId(): number {
    return this.q.maxId.get()?.m ?? 0;
  }

  /** Rows added after `id`, oldest first (ids only grow: AUTOINCREMENT). */
  since(id: number): Array<{ id: number; path: string }> {
    return this.q.since.all(id);
  }
}
