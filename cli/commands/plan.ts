// kiln plan <target...> (also `kiln realize --dry-run`): what a realize would build, fetch or take
// from the store, how long that should take by recorded build durations, and why, without building.
import { join } from "node:path";
import { storeLookup } from "../../engine/history.js";
import { assertSealsHold, downloadSizes, neededNodes, plan, type PlanState } from "../../engine/plan.js";
import { reachable } from "../../engine/graph.js";
import { evaluateTargets, withSeals } from "../../engine/targets.js";
import { recipeSetRoot } from "../../engine/recipe-snapshot.js";
import { describeReport, explain, type CauseReport } from "../../engine/why.js";
import { buildDurations, targetRealisations } from "../../store/history.js";
import { defineCommand, storeVerb, type Ctx } from "../command.js";
import { evalCacheOn, recipesEntry } from "../context.js";
import { human } from "../units.js";
import { recipesRevision } from "../git.js";
import { recipesOf, refineReports } from "../causes.js";

export interface ForecastRow {
  name: string;
  drv: string;
  state: PlanState;
  /** recorded duration of the last build of this derivation (exact) or of one with its name */
  estimateMs?: number;
  exact?: boolean;
  /** substitutable: bytes its archives download */
  downloadBytes?: number;
}

export interface Forecast {
  nodes: ForecastRow[];
  counts: Record<PlanState, number>;
  /** sum of estimates of what would (or may) run */
  totalMs: number;
  /** longest chain of estimates through the graph: the wall-clock lower bound with enough cores */
  criticalMs: number;
  /** nodes that would run with no recorded duration to go by */
  unestimated: number;
  /** bytes the substitutions download: the archives of their closures, less what the store has */
  downloadBytes: number;
  /** per target: root causes against its latest realisation with a different derivation */
  causes: Record<string, CauseReport[]>;
}

/** `seal`: let unchanged modules stand in as their records (engine/module-records.ts). */
export function forecast(ctx: Ctx, entry: string, targets: string[], seal = true): Promise<Forecast> {
  return withSeals(seal, (s) => forecastOnce(ctx, entry, targets, s));
}

async function forecastOnce(ctx: Ctx, entry: string, targets: string[], seal: boolean): Promise<Forecast> {
  const ev = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), targets, { seal });
  const all = reachable(ev.evaluator.graph, ev.roots.map((r) => r.node));
  const p = await plan(ctx.store, all, ctx.substituters, ctx.signal);
  assertSealsHold(p);
  // what a realize would visit: the inputs of outputs already in the store are not needed
  const nodes = neededNodes(all, ev.roots.map((r) => r.node), p);
  // a substitution downloads; its build time does not count
  const runs = (s: PlanState) => s !== "cached" && s !== "substitutable";
  const est = buildDurations(ctx.store, nodes.filter((n) => runs(p.get(n)!.state)));
  const downloads = await downloadSizes(ctx.store, nodes, p, ctx.signal);
  const counts: Record<PlanState, number> = { cached: 0, substitutable: 0, build: 0, fetch: 0, unknown: 0 };
  const finish = new Map<string, number>();
  let totalMs = 0;
  let unestimated = 0;
  let download = 0;
  const rows: ForecastRow[] = nodes.map((n) => {
    const state = p.get(n)!.state;
    counts[state]++;
    const bytes = downloads.get(n);
    download += bytes ?? 0;
    const e = runs(state) ? est.get(n.hash) : undefined;
    if (runs(state) && !e) unestimated++;
    const own = e?.ms ?? 0;
    totalMs += own;
    // nodes come dependencies first, so every input's finish time is known here
    finish.set(n.hash, own + Math.max(0, ...n.deps.map((d) => finish.get(d.hash) ?? 0)));
    return { name: n.name, drv: n.hash, state, ...(e ? { estimateMs: e.ms, exact: e.exact } : {}), ...(bytes !== undefined ? { downloadBytes: bytes } : {}) };
  });
  const causes: Record<string, CauseReport[]> = {};
  const lookup = storeLookup(ctx.store, ev.evaluator.graph.byHash);
  const rev = recipesRevision(entry);
  for (const r of ev.roots) {
    const last = targetRealisations(ctx.store, r.target, 1)[0];
    if (!last || last.drvHash === r.node.hash) continue;
    const now = { drvHash: r.node.hash, ...(ev.snapshot ? { snapshot: ev.snapshot } : {}) };
    const report = explain(last.drvHash, r.node.hash, lookup, recipesOf(ctx.store, lookup, { drvHash: last.drvHash, row: last }, now, recipeSetRoot(entry)));
    refineReports(report.causes, rev);
    causes[r.target] = report.causes;
  }
  return { nodes: rows, counts, totalMs, criticalMs: Math.max(0, ...finish.values()), unestimated, downloadBytes: download, causes };
}

const secs = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : ms < 600_000 ? `${Math.round(ms / 1000)}s` : `${(ms / 60_000).toFixed(1)}min`);

const LABEL: Record<PlanState, string> = { build: "build", fetch: "fetch", unknown: "maybe", cached: "store", substitutable: "subst" };

export function renderForecast(f: Forecast, relativeTo: string, all: boolean): string[] {
  const c = f.counts;
  const maybe = c.unknown ? `; ${c.unknown} more only if an input's output changes (early cutoff may spare them)` : "";
  const out = [`would build ${c.build}, fetch ${c.fetch}, take ${c.cached} from the store${c.substitutable ? `, ${c.substitutable} from substituters (${human(f.downloadBytes)} to download)` : ""}${maybe}`];
  const shown = f.nodes.filter((n) => all || n.state !== "cached");
  const width = Math.max(0, ...shown.map((n) => n.name.length));
  for (const n of shown) {
    const e = n.state === "substitutable"
      ? (n.downloadBytes !== undefined ? `  ↓ ${human(n.downloadBytes)}` : "")
      : n.estimateMs === undefined ? (n.state === "cached" ? "" : "  (no build recorded)") : `  ~${secs(n.estimateMs)}${n.exact ? "" : " (by its last version)"}`;
    out.push(`  ${LABEL[n.state].padEnd(6)} ${n.name.padEnd(width)}${e}`);
  }
  out.push(`estimated: ${secs(f.totalMs)} of build time, ${secs(f.criticalMs)} on the longest chain${f.unestimated ? `; ${f.unestimated} with no recorded duration` : ""}`);
  for (const [target, causes] of Object.entries(f.causes)) {
    out.push(`changed since the last realisation of ${target}:`);
    for (const cr of causes) {
      const [first, ...rest] = describeReport(cr, { relativeTo });
      out.push(`  [${cr.id}] ${first}`);
      for (const l of rest) out.push(`      ${l}`);
    }
  }
  return out;
}

export async function printForecast(ctx: Ctx, entry: string, targets: string[], json: boolean | undefined, seal: boolean): Promise<void> {
  const f = await forecast(ctx, entry, targets, seal);
  if (json) process.stdout.write(JSON.stringify(f, null, 2) + "\n");
  else process.stdout.write(renderForecast(f, process.cwd(), false).join("\n") + "\n");
}

export const planVerb = storeVerb({
  command: "plan <targets..>",
  describe: "forecast a realize without building: what would be built, fetched or reused, the estimated time, and why",
  options: (y) => y
    .positional("targets", { type: "string", array: true, demandOption: true })
    .option("json", { type: "boolean", describe: "print the forecast as JSON" }),
  reporter: (argv) => argv.reporter ?? "quiet",
  run: (argv, ctx) => printForecast(ctx, recipesEntry(argv), argv.targets, argv.json, evalCacheOn(argv)),
});

export const planCommand = defineCommand(planVerb);
