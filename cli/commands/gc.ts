// kiln gc: delete every store path not reachable from a root (result links, pins, generations,
// running kiln processes). Policies: --max-freed, --max-size (least recently used first),
// --older-than; --dry-run / --print-dead show what would go. Before the mark, --keep-generations
// and --delete-older-than delete profile generations; after the sweep, --history-older-than
// collects the history `why` reads, by its own policy.
import { KilnError } from "../../store/errors.js";
import { collectGarbage, GC_LOCK, takeGcLock, type GcEvent } from "../../store/gc.js";
import { collectTargetHistory } from "../../engine/history.js";
import { deleteGenerations, rootName, syncProfileLinks, type Generation, type GenerationSpec } from "../../store/profiles.js";
import type { HistoryGcResult } from "../../store/history.js";
import { dateText } from "./profile.js";
import { parseDuration, parseSize } from "../units.js";
import { human } from "../units.js";
import { defineCommand } from "../command.js";
import { isTerminal, writeOut } from "../output.js";

/** The summary's words for kiln-hash's tree caches that went (store/digest-cache.ts), if any. */
function treeCaches(n: number, would: boolean): string {
  return n ? `; ${n} source-tree digest caches (unused for a month, or never finished) ${would ? "would be " : ""}removed` : "";
}

export const gcCommand = defineCommand({
  command: "gc",
  describe: "delete store paths that no root (result link, pin, profile generation, running kiln) needs",
  options: (y) => y
    .option("dry-run", { alias: "n", type: "boolean", describe: "delete nothing: print what would be deleted" })
    .option("print-dead", { type: "boolean", describe: "print only the paths that would be deleted, one per line (a dry run)" })
    .option("max-freed", { type: "string", describe: "stop after freeing SIZE (e.g. 2G), least recently used first" })
    .option("max-size", { type: "string", describe: "delete least recently used unreachable paths until the store is at most SIZE" })
    .option("older-than", { type: "string", describe: "only delete paths unused for at least DURATION (e.g. 30d, 12h)" })
    .option("keep-build-deps", { type: "boolean", describe: "also keep the build-time inputs of every live path (to rebuild it without fetching)" })
    .option("keep-generations", { type: "number", describe: "first delete all but the newest N generations of every profile (the current one is always kept)" })
    .option("delete-older-than", { type: "string", describe: "first delete the generations of every profile older than DURATION, as Nix does (the current one, and the newest older one, are kept)" })
    .option("history-older-than", { type: "string", describe: "also delete build history and logs older than DURATION; what `kiln why` compares for each target is kept" })
    .option("json", { type: "boolean", describe: "print the result as JSON" })
    .option("batch-size", { type: "number", hidden: true, describe: "paths deleted per transaction (tests)" }),
  run: async (argv, ctx) => {
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
        process.stderr.write(`gc: ${e.roots} roots, ${e.live} live and ${e.dead} unreachable paths (loaded in ${e.loadMs} ms, marked in ${e.markMs} ms)\n`);
      } else if (e.type === "deleted") {
        if (text) for (const d of e.paths) writeOut(`deleted ${human(d.size).padStart(10)}  ${ctx.store.hostPath(d.path)}\n`);
        if (tty) process.stderr.write(`\rgc: ${e.done}/${e.total} deleted`);
      } else if (e.type === pauseAt) {
        process.stderr.write(`gc: paused after ${e.type} (KILN_TEST_GC_PAUSE)\n`);
        await new Promise(() => {});
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
      if (tty && !dryRun) process.stderr.write("\n");
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
  },
});
