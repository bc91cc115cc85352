// kiln watch <target...>: realize, then watch the recipe files and the local sources the targets
// use; on a change (debounced) evaluate again and realize again. Content addressing does the
// rest: only derivations whose inputs changed are built, and early cutoff stops the wave where a
// rebuilt output comes out the same. A broken recipe shows its error and the watch goes on.
//
// Each round gets a fresh reporter (the TUI draws a live view per round and lets go of the
// terminal between rounds). A change during a round is picked up when the round ends.
import { dirname, join, relative } from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Argv } from "yargs";
import type { Context } from "../../engine/context.js";
import { recordTargets } from "../../engine/history.js";
import { Realizer, reachable } from "../../engine/realize.js";
import { evaluateTargets } from "../../engine/targets.js";
import { isKilnError } from "../../store/errors.js";
import { openReporter, recipesEntry, type GlobalArgs } from "../context.js";
import { recipesRevision } from "../git.js";
import { EXIT, withContext } from "../run.js";

interface Args extends GlobalArgs {
  targets: string[];
  debounce: number;
}

export const command = "watch <targets..>";
export const describe = "realize targets, then again whenever their recipe files or local sources change";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .positional("targets", { type: "string", array: true, demandOption: true })
    .option("debounce", { type: "number", default: 200, describe: "wait this many ms after the last change before rebuilding" }) as unknown as Argv<Args>;
}

type Ctx = Context & { root: string };

/**
 * One round: evaluate, hand the files to watch to `watchFiles` (before building, so that an edit
 * during the build is seen), realize, print the outputs.
 */
async function round(ctx: Ctx, argv: Args, entry: string, stop: AbortController, watchFiles: (files: Set<string>) => void): Promise<void> {
  const reporter = await openReporter(argv, { cancel: () => stop.abort(), forceQuit: () => process.exit(EXIT.cancelled), store: () => ctx.store });
  const c: Ctx = { ...ctx, events: reporter.events };
  try {
    const ev = await evaluateTargets(c, entry, join(ctx.root, "eval-cache"), argv.targets);
    const roots = ev.roots.map((r) => r.node);
    const files = new Set(ev.set.files);
    for (const n of reachable(ev.evaluator.graph, roots)) for (const host of n.sources.values()) files.add(host);
    watchFiles(files);
    const result = await new Realizer(c).realize(ev.evaluator.graph, roots);
    recordTargets(ctx.store, ev.roots, result.outputs, recipesRevision(ev.set.entry), ctx.clock());
    await reporter.close();
    for (const r of ev.roots) {
      const p = result.outputs.get(r.node.hash)?.[r.output];
      if (p) process.stdout.write(`${ctx.store.hostPath(p)}\n`);
      else if (!result.failed.length) process.stderr.write(`error: ${r.target} was not realized (did a source change while it was building?)\n`);
    }
    if (result.failed.length) process.stderr.write(`error: ${result.failed.length} derivation(s) failed: ${result.failed.map((f) => f.node.name).join(", ")}\n`);
  } catch (e) {
    await reporter.close().catch(() => {});
    if (!isKilnError(e) || e.code === "CANCELLED") throw e;
    // a broken recipe (or a build that could not start): say so, keep watching
    process.stderr.write(`error: ${e.describe()}\n`);
  }
}

export function handler(argv: Args): Promise<void> {
  return withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
    const entry = recipesEntry(argv);
    const stop = new AbortController();
    const signal = AbortSignal.any([ctx.signal, stop.signal]);
    const say = (s: string) => process.stderr.write(`kiln watch: ${s}\n`);
    const changed = new Set<string>();
    let dirty = false;
    let wake: (() => void) | undefined;
    let timer: NodeJS.Timeout | undefined;
    // the recipe folder always (a new recipe file; a set that has never evaluated yet); a broken
    // recipe keeps the files of the last good evaluation watched
    let watched = new Set<string>([dirname(entry)]);
    const watcher: FSWatcher = watch([...watched], { ignoreInitial: true, ignored: (p) => /(^|\/)(node_modules|\.git)(\/|$)/.test(p) });
    watcher.on("all", (_event, path) => {
      changed.add(path);
      clearTimeout(timer);
      timer = setTimeout(() => {
        dirty = true;
        wake?.();
      }, argv.debounce);
    });
    await new Promise<void>((r) => watcher.once("ready", () => r()));
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      for (;;) {
        await round({ ...ctx, signal }, argv, entry, stop, (files) => {
          const next = new Set([dirname(entry), ...files]);
          const gone = [...watched].filter((f) => !next.has(f));
          if (gone.length) watcher.unwatch(gone);
          watcher.add([...next].filter((f) => !watched.has(f)));
          watched = next;
        });
        say(`watching ${watched.size} files and folders; waiting for changes (Ctrl-C to stop)`);
        await new Promise<void>((r) => {
          if (dirty || signal.aborted) r();
          else wake = r;
        });
        wake = undefined;
        if (signal.aborted) break;
        dirty = false;
        say(`changed: ${[...changed].map((f) => relative(process.cwd(), f) || f).sort().join(", ")}`);
        changed.clear();
      }
    } catch (e) {
      if (!(isKilnError(e) && e.code === "CANCELLED")) throw e;
    } finally {
      signal.removeEventListener("abort", onAbort);
      clearTimeout(timer);
      await watcher.close();
    }
    return EXIT.cancelled;
  });
}
