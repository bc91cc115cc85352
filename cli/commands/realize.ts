// kiln realize <target...>: build (or reuse) targets, print their store paths, link ./result.
// With --watch (and as kiln watch), again on every change to what the targets were made from.
import type { Argv } from "yargs";
import { KilnError } from "../../store/errors.js";
import { removeTree, type StorePathName } from "../../store/paths.js";
import { addLinkRoot } from "../../store/roots.js";
import { addGeneration, profilesDir, syncProfileLinks, validateProfileName, type ProfileEntry } from "../../store/profiles.js";
import { type Outputs, Realizer } from "../../engine/realize.js";
import { reachable, sourcesOf, toolsOf } from "../../engine/graph.js";
import { evaluateTargets, withSeals, type Evaluated } from "../../engine/targets.js";
import type { RecipesRev } from "../../store/history.js";
import { watchRounds } from "../watch.js";
import { recordTargets } from "../../engine/history.js";
import { recipesAtRevision, recipesRevision } from "../git.js";
import { printForecast } from "./plan.js";
import { defineCommand, type ArgsOf, type Ctx } from "../command.js";
import { evalCacheOn, recipesEntry, reporterKind, type GlobalArgs } from "../context.js";
import { EXIT } from "../run.js";
import { diffLocks, renderDiff } from "../../engine/lockfile.js";
import { lockOfRecipeSet, lockPath, readLock } from "../lock-file.js";
import { join } from "node:path";
import type { Node } from "../../engine/evaluate.js";
import { dpkgListFiles } from "../../engine/hosttools.js";
import { linkName, replaceLink } from "../links.js";
import { buildId, gitHeadFiles, isRacy, noopIdent, noopKey, statTree, statTuple, writeRecord, type NoopRoot, type StatTuple } from "../noop.js";
import { dirname } from "node:path";
import { PushAfterBuild, pusherFor, realisationsOf } from "../push.js";

/** realize's positionals and options, which kiln watch takes too */
export function realizeOptions(y: Argv<GlobalArgs>) {
  return y
    .positional("targets", { type: "string", array: true, demandOption: true, describe: "target names, e.g. pi4-llm-os or hello.lib" })
    .option("out-link", { alias: "o", type: "string", describe: "name of the result link (default: result)" })
    .option("link", { type: "boolean", default: true, describe: "make result links (--no-link to skip)" })
    .option("json", { type: "boolean", describe: "print a JSON summary on stdout" })
    .option("rev", { type: "string", describe: "evaluate the recipe set as it was at this git revision (the working tree is not touched)" })
    .option("profile", { alias: "p", type: "string", describe: "record the outputs as a new generation of this profile (<store>/profiles/NAME links to the current one)" })
    .option("locked", { type: "boolean", describe: "refuse to build if kiln.lock would change (for CI); shows the drift" })
    .option("dry-run", { alias: "n", type: "boolean", describe: "build nothing: print what would be built, fetched or reused, and an estimate (as kiln plan)" })
    .option("watch", {
      type: "boolean",
      describe: "then realize again whenever a recipe file or a local source the targets use changes, in the same view; a failed round shows its error and the watch goes on (q or Ctrl-C stops it)",
    })
    .option("debounce", { type: "number", default: 200, describe: "with --watch: wait this many ms after the last change before the next round" })
    .option("push-to", { type: "string", describe: "push each build's output (with its closure) to this binary cache as soon as it is built, signed with --secret-key" });
}

type Args = ArgsOf<typeof realizeOptions>;

export const realizeCommand = defineCommand({
  command: "realize <targets..>",
  describe: "build targets (or reuse them from the store), print their store paths and link ./result; with --watch, again on every change",
  options: realizeOptions,
  reporter: (argv) => argv.reporter,
  run: realizeRun,
});

/** realize, and (with --watch) watch */
export async function realizeRun(argv: Args, ctx: Ctx): Promise<number | void> {
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
  if (argv.profile !== undefined) validateProfileName(argv.profile);
  if (argv.watch) {
    // the TUI shows each round's outputs itself: lines written to its terminal between its
    // frames would garble it
    const print = !(reporterKind(argv) === "tui" && process.stdout.isTTY);
    return watchRounds(ctx, {
      entry, debounce: argv.debounce, relativeTo: process.cwd(),
      round: async (evaluated) => {
        if (argv.locked) await assertLocked(ctx, entry);
        return realizeTargets(ctx, argv, entry, recipesRevision(entry), { print, evaluated, record: false });
      },
    });
  }
  if (argv.locked) await assertLocked(ctx, entry);
  if (argv["dry-run"]) return printForecast(ctx, entry, argv.targets, argv.json, evalCacheOn(argv));
  await realizeTargets(ctx, argv, entry, rev, { print: true, record: !argv.rev });
  return EXIT.ok;
}

/**
 * Evaluate, realize, record the history, link the results and print them; a failed build throws
 * (after the rest is printed). Returns the targets' store paths. `evaluated`: told the evaluation
 * before anything is built (the watch learns there which files to watch).
 */
function realizeTargets(
  ctx: Ctx, argv: Args, entry: string, rev: RecipesRev | null,
  o: { print: boolean; evaluated?: (ev: Evaluated) => void; record: boolean },
): Promise<string[]> {
  // a push takes every realisation of the graph along: it needs the whole graph, sealed modules' too
  return withSeals(argv["push-to"] === undefined && evalCacheOn(argv), (seal) => realizeOnce(ctx, argv, entry, rev, o, seal));
}

async function realizeOnce(
  ctx: Ctx, argv: Args, entry: string, rev: RecipesRev | null,
  o: { print: boolean; evaluated?: (ev: Evaluated) => void; record: boolean }, seal: boolean,
): Promise<string[]> {
  const t0 = Date.now();
  const ev = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), argv.targets, { seal });
  o.evaluated?.(ev);
  const graph = reachable(ev.evaluator.graph, ev.roots.map((r) => r.node));
  // taken now, before the build: an edit during the build must not be recorded as seen
  const noopStats = o.record ? inputStats(ev, graph, entry, rev !== null, t0) : undefined;
  const pushing = argv["push-to"] !== undefined ? new PushAfterBuild(pusherFor(ctx, argv, argv["push-to"], "realize --push-to")) : undefined;
  const result = await new Realizer(pushing ? { ...ctx, events: pushing.watch(ctx.events) } : ctx).realize(ev.evaluator.graph, ev.roots.map((r) => r.node));
  // history for `kiln why`: which derivation each target was, at which recipe revision
  recordTargets(ctx.store, ev.roots, result.outputs, rev, ctx.clock(), ev.snapshot);
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
      const link = linkName(base, n, r.output);
      replaceLink(link, host);
      addLinkRoot(ctx.store, link, p, ctx.clock());
      row.link = link;
    }
    rows.push(row);
  }
  // a profile gets a generation only when every target was realised
  const profile = argv.profile !== undefined && result.failed.length === 0 ? recordProfile(ctx, argv.profile, ev.roots, result.outputs) : undefined;
  if (o.print) {
    if (argv.json) process.stdout.write(JSON.stringify({ outputs: rows, built: result.built, cached: result.cached, substituted: result.substituted, failed: result.failed.map((f) => ({ ...f.node, code: f.error.code, message: f.error.message })), ...(profile ? { profile } : {}) }, null, 2) + "\n");
    else for (const r of rows) process.stdout.write(`${r.path}\n`);
  }
  if (profile && !argv.json) {
    process.stderr.write(profile.created
      ? `profile ${profile.name}: generation ${profile.generation}${profile.previous !== undefined ? ` (was ${profile.previous})` : ""}, ${profile.link}\n`
      : `profile ${profile.name}: unchanged, still generation ${profile.generation}, ${profile.link}\n`);
  }
  const bid = buildId();
  if (noopStats && bid && !result.failed.length && rows.length === ev.roots.length) {
    // the next identical command is answered from this record (cli/fast.ts) while nothing changes
    const roots: NoopRoot[] = ev.roots.map((r) => ({
      target: r.target, output: r.output, drv: r.node.hash,
      resolved: r.node.drv.fixed ? null : (ctx.store.resolution(r.node.hash) ?? null),
      path: result.outputs.get(r.node.hash)![r.output]!,
    }));
    const ident = noopIdent(entry, argv.targets, bid);
    writeRecord(ctx.root, { v: 1, key: noopKey(ident), ident, stats: noopStats, roots, derivations: graph.length, recipes: rev, snapshot: ev.snapshot ?? null });
  }
  // what was built is pushed even when something else failed
  await pushing?.finish(realisationsOf(ctx, ev.evaluator.graph, result.outputs));
  if (result.failed.length) {
    const names = result.failed.map((f) => f.node.name).join(", ");
    const kept = argv.profile !== undefined ? `; profile ${argv.profile} was left as it was` : "";
    throw new KilnError("BUILD_FAILED", `${result.failed.length} derivation(s) failed: ${names}`, `see the log with: kiln log <name>${kept}`);
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

/** realize --profile: the realised targets as the profile's next generation (if they changed). */
function recordProfile(ctx: Ctx, name: string, roots: Array<{ target: string; node: Node; output: string }>, outputs: Map<string, Outputs>) {
  const entries: ProfileEntry[] = [];
  for (const r of roots) {
    const p = outputs.get(r.node.hash)?.[r.output];
    if (p) entries.push({ name: r.target, output: r.output, drv: r.node.hash, path: p as StorePathName });
  }
  const { generation, created, previous } = addGeneration(ctx.store, name, entries, ctx.clock());
  syncProfileLinks(ctx.store, name);
  return {
    name, generation: generation.number, created, ...(previous !== undefined ? { previous } : {}),
    link: join(profilesDir(ctx.store), name), path: ctx.store.hostPath(generation.path),
  };
}

/**
 * The stat of every file the evaluation depended on, for the no-op record (cli/noop.ts). Undefined
 * when one of them changed since just before the evaluation began (a racy stat: it might have
 * been read before or after the change) or git's layout is not understood.
 */
function inputStats(ev: Evaluated, graph: Node[], entry: string, inGit: boolean, t0: number): StatTuple[] | undefined {
  const stats: StatTuple[] = [];
  for (const f of ev.set.files) stats.push(statTuple(f));
  const seen = new Set<string>();
  const seenTools = new Set<object>();
  for (const n of graph) {
    // a sealed node's: what everything under it was evaluated from
    for (const [, host] of sourcesOf(n)) if (!seen.has(host)) (seen.add(host), statTree(host, stats));
    for (const fp of Object.values(toolsOf(n))) {
      // thousands of derivations share a handful of fingerprints: each is looked at once
      if (seenTools.has(fp)) continue;
      seenTools.add(fp);
      for (const bin of Object.values(fp.commands)) if (!seen.has(bin)) (seen.add(bin), stats.push(statTuple(bin)));
      // dpkg rewrites a package's file list when it upgrades it (the version is in the fingerprint)
      for (const list of fp.package ? dpkgListFiles(fp.package) : []) if (!seen.has(list)) (seen.add(list), stats.push(statTuple(list)));
    }
  }
  if (inGit) {
    const git = gitHeadFiles(dirname(entry));
    if (!git) return undefined;
    for (const f of git) stats.push(statTuple(f));
  }
  // not recorded: the next realize evaluates again
  return isRacy(stats, t0) ? undefined : stats;
}
