// Watch mode (kiln realize --watch, alias kiln watch): run a round, then watch the recipe files and
// the local sources that round read; on a change (debounced) run another round. Content
// addressing does the rest: only derivations whose inputs changed are built, and early cutoff
// stops the wave where a rebuilt output comes out the same.
//
// Rounds are told to the reporter as events (round, watching), so the one reporter of the
// command, the TUI included, stays up across rounds. A round that fails (a broken recipe, a failed
// build) ends with its error in the `watching` event and the watch goes on; cancelling (q, Ctrl-C)
// ends the watch, a running round included. A change during a round is picked up when it ends.
import { existsSync } from "node:fs";
import { basename, dirname, relative } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Context } from "../engine/context.js";
import type { Evaluated } from "../engine/targets.js";
import { reachable, sourcesOf } from "../engine/graph.js";
import { isKilnError } from "../store/errors.js";
import { forgetGit } from "./git.js";
import { EXIT } from "./run.js";

export interface WatchOptions {
  /** the recipe set's entry file: its folder is always watched */
  entry: string;
  /** ms to wait after the last change before a round */
  debounce: number;
  /** changed files are named relative to this folder */
  relativeTo: string;
  /**
   * One round. It calls `evaluated` as soon as it has evaluated (before building, so that an edit
   * during the build is seen) and returns the targets' store paths.
   */
  round: (evaluated: (ev: Evaluated) => void) => Promise<string[]>;
}

/** The files a round read: the recipe files and the local sources of everything the targets use. */
export function filesOf(ev: Evaluated): Set<string> {
  const files = new Set(ev.set.files);
  for (const n of reachable(ev.evaluator.graph, ev.roots.map((r) => r.node))) for (const [, host] of sourcesOf(n)) files.add(host);
  return files;
}

/** Rounds until cancelled; returns the exit code (130: the user stopped it). */
export async function watchRounds(ctx: Context, o: WatchOptions): Promise<number> {
  const changed = new Set<string>();
  let dirty = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  // the recipe folder always (a new recipe file; a set that has never evaluated yet); a broken
  // recipe keeps the files of the last good evaluation watched
  let watched = new Set<string>([dirname(o.entry)]);
  const watcher: FSWatcher = watch([...watched], { ignoreInitial: true, ignored: (p) => /(^|\/)(node_modules|\.git)(\/|$)/.test(p) });
  watcher.on("all", (_event, path) => {
    changed.add(path);
    clearTimeout(timer);
    timer = setTimeout(() => {
      dirty = true;
      wake?.();
    }, o.debounce);
  });
  await new Promise<void>((r) => watcher.once("ready", () => r()));
  let added: string[] = [];
  const watchFiles = (files: Set<string>) => {
    const next = new Set([dirname(o.entry), ...files]);
    const gone = [...watched].filter((f) => !next.has(f));
    if (gone.length) watcher.unwatch(gone);
    added = [...next].filter((f) => !watched.has(f));
    watcher.add(added);
    watched = next;
  };
  // chokidar sets up a path added after its start without telling when it is done: the round is
  // over ("watching") only once every file it read is watched, so an edit right after is seen
  const settled = async () => {
    const deadline = Date.now() + 5000;
    const covered = (f: string) => {
      const w = watcher.getWatched();
      return (w[dirname(f)] ?? []).includes(basename(f)) || f in w || !existsSync(f);
    };
    while (added.length && !added.every(covered) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    added = [];
  };
  const onAbort = () => wake?.();
  ctx.signal.addEventListener("abort", onAbort);
  try {
    for (let round = 1; ; round++) {
      ctx.events({ type: "round", round, changed: [...changed].map((f) => relative(o.relativeTo, f) || f).sort() });
      // each round looks at the host again: a tool upgraded during the watch gets its new fingerprint
      ctx.hostTools.forget();
      forgetGit();
      changed.clear();
      dirty = false;
      let outputs: string[] = [];
      let error: { code: string; message: string } | undefined;
      try {
        outputs = await o.round((ev) => watchFiles(filesOf(ev)));
      } catch (e) {
        if (!isKilnError(e)) throw e;
        if (e.code === "CANCELLED" || ctx.signal.aborted) return EXIT.cancelled;
        // a broken recipe, a failed build: shown, and the watch goes on
        error = { code: e.code, message: e.describe() };
      }
      if (ctx.signal.aborted) return EXIT.cancelled;
      await settled();
      ctx.events({ type: "watching", round, files: watched.size, outputs, ...(error ? { error } : {}) });
      await new Promise<void>((r) => {
        if (dirty || ctx.signal.aborted) r();
        else wake = r;
      });
      wake = undefined;
      if (ctx.signal.aborted) return EXIT.cancelled;
    }
  } finally {
    ctx.signal.removeEventListener("abort", onAbort);
    clearTimeout(timer);
    await watcher.close();
  }
}
