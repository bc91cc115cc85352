// Owner of the table locks: named locks shared by every kiln process on a store (a build of one
// resolved derivation, the registration of one path, gc, a profile). A lock whose holder is gone
// (pid + start time no longer match a live process) is free.
import type { Db } from "./database.js";
import { sleepSync } from "./database.js";
import { KilnError } from "./errors.js";
import { isProcessAlive, SELF_PID, SELF_START } from "./process.js";

export class LockTable {
  private readonly q;
  constructor(private readonly db: Db) {
    this.q = {
      get: db.prepare<[string], { pid: number; pid_start: string }>("SELECT pid, pid_start FROM locks WHERE key = ?"),
      put: db.prepare("INSERT OR REPLACE INTO locks (key, pid, pid_start, taken_at) VALUES (?, ?, ?, ?)"),
      del: db.prepare("DELETE FROM locks WHERE key = ? AND pid = ? AND pid_start = ?"),
      held: db.prepare<[string], { key: string; pid: number; pid_start: string }>("SELECT key, pid, pid_start FROM locks WHERE key IN (SELECT value FROM json_each(?))"),
      takeMany: db.prepare("INSERT OR REPLACE INTO locks (key, pid, pid_start, taken_at) SELECT value, ?, ?, ? FROM json_each(?)"),
      dropMany: db.prepare("DELETE FROM locks WHERE key IN (SELECT value FROM json_each(?)) AND pid = ? AND pid_start = ?"),
    };
  }

  holder(key: string): { pid: number; pidStart: string } | undefined {
    const r = this.q.get.get(key);
    return r ? { pid: r.pid, pidStart: r.pid_start } : undefined;
  }

  /** Whether a live process holds `key`. */
  heldByLive(key: string): boolean {
    const r = this.q.get.get(key);
    return r !== undefined && isProcessAlive(r.pid, r.pid_start);
  }

  /** Take a lock if it is free or held by a dead process. Atomic through SQLite. */
  tryLock(key: string): boolean {
    return this.db.transaction(() => {
      const cur = this.q.get.get(key);
      if (cur && !(cur.pid === SELF_PID && cur.pid_start === SELF_START) && isProcessAlive(cur.pid, cur.pid_start)) return false;
      this.q.put.run(key, SELF_PID, SELF_START, Date.now());
      return true;
    }).immediate();
  }

  /** Blocking variant for short critical sections inside synchronous code. */
  lockSync(key: string): void {
    for (let delay = 5; !this.tryLock(key); delay = Math.min(delay * 2, 200)) sleepSync(delay);
  }

  unlock(key: string): void {
    this.q.del.run(key, SELF_PID, SELF_START);
  }

  /** Wait for a lock, polling; aborts with the signal. */
  async lock(key: string, signal?: AbortSignal, onWait?: () => void): Promise<void> {
    let waited = false;
    for (let delay = 20; ; delay = Math.min(delay * 2, 500)) {
      if (signal?.aborted) throw new KilnError("CANCELLED", "cancelled while waiting for a lock");
      if (this.tryLock(key)) return;
      if (!waited) {
        waited = true;
        onWait?.();
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** Which of `keys` another live process holds. */
  busyOf(keys: string[]): Set<string> {
    const busy = new Set<string>();
    for (const h of this.q.held.all(JSON.stringify(keys))) {
      if (!(h.pid === SELF_PID && h.pid_start === SELF_START) && isProcessAlive(h.pid, h.pid_start)) busy.add(h.key);
    }
    return busy;
  }

  /** Take many locks at once, in the caller's transaction (after busyOf said they are free). */
  takeMany(keys: string[], now: number): void {
    if (keys.length) this.q.takeMany.run(SELF_PID, SELF_START, now, JSON.stringify(keys));
  }

  dropMany(keys: string[]): void {
    if (keys.length) this.q.dropMany.run(JSON.stringify(keys), SELF_PID, SELF_START);
  }
}
