// What `kiln gc` does once its options are read: the same for the full CLI's command
// (cli/commands/gc.ts) and for gc's own bundle (cli/gc-main.ts), which the launcher runs for a
// plain `kiln gc` command line without loading the rest of kiln.
import { KilnError } from "../store/errors.js";
import { collectGarbage, GC_LOCK, takeGcLock, type GcEvent } from "../store/gc.js";
import type { LocalStore } from "../store/local-store.js";
import { collectTargetHistory } from "../engine/history.js";
import { deleteGenerations, rootName, syncProfileLinks, type Generation, type GenerationSpec } from "../store/profiles.js";
import type { HistoryGcResult } from "../store/history.js";
import { dateText, human, parseDuration, parseSize } from "./units.js";
import { isTerminal, writeFd, writeOut } from "./output.js";
import type { GcArgs } from "./gc-options.js";

/** The summary's words for kiln-hash's tree caches that went (store/digest-cache.ts), if any. */
function treeCaches(n: number, would: boolean): string {
  return n ? `; ${n} source-tree digest caches (unused for a month, or never finished) ${would ? "would be " : ""}removed` : "";
}

/** Progress on stderr, written as the output is (cli/output.ts): no stream is made for it. */
const writeErr = (s: string): void => writeFd(2, s);

export interface GcContext {
  store: LocalStore;
  clock: () => number;
  signal: AbortSignal;
}

export async function runGc(argv: GcArgs, ctx: GcContext): Promise<void> {
  const dryRun = Boolean(argv["dry-run"] || argv["print-dead"]);
  const maxFreed = argv["max-freed"] !== undefined ? parseSize(argv["max-freed"], "--max-freed") : undefined;
  const maxSize = argv["max-size"] !== undefined ? parseSize(argv["max-size"], "--max-size") : undefined;
  const olderThan = argv["older-than"] !== undefined ? parseDuration(argv["older-than"], "--older-than") : undefined;
  const historyOlderThan = argv["history-older-than"] !== undefined ? parseDuration(argv["history-older-than"], "--history-older-than") : undefined;
  const genSpecs: GenerationSpec[] = [];
  const keepGens = argv["keep-generations"];
  if (keepGens !== undefined) {
    if (!Number.isInteger(keepGens) || keepGens < 1) {
      throw new KilnError("USAGE", `--keep-generations: cannot keep ${JSON.stringify(argv["keep-generations"])} generations`, "give a whole number, at least 1 (the current generation is always kept)");
    }
    genSpecs.push({ kind: "keep", newest: keepGens });
  }
  if (argv["delete-older-than"] !== undefined) genSpecs.push({ kind: "olderThan", ms: parseDuration(argv["delete-older-than"], "--delete-older-than") });
  const text = !argv.json && !argv["print-dead"];
  const tty = isTerminal(2);
  // fault injection for the crash tests: stop after the first batch's rows are gone but before
  // its directories are, and wait to be killed
  const pauseAt = process.env.KILN_TEST_GC_PAUSE;
  const onEvent = async (e: GcEvent): Promise<void> => {
    if (e.type === "marked" && text) {
      writeErr(`gc: ${e.roots} roots, ${e.live} live and ${e.dead} unreachable paths (loaded in ${e.loadMs} ms, marked in ${e.markMs} ms)\n`);
    } else if (e.type === "deleted") {
      if (text) for (const d of e.paths) writeOut(`deleted ${human(d.size).padStart(10)}  ${ctx.store.hostPath(d.path)}\n`);
      if (tty) writeErr(`\rgc: ${e.done}/${e.total} deleted`);
    } else if (e.type === pauseAt) {
      writeErr(`gc: paused after ${e.type} (KILN_TEST_GC_PAUSE)\n`);
      // a timer keeps the process waiting: with nothing else pending (gc writes to fd 2 without
      // a stream), it would end as if gc had finished
      await new Promise(() => setInterval(() => {}, 60_000));
    }
  };
  // generations first: what only they kept alive goes in this very gc (a dry run marks as if they were gone).
  // A real gc takes its lock before deleting any: with another gc running, nothing is deleted.
  const lockHeld = !dryRun && genSpecs.length > 0;
  if (lockHeld) takeGcLock(ctx.store);
  try {
    let generations: Generation[] = [];
    if (genSpecs.length) {
      generations = deleteGenerations(ctx.store, undefined, genSpecs, ctx.clock(), dryRun);
      if (!dryRun) for (const p of new Set(generations.map((g) => g.profile))) syncProfileLinks(ctx.store, p);
      if (text) {
        for (const g of generations) {
          writeOut(`${dryRun ? "would delete" : "deleted"} generation ${g.number} of profile ${g.profile} (${dateText(g.createdAt)})\n`);
        }
      }
    }
    const r = await collectGarbage(ctx.store, {
      dryRun, keepBuildDeps: Boolean(argv["keep-build-deps"]), maxFreed, maxSize, olderThan, lockHeld,
      ...(dryRun && generations.length ? { ignoreRoots: new Set(generations.map((g) => rootName(g.profile, g.number))) } : {}),
      now: ctx.clock, signal: ctx.signal, onEvent, ...(argv["batch-size"] ? { batchSize: argv["batch-size"] } : {}),
    });
    if (tty && !dryRun) writeErr("\n");
    // history after the sweep: build records of outputs collected just now can go too
    const history: HistoryGcResult | undefined = historyOlderThan !== undefined && !r.interrupted
      ? collectTargetHistory(ctx.store, ctx.clock() - historyOlderThan, dryRun) : undefined;
    if (argv.json) {
      writeOut(JSON.stringify({
        ...r, deleted: r.deleted.map((d) => ({ path: ctx.store.hostPath(d.path), size: d.size })), dryRun,
        generations: generations.map((g) => ({ profile: g.profile, number: g.number, path: ctx.store.hostPath(g.path), createdAt: g.createdAt })),
        ...(history ? { history } : {}),
      }, null, 2) + "\n");
      return;
    }
    if (argv["print-dead"]) {
      // one write: a write per path to a pipe costs more than the whole mark at 100k paths
      writeOut(r.deleted.map((d) => `${ctx.store.hostPath(d.path)}\n`).join(""));
      return;
    }
    const historyText = (h: HistoryGcResult, would: boolean) =>
      `history: ${h.buildRows} build records and ${h.targetRows} target realisations ${would ? "would be " : ""}deleted, ` +
      `${h.logFiles} log files (${human(h.logBytes)}) ${would ? "would be " : ""}removed; ${h.targets} targets keep their latest realisation and what why compares it with\n`;
    // unreachable paths a limit left in place, and which limits did
    const limits = [
      ...(maxSize !== undefined ? [`the store is within --max-size ${argv["max-size"]}`] : []),
      ...(maxFreed !== undefined ? [`--max-freed ${argv["max-freed"]} was reached`] : []),
      ...(olderThan !== undefined ? [`used within --older-than ${argv["older-than"]}`] : []),
    ];
    const lru = maxSize !== undefined || maxFreed !== undefined ? " (least recently used went first)" : "";
    const limited = r.keptByLimits.count
      ? `; ${r.keptByLimits.count} unreachable paths ${dryRun ? "would be " : ""}kept (${human(r.keptByLimits.bytes)}): ${limits.join(", or ")}${lru}`
      : "";
    if (dryRun) {
      writeOut(r.deleted.map((d) => `would delete ${human(d.size).padStart(10)}  ${ctx.store.hostPath(d.path)}\n`).join(""));
      writeOut(`${r.deleted.length} store paths would be deleted, ${human(r.freed)} would be freed; ${r.strays.length} unregistered strays; ${r.live} live paths kept (${human(r.liveBytes)})${limited}${treeCaches(r.treeCaches, true)}\n`);
      if (history) writeOut(historyText(history, true));
      return;
    }
    for (const s of r.strays) writeOut(`removed stray  ${ctx.store.hostPath(s as never)}\n`);
    const kept = r.keptDuringSweep ? `; ${r.keptDuringSweep} kept because a running kiln started using them` : "";
    writeOut(
      `${r.deleted.length} store paths deleted, ${human(r.freed)} freed${r.strays.length ? `, ${r.strays.length} strays removed` : ""}; ` +
        `${r.live} live paths kept (${human(r.liveBytes)})${limited}${kept}${r.staleRoots.length ? `; ${r.staleRoots.length} stale result-link roots dropped` : ""}${treeCaches(r.treeCaches, false)}\n`,
    );
    if (history) writeOut(historyText(history, false));
    if (r.interrupted) throw new KilnError("CANCELLED", "gc interrupted; the store is consistent", "run kiln gc again to finish");
  } finally {
    if (lockHeld) ctx.store.unlock(GC_LOCK);
  }
}
