// kiln realize <target...>: build (or reuse) targets, print their store paths, link ./result.
// With --watch (and as kiln watch), again on every change to what the targets were made from.
import { lstatSync, symlinkSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import type { Argv } from "yargs";
import { KilnError } from "../../store/errors.js";
import { removeTree } from "../../store/store.js";
import { Realizer } from "../../engine/realize.js";
import { evaluateTargets, type Evaluated } from "../../engine/targets.js";
import type { Context } from "../../engine/context.js";
import type { RecipesRev } from "../../store/history.js";
import { watchRounds } from "../watch.js";
import { recordTargets } from "../../engine/history.js";
import { recipesAtRevision, recipesRevision } from "../git.js";
import { printForecast } from "./plan.js";
import { recipesEntry, reporterKind, type GlobalArgs } from "../context.js";
import { EXIT, withContext } from "../run.js";
import { diffLocks, renderDiff } from "../../engine/lockfile.js";
import { lockOfRecipeSet, lockPath, readLock } from "../lock-file.js";
import { join } from "node:path";

interface Args extends GlobalArgs {
  targets: string[];
  "out-link"?: string;
  link: boolean;
  json?: boolean;
  "dry-run"?: boolean;
  locked?: boolean;
  rev?: string;
  watch?: boolean;
  debounce: number;
}

type Ctx = Context & { root: string };

export const command = "realize <targets..>";
export const describe = "build targets (or reuse them from the store), print their store paths and link ./result; with --watch, again on every change";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .positional("targets", { type: "string", array: true, demandOption: true, describe: "target names, e.g. pi4-llm-os or hello.lib" })
    .option("out-link", { alias: "o", type: "string", describe: "name of the result link (default: result)" })
    .option("link", { type: "boolean", default: true, describe: "make result links (--no-link to skip)" })
    .option("json", { type: "boolean", describe: "print a JSON summary on stdout" })
    .option("rev", { type: "string", describe: "evaluate the recipe set as it was at this git revision (the working tree is not touched)" })
    .option("locked", { type: "boolean", describe: "refuse to build if kiln.lock would change (for CI); shows the drift" })
    .option("dry-run", { alias: "n", type: "boolean", describe: "build nothing: print what would be built, fetched or reused, and an estimate (as kiln plan)" })
    .option("watch", {
      type: "boolean",
      describe: "then realize again whenever a recipe file or a local source the targets use changes, in the same view; a failed round shows its error and the watch goes on (q or Ctrl-C stops it)",
    })
    .option("debounce", { type: "number", default: 200, describe: "with --watch: wait this many ms after the last change before the next round" }) as unknown as Argv<Args>;
}

export function handler(argv: Args): Promise<void> {
  return withContext(argv, async (ctx) => {
    if (argv.watch && (argv.rev || argv["dry-run"])) {
      throw new KilnError("USAGE", `--watch cannot go with ${argv.rev ? "--rev" : "--dry-run"}`, "a revision does not change, and a dry run builds nothing: drop one of them");
    }
    let entry = recipesEntry(argv);
    let rev = recipesRevision(entry);
    if (argv.rev) {
      // the time machine: the recipes of that commit, unpacked in this process's scratch space
      // (removed when the process ends or, after a crash, by the next run)
      const dir = ctx.store.scratchDir("rev");
      process.once("exit", () => removeTree(dir));
      const at = recipesAtRevision(entry, argv.rev, dir);
      entry = at.entry;
      rev = { rev: at.rev, dirty: false };
    }
    if (argv.watch) {
      // the TUI shows each round's outputs itself: lines written to its terminal between its
      // frames would garble it
      const print = !(reporterKind(argv) === "tui" && process.stdout.isTTY);
      return watchRounds(ctx, {
        entry, debounce: argv.debounce, relativeTo: process.cwd(),
        round: async (evaluated) => {
          if (argv.locked) await assertLocked(ctx, entry);
          return realizeTargets(ctx, argv, entry, recipesRevision(entry), { print, evaluated });
        },
      });
    }
    if (argv.locked) await assertLocked(ctx, entry);
    if (argv["dry-run"]) return printForecast(ctx, entry, argv.targets, argv.json);
    await realizeTargets(ctx, argv, entry, rev, { print: true });
    return EXIT.ok;
  });
}

/**
 * Evaluate, realize, record the history, link the results and print them; a failed build throws
 * (after the rest is printed). Returns the targets' store paths. `evaluated`: told the evaluation
 * before anything is built (the watch learns there which files to watch).
 */
async function realizeTargets(ctx: Ctx, argv: Args, entry: string, rev: RecipesRev | null, o: { print: boolean; evaluated?: (ev: Evaluated) => void }): Promise<string[]> {
  const ev = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), argv.targets);
  o.evaluated?.(ev);
  const result = await new Realizer(ctx).realize(ev.evaluator.graph, ev.roots.map((r) => r.node));
  // history for `kiln why`: which derivation each target was, at which recipe revision
  recordTargets(ctx.store, ev.roots, result.outputs, rev, ctx.clock());
  const rows: Array<{ target: string; output: string; path: string; link?: string }> = [];
  let n = 0;
  const base = argv["out-link"] ?? "result";
  for (const r of ev.roots) {
    const outs = result.outputs.get(r.node.hash);
    if (!outs) continue;
    const p = outs[r.output];
    if (!p) continue;
    const host = ctx.store.hostPath(p);
    const row: (typeof rows)[number] = { target: r.target, output: r.output, path: host };
    if (argv.link) {
      n++;
      const link = resolve(`${base}${n > 1 ? `-${n}` : ""}${r.output !== "out" ? `-${r.output}` : ""}`);
      replaceLink(link, host);
      ctx.store.db.prepare("INSERT OR REPLACE INTO roots (name, kind, path, created_at) VALUES (?, 'link', ?, ?)").run(`link:${link}`, p, ctx.clock());
      row.link = link;
    }
    rows.push(row);
  }
  if (o.print) {
    if (argv.json) process.stdout.write(JSON.stringify({ outputs: rows, built: result.built, cached: result.cached, failed: result.failed.map((f) => ({ ...f.node, code: f.error.code, message: f.error.message })) }, null, 2) + "\n");
    else for (const r of rows) process.stdout.write(`${r.path}\n`);
  }
  if (result.failed.length) {
    const names = result.failed.map((f) => f.node.name).join(", ");
    throw new KilnError("BUILD_FAILED", `${result.failed.length} derivation(s) failed: ${names}`, `see the log with: kiln log <name>`);
  }
  return rows.map((r) => r.path);
}

/** --locked: the recipe set's lock must be exactly kiln.lock; no silent rewrites. */
async function assertLocked(ctx: Ctx, entry: string): Promise<void> {
  const file = lockPath(entry);
  const old = readLock(file);
  if (!old) throw new KilnError("LOCK_DRIFT", `--locked, but there is no ${file}`, "create it with `kiln lock` and commit it");
  const changes = diffLocks(old, await lockOfRecipeSet(ctx, entry));
  if (changes.length) {
    throw new KilnError("LOCK_DRIFT", `--locked, but ${file} would change:\n${renderDiff(changes)}`,
      "if these changes are intended, run `kiln lock` and commit kiln.lock; otherwise restore the pins (or the host tools) they name");
  }
}

function replaceLink(link: string, target: string): void {
  try {
    const st = lstatSync(link);
    if (!st.isSymbolicLink()) throw new KilnError("USAGE", `${link} exists and is not a symlink; not replacing it`, "remove it or pass --out-link <name>");
    unlinkSync(link);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  symlinkSync(target, link);
}
