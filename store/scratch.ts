// Scratch directories under the store's tmp/: named by the owning process (pid + start time), so
// that those of a process that died (SIGKILL, power loss) are found and removed by the next run.
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { removeTree } from "./paths.js";
import { isProcessAlive, SELF_PID, SELF_START } from "./process.js";

/** A fresh scratch directory owned by this process. */
export function makeScratchDir(tmpDir: string, label: string): string {
  const dir = scratchName(tmpDir, label);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** A fresh scratch directory's name, not made: whoever makes it (with tmpDir) owns it as this process. */
export function scratchName(tmpDir: string, label: string): string {
  return join(tmpDir, `${SELF_PID}-${SELF_START}-${label}-${Math.random().toString(36).slice(2, 8)}`);
}

/** Remove scratch directories left by kiln processes that died. */
export function cleanStaleScratch(tmpDir: string): number {
  let n = 0;
  for (const e of readdirSync(tmpDir)) {
    const [pid, start] = e.split("-");
    if (pid && start && !isProcessAlive(Number(pid), start)) {
      removeTree(join(tmpDir, e));
      n++;
    }
  }
  return n;
}

/** Removals started by removeScratchLater and not yet done. */
const removing = new Set<Promise<void>>();

/**
 * Remove a scratch directory off the caller's path, by `remove` (the sandbox server's child),
 * while the next build starts: a build's scratch dir is a dozen directories, ~1 ms of unlinks, a
 * tenth of a trivial build. (Node's asynchronous rm was no help: its lstat, readdir and rmdir calls
 * took the main thread as long.) `scratchRemoved` waits for them; a process that dies first leaves
 * them to cleanStaleScratch.
 */
export function removeScratchLater(dir: string, remove: (dir: string) => Promise<void>): void {
  const p: Promise<void> = remove(dir)
    .catch(() => removeTree(dir))
    .catch(() => { /* left to cleanStaleScratch, once this process is gone */ })
    .finally(() => removing.delete(p));
  removing.add(p);
}

/** Told once, when the realize ends (scratchRemoved): what holds scratch dirs for later builds lets them go. */
const beforeRemoved = new Set<() => void>();
export function beforeScratchRemoved(fn: () => void): void {
  beforeRemoved.add(fn);
}

/** Wait until every removeScratchLater is done (those that scratch dirs kept for later builds start too). */
export async function scratchRemoved(): Promise<void> {
  for (const fn of [...beforeRemoved]) {
    beforeRemoved.delete(fn);
    fn();
  }
  while (removing.size > 0) await Promise.all([...removing]);
}
