// Rows 1 and 2: no-op realize and evaluation of the synthetic graphs, each against its anchors.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runSandboxed, storeViewOf } from "../../engine/builders/sandbox.js";
import { NODE_START, type Bench } from "../lib/context.js";
import { measureRoundRobin, summarize, type Contender, type Series } from "../lib/measure.js";
import { removeTree, runUnchecked, which } from "../lib/proc.js";
import { parseEvents, phases } from "../lib/kiln.js";
import type { Goal, Ratio, Row } from "../lib/report.js";
import { graphDir, kilnBuildArgv, nixBuildArgv, populate, type GraphDir } from "../lib/workspace.js";
import { fmtNum } from "../lib/report.js";

const NOOP = "1. No-op realize";
const EVAL = "2. Evaluation + hashing";
const FIRST = "1b. First build (populating the stores)";
const FIRST_AGAIN = "1c. First build, repeated";

function runsFor(b: Bench, n: number): number {
  return n >= 100_000 ? Math.min(3, b.opts.runs) : b.opts.runs;
}

function mib(s: Series): number | undefined {
  return s.rssKb.length ? summarize(s.rssKb).median / 1024 : undefined;
}

/** Try a command once before timing it; a failing anchor becomes a skip with its reason. */
function works(b: Bench, c: Contender, what: string): boolean {
  c.before?.();
  const r = runUnchecked(c.cmd);
  c.after?.(r);
  if (r.status === 0) return true;
  const why = (r.stderr || r.stdout).trim().split("\n").filter(Boolean).slice(-2).join(" / ") || `exit ${r.status}`;
  b.report.skip(what, `failed here: ${why.slice(0, 300)}`);
  return false;
}

/** Rows 1, 1b and 2; returns the populated graphs (the gc rows collect their stores). */
export async function graphSuites(b: Bench): Promise<GraphDir[]> {
  const graphs: GraphDir[] = [];
  for (const { shape, n } of b.opts.graphs) graphs.push(graphDir(b, shape, n));

  const wantNoop = !b.opts.only || b.opts.only.has("noop");
  const wantEval = !b.opts.only || b.opts.only.has("eval");
  // evaluation needs no filled store: `--only eval` measures graphs nobody has built (100k)
  const needStores = !b.opts.only || ["noop", "populate", "gc"].some((s) => b.opts.only!.has(s));
  if (needStores) for (const g of graphs) populate(b, g, Boolean(b.nix));

  await firstBuildRows(b, graphs);
  if (needStores) firstBuildsAgain(b, graphs);
  if (wantNoop) {
    b.report.section(NOOP, "whole-process wall time of a realize whose every output is already in the store", "ms");
    for (const g of graphs) noop(b, g);
    pi4Noop(b);
  }
  if (wantEval) {
    b.report.section(EVAL, "`kiln eval` (load recipes, evaluate, hash every derivation) vs `nix-instantiate` (both warm: bundle cache / .drv files present)", "ms");
    const evals = new Map<GraphDir, { kiln: number; nix?: number }>();
    for (const g of graphs) evals.set(g, evaluation(b, g));
    marginalRows(b, evals);
    for (const g of graphs) editToPlan(b, g);
    pi4Eval(b);
  }
  return graphs;
}

/**
 * First builds happen only when a store is new, so most runs have none of their own: rows then
 * come from the record the populating run left in the cache, marked with its date. Kiln and Nix
 * are compared only when both builds come from the same populating run, of the whole graph.
 */
async function firstBuildRows(b: Bench, graphs: GraphDir[]): Promise<void> {
  const shown = graphs.filter((g) => g.recorded.some((f) => f.tool === "kiln" && f.built === g.drvs));
  if (!shown.length) return;
  b.report.section(FIRST, "a build of the whole graph into an empty store, measured once when the cached store was filled (not a median)", "s");
  for (const g of shown) {
    const k = [...g.recorded].reverse().find((f) => f.tool === "kiln" && f.built === g.drvs)!;
    const thisRun = g.firstBuilds.includes(k);
    const same = (tool: string) => g.recorded.find((f) => f.tool === tool && f.at === k.at);
    const nx = same("nix-build");
    const nj = same("ninja");
    for (const f of [k, nx, nj]) {
      if (!f) continue;
      const row: Row = {
        section: FIRST, case: `${g.label} (${g.drvs} drvs)`, tool: f.tool, unit: "s",
        time: { median: f.ms, min: f.ms, max: f.ms, n: 1 },
        note: `${f.built} built, ${fmtNum(f.ms / Math.max(1, f.built))} ms per derivation${f.jobs ? `, -j${f.jobs}` : ""}${f.note ? `, ${f.note}` : ""}${thisRun ? ", in this run" : `, recorded by the run of ${f.at}`}`,
      };
      if (f === k && nx && nx.built === k.built) {
        row.ratios = [{ anchor: "nix-build", value: k.ms / nx.ms }];
        // the goal goes with the repeated builds' medians (1c) when they run
        if (g.n === 1000 && !repeats(b, g)) row.goals = [firstBuildGoal(g, k.ms / nx.ms)];
      }
      b.report.add(row);
    }
    const floor = await sandboxFloor(b);
    if (floor) {
      const kilnPer = k.ms / Math.max(1, k.built);
      b.report.add({
        section: FIRST, case: `${g.label} (${g.drvs} drvs)`, tool: "sandbox alone", unit: "s",
        time: { median: floor * g.drvs, min: floor * g.drvs, max: floor * g.drvs, n: 1 },
        note: `a trivial build in a fresh sandbox, started as Kiln starts one (runSandboxed; store view: ${floorView}), ${SANDBOX_STARTS} times in sequence in this run: ${fmtNum(floor)} ms each, ` +
          `x ${g.drvs} derivations; Kiln's first build took ${fmtNum(kilnPer)} ms per derivation${k.jobs ? ` at -j${k.jobs}` : ""}`,
      });
    }
  }
}

/** The goal of a 1k graph's first build: a chain pays each sandbox start in sequence; the wide graph overlaps them. */
function firstBuildGoal(g: GraphDir, ratio: number): Goal {
  const limit = g.shape === "deep" ? 0.5 : 0.3;
  return { text: `first build of the 1k ${g.shape === "deep" ? "chain" : "wide graph"} at most ${limit}x Nix's`, actual: `${ratio.toFixed(2)}x`, met: ratio <= limit };
}

/** Whether the graph's first build is repeated (1c): the 1k graphs, with Nix, both filled in this run or before. */
function repeats(b: Bench, g: GraphDir): boolean {
  return b.opts.firstBuildRuns > 0 && g.n === 1000 && Boolean(b.nix) && !g.kilnBroken && !g.nixMissing;
}

/**
 * The populating build happens once per cached store, and a single sample moves with the host
 * (Nix's own chain time ranged over 2x between runs here): the 1k graphs are built again, each time
 * into a fresh store, Kiln's and Nix's in turn (round-robin, the store removed before each
 * build and the disk synced), and the goals are read off the medians.
 */
function firstBuildsAgain(b: Bench, graphs: GraphDir[]): void {
  const gs = graphs.filter((g) => repeats(b, g));
  if (!gs.length || !b.nix) return;
  const nix = b.nix;
  b.report.section(FIRST_AGAIN, `a build of the whole graph into a fresh, empty store, ${b.opts.firstBuildRuns} times, Kiln's and Nix's in turn; median [min - max]`, "s");
  const j = String(b.opts.populateJobs);
  for (const g of gs) {
    const kStore = join(b.tmp, `first-${g.label}-kiln`);
    const nStore = join(b.tmp, `first-${g.label}-nix`);
    const fresh = (dir: string) => () => {
      removeTree(dir);
      runUnchecked({ argv: ["sync"] });
    };
    const contenders: Contender[] = [
      { key: "kiln", cmd: { argv: kilnBuildArgv(b, g, kStore) }, before: fresh(kStore) },
      { key: "nix-build", cmd: { argv: nixBuildArgv(b, nix, g, nStore), env: nix.env }, before: fresh(nStore) },
    ];
    b.log(`${g.label}: first build x ${b.opts.firstBuildRuns}, kiln and nix-build in turn`);
    const res = measureRoundRobin(contenders, { runs: b.opts.firstBuildRuns, warmup: 0 });
    removeTree(kStore);
    removeTree(nStore);
    const k = summarize(res.get("kiln")!.ms);
    const n = summarize(res.get("nix-build")!.ms);
    const caseName = `${g.label} (${g.drvs} drvs)`;
    const per = (ms: number) => fmtNum(ms / g.drvs);
    b.report.add({
      section: FIRST_AGAIN, case: caseName, tool: "kiln", unit: "s", time: k,
      ratios: [{ anchor: "nix-build", value: k.median / n.median }], goals: [firstBuildGoal(g, k.median / n.median)],
      note: `${per(k.median)} ms per derivation (${per(k.min)}-${per(k.max)}), -j${j}`,
    });
    b.report.add({ section: FIRST_AGAIN, case: caseName, tool: "nix-build", unit: "s", time: n, note: `${per(n.median)} ms per derivation (${per(n.min)}-${per(n.max)}), -j${j}` });
  }
}

const SANDBOX_STARTS = 200;
let floorMs: number | null | undefined;
let floorView = "";

/**
 * What one sandboxed build of a trivial derivation costs with nothing of Kiln around it but the
 * sandbox: `echo i > $out` started by the function Kiln's builder calls (runSandboxed: the
 * scratch layout, bubblewrap's options, kiln's sandbox server where it is built), in sequence,
 * without scheduling, logs or registration, each in a sandbox made for it then. Kiln's builder
 * makes the next build's sandbox while one runs (SandboxBuilder), so a chain's builds can cost
 * less than this; measured once per run.
 */
async function sandboxFloor(b: Bench): Promise<number | undefined> {
  if (floorMs !== undefined) return floorMs ?? undefined;
  floorMs = null;
  const bwrap = which("bwrap");
  const sh = which("sh");
  if (!bwrap || !sh) return undefined;
  const dir = join(b.tmp, "sandbox-floor");
  let total = 0;
  // the store view Kiln's builds get here (an overlay in a namespace of its own, or bind mounts)
  // laid out as a store is: <root>/store beside <root>/tmp/<scratch>
  const storeDir = join(dir, "store");
  mkdirSync(storeDir, { recursive: true });
  const view = storeViewOf(bwrap, storeDir, () => join(dir, "tmp", "probe"));
  floorView = view.kind === "overlay" ? `overlay, ${Array.isArray(view.start) ? "unshare and mount for each build" : "kiln's sandbox server"}` : `bind mounts, since ${view.why}`;
  const signal = new AbortController().signal;
  for (let i = 0; i < SANDBOX_STARTS; i++) {
    const scratch = join(dir, "tmp", `b${i}`);
    const out = "/kiln/store/00000000000000000000000000000000-floor";
    let output = "";
    const started = process.hrtime.bigint();
    mkdirSync(scratch);
    const r = await runSandboxed(bwrap, {
      builder: "/kiln/host/bin/sh", args: ["-e", "-u", "-c", `echo ${i} > $out`], env: { out },
      inputs: [], tools: { sh }, network: false, scratch, storeDir, buildCores: 1, view,
    }, (c) => (output += c.toString()), signal).catch((e: Error) => ({ exitCode: -1, signal: null, outDir: "", error: e.message }));
    total += Number(process.hrtime.bigint() - started) / 1e6;
    removeTree(scratch);
    if (r.exitCode !== 0) {
      b.report.skip("sandbox alone", `the sandbox failed here: ${("error" in r ? r.error : output).trim().slice(0, 200)}`);
      return undefined;
    }
  }
  removeTree(dir);
  floorMs = total / SANDBOX_STARTS;
  return floorMs;
}

function noop(b: Bench, g: GraphDir): void {
  const kilnArgv = [...b.kiln, "--store", g.kilnStore, "-f", g.recipe, "realize", "root", "--no-link"];
  const contenders: Contender[] = [
    { key: "kiln", cmd: { argv: kilnArgv } },
    // the whole graph walk, as when a recipe file's stat changed but its content did not
    { key: "kiln --no-eval-cache", cmd: { argv: [...kilnArgv, "--no-eval-cache"] } },
    ...(g.ninjaBroken ? [] : [{ key: "ninja", cmd: { argv: ["ninja", "-C", g.ninjaDir] } }]),
    { key: "node -e 0", cmd: NODE_START },
  ];
  const caseName = `${g.label} (${g.drvs} drvs)`;
  if (g.kilnBroken) {
    // the anchors are still measured, so the row shows what Kiln would have to match
    b.report.skip(`kiln no-op, ${g.label}`, `KILN FAILED: ${g.kilnBroken}`);
    contenders.splice(0, 2);
  }
  if (b.nix && g.nixMissing) b.report.skip(`nix-build no-op, ${g.label}`, g.nixMissing);
  else if (b.nix) {
    const c: Contender = { key: "nix-build", cmd: { argv: [...b.nix.tool("nix-build", g.nixStore), g.nixFile, "-A", "root", "--no-out-link"], env: b.nix.env } };
    if (works(b, c, `nix-build no-op, ${g.label}`)) contenders.push(c);
  } else b.report.skip(`nix-build no-op, ${g.label}`, b.nixMissing ?? "Nix unavailable");

  b.log(`no-op ${g.label}: ${contenders.map((c) => c.key).join(", ")} x ${runsFor(b, g.n)}`);
  // one warm-up round: populate() ran every tool on this graph, but kiln writes its no-op record
  // only when the recipe files are older than the realize that evaluated them
  const res = measureRoundRobin(contenders, { runs: runsFor(b, g.n), warmup: 1 });
  if (g.kilnBroken) {
    const goals: Goal[] = g.n >= 10_000 ? [{ text: "no-op at or below ninja from 10k up", actual: "kiln failed", met: false }] : [];
    goals.push({ text: "no-op within 15 ms of `node -e 0` (1k, 10k, 100k)", actual: "kiln failed", met: false });
    b.report.add({ section: NOOP, case: caseName, tool: "kiln: FAILED", command: kilnArgv.join(" "), unit: "ms", goals });
    for (const c of contenders) b.report.add({ section: NOOP, case: caseName, tool: c.key, command: c.cmd.argv.join(" "), unit: "ms", time: summarize(res.get(c.key)!.ms), rssMiB: mib(res.get(c.key)!) });
    return;
  }

  // one more kiln run with the JSON reporter, untimed, to split its time into phases
  const pr = runUnchecked({ argv: [...b.kiln, "--store", g.kilnStore, "-f", g.recipe, "--reporter", "json", "realize", "root", "--no-link"], captureStderr: true });
  const ph = phases(parseEvents(pr.stderr), pr.startedAt, pr.endedAt);

  const k = summarize(res.get("kiln")!.ms);
  const ratios: Ratio[] = [];
  const goals: Goal[] = [];
  const anchors = contenders.filter((c) => !c.key.startsWith("kiln"));
  for (const c of anchors) ratios.push({ anchor: c.key, value: k.median / summarize(res.get(c.key)!.ms).median });
  if (g.ninjaBroken) b.report.skip(`ninja no-op, ${g.label}`, g.ninjaBroken);
  const ninja = g.ninjaBroken ? undefined : summarize(res.get("ninja")!.ms).median;
  const node = summarize(res.get("node -e 0")!.ms).median;
  if (g.n >= 10_000 && ninja !== undefined) goals.push({ text: "no-op at or below ninja from 10k up", actual: `${(k.median / ninja).toFixed(2)}x ninja`, met: k.median <= ninja });
  goals.push({ text: "no-op within 15 ms of `node -e 0` (1k, 10k, 100k)", actual: `${k.median >= node ? "+" : "-"}${fmtNum(Math.abs(k.median - node))} ms`, met: k.median - node <= 15 });
  b.report.add({
    section: NOOP, case: caseName, tool: "kiln", command: kilnArgv.join(" "), unit: "ms", time: k, rssMiB: mib(res.get("kiln")!), ratios, goals,
    note: ph ? `one run split by kiln's events: start-up ${fmtNum(ph.startupMs)} ms, evaluate ${fmtNum(ph.evalMs)} ms, plan+realize ${fmtNum(ph.realizeMs)} ms, exit ${fmtNum(ph.exitMs)} ms` : undefined,
  });
  const walk = summarize(res.get("kiln --no-eval-cache")!.ms);
  b.report.add({
    section: NOOP, case: caseName, tool: "kiln --no-eval-cache", command: [...kilnArgv, "--no-eval-cache"].join(" "), unit: "ms", time: walk, rssMiB: mib(res.get("kiln --no-eval-cache")!),
    ratios: anchors.map((c) => ({ anchor: c.key, value: walk.median / summarize(res.get(c.key)!.ms).median })),
    note: "evaluates the recipes and walks the whole graph (what a touched but unchanged recipe file costs)",
  });
  for (const c of anchors) {
    b.report.add({ section: NOOP, case: caseName, tool: c.key, command: c.cmd.argv.join(" "), unit: "ms", time: summarize(res.get(c.key)!.ms), rssMiB: mib(res.get(c.key)!) });
  }
}

/** The real system: a no-op realize of pi4-llm-os in a store where `npm run demo` realized it. */
function pi4Noop(b: Bench): void {
  const entry = join(b.repo, "recipes", "index.ts");
  const argv = [...b.kiln, "--store", b.opts.pi4Store, "-f", entry, "realize", "pi4-llm-os", "--no-link"];
  const skip = (why: string) => b.report.skip("pi4-llm-os no-op", `${why}; not measured (realize it there first: npm run demo)`);
  if (!existsSync(join(b.opts.pi4Store, "db.sqlite"))) return skip(`no store at ${b.opts.pi4Store}`);
  // only if nothing would be built: the forecast first, then one untimed realize that must build nothing
  const plan = runUnchecked({ argv: [...b.kiln, "--store", b.opts.pi4Store, "-f", entry, "plan", "pi4-llm-os", "--json"], capture: true, timeoutMs: 120_000 });
  let toBuild = -1;
  try {
    const nodes = (JSON.parse(plan.stdout ?? "") as { nodes: Array<{ state: string }> }).nodes;
    toBuild = nodes.filter((n) => n.state === "build" || n.state === "unknown").length;
  } catch {
    return skip(`kiln plan failed in ${b.opts.pi4Store}`);
  }
  if (toBuild !== 0) return skip(`${toBuild} derivations of pi4-llm-os would be built in ${b.opts.pi4Store}`);
  const once = runUnchecked({ argv: [...argv.slice(0, -3), "--reporter", "json", ...argv.slice(-3)], captureStderr: true, timeoutMs: 120_000 });
  const fin = parseEvents(once.stderr ?? "").find((e) => e.type === "finished") as { built?: number } | undefined;
  if (once.status !== 0 || !fin || fin.built !== 0) return skip(`a realize of pi4-llm-os in ${b.opts.pi4Store} did not come out a no-op`);
  const contenders: Contender[] = [
    { key: "kiln", cmd: { argv } },
    { key: "kiln --no-eval-cache", cmd: { argv: [...argv, "--no-eval-cache"] } },
    { key: "node -e 0", cmd: NODE_START },
  ];
  b.log(`no-op pi4-llm-os: ${contenders.map((c) => c.key).join(", ")} x ${b.opts.runs}`);
  const res = measureRoundRobin(contenders, { runs: b.opts.runs, warmup: 1 });
  const node = summarize(res.get("node -e 0")!.ms);
  for (const c of contenders) {
    const t = summarize(res.get(c.key)!.ms);
    b.report.add({
      section: NOOP, case: "pi4-llm-os (real system)", tool: c.key, command: c.cmd.argv.join(" "), unit: "ms", time: t, rssMiB: mib(res.get(c.key)!),
      ...(c.key.startsWith("kiln") ? { ratios: [{ anchor: "node -e 0", value: t.median / node.median }] } : {}),
    });
  }
}

/**
 * The real system's evaluation: pi4-llm-os (its bootstrap seed is a few hundred fetch and unpack
 * derivations) evaluated whole, the recipe bundle warm, against starting Node. Needs no built
 * store. Its budget (the bootstrap-seed issue): within 10% of the evaluation before the seed.
 */
function pi4Eval(b: Bench): void {
  const store = join(b.tmp, "pi4-eval-store");
  const argv = [...b.kiln, "--store", store, "-f", join(b.repo, "recipes", "index.ts"), "eval", "pi4-llm-os", "--no-eval-cache"];
  const contenders: Contender[] = [
    { key: "kiln", cmd: { argv } },
    { key: "node -e 0", cmd: NODE_START },
  ];
  if (!works(b, contenders[0]!, "pi4-llm-os evaluation")) return;
  b.log(`eval pi4-llm-os: ${contenders.map((c) => c.key).join(", ")} x ${b.opts.runs}`);
  const res = measureRoundRobin(contenders, { runs: Math.max(b.opts.runs, 5), warmup: 1 });
  const node = summarize(res.get("node -e 0")!.ms);
  const k = summarize(res.get("kiln")!.ms);
  b.report.add({
    section: EVAL, case: "pi4-llm-os (real system, --no-eval-cache)", tool: "kiln", command: argv.join(" "), unit: "ms", time: k, rssMiB: mib(res.get("kiln")!),
    ratios: [{ anchor: "node -e 0", value: k.median / node.median }],
  });
  b.report.add({ section: EVAL, case: "pi4-llm-os (real system, --no-eval-cache)", tool: "node -e 0", command: "node -e 0", unit: "ms", time: node, rssMiB: mib(res.get("node -e 0")!) });
}

function evaluation(b: Bench, g: GraphDir): { kiln: number; nix?: number } {
  const kilnArgv = [...b.kiln, "--store", g.kilnStore, "-f", g.recipe, "eval", "root"];
  const contenders: Contender[] = [{ key: "kiln", cmd: { argv: kilnArgv } }];
  const nix = nixInstantiate(b, g);
  if (nix) contenders.push(nix);

  b.log(`eval ${g.label}: ${contenders.map((c) => c.key).join(", ")} x ${runsFor(b, g.n)}`);
  // warm already: the bundle cache is shared with realize (populate), nix-instantiate ran in works()
  const res = measureRoundRobin(contenders, { runs: runsFor(b, g.n), warmup: 0 });
  const k = summarize(res.get("kiln")!.ms);
  const caseName = `${g.label} (${g.drvs} drvs)`;
  const row: Row = { section: EVAL, case: caseName, tool: "kiln", command: kilnArgv.join(" "), unit: "ms", time: k, rssMiB: mib(res.get("kiln")!) };
  const nx = res.get("nix-instantiate");
  if (nx) {
    const r = k.median / summarize(nx.ms).median;
    row.ratios = [{ anchor: "nix-instantiate", value: r }];
  }
  b.report.add(row);
  if (nx) b.report.add({ section: EVAL, case: caseName, tool: "nix-instantiate", command: contenders[1]!.cmd.argv.join(" "), unit: "ms", time: summarize(nx.ms), rssMiB: mib(nx) });
  return { kiln: k.median, ...(nx ? { nix: summarize(nx.ms).median } : {}) };
}

/** nix-instantiate of the graph, once checked to work here (its .drv files written then); else a skip. */
const nixInstantiateOf = new Map<GraphDir, Contender | undefined>();
function nixInstantiate(b: Bench, g: GraphDir): Contender | undefined {
  if (nixInstantiateOf.has(g)) return nixInstantiateOf.get(g);
  let c: Contender | undefined;
  if (b.nix) {
    c = { key: "nix-instantiate", cmd: { argv: [...b.nix.tool("nix-instantiate", g.nixStore), g.nixFile, "-A", "root"], env: b.nix.env } };
    if (!works(b, c, `nix-instantiate, ${g.label}`)) c = undefined;
  } else b.report.skip(`nix-instantiate, ${g.label}`, b.nixMissing ?? "Nix unavailable");
  nixInstantiateOf.set(g, c);
  return c;
}

/**
 * What each derivation adds to an evaluation, start-up aside: the difference between two sizes of
 * one shape (1k and 10k) over the derivations between them, for Kiln and for nix-instantiate.
 */
function marginalRows(b: Bench, evals: Map<GraphDir, { kiln: number; nix?: number }>): void {
  for (const shape of ["deep", "wide"] as const) {
    const sized = [...evals].filter(([g]) => g.shape === shape).sort(([a], [c]) => a.drvs - c.drvs);
    if (sized.length < 2) continue;
    const [[small, s], [large, l]] = [sized[0]!, sized[sized.length - 1]!];
    const per = (a: number, c: number) => ((c - a) / (large.drvs - small.drvs)) * 1000;
    const kUs = per(s.kiln, l.kiln);
    const row: Row = {
      section: EVAL, case: `${shape}: us per derivation, ${small.label} to ${large.label}`, tool: "kiln", unit: "us",
      time: { median: kUs, min: kUs, max: kUs, n: 1 },
      note: `(median at ${large.drvs} - median at ${small.drvs}) / ${large.drvs - small.drvs}: evaluation's cost per derivation, start-up aside`,
    };
    const nUs = s.nix !== undefined && l.nix !== undefined ? per(s.nix, l.nix) : undefined;
    if (nUs !== undefined) {
      row.ratios = [{ anchor: "nix-instantiate", value: kUs / nUs }];
      row.goals = [{ text: "evaluation per derivation no slower than Nix's", actual: `${fmtNum(kUs)} us vs ${fmtNum(nUs)} us`, met: kUs <= nUs }];
    }
    b.report.add(row);
    if (nUs !== undefined) b.report.add({ section: EVAL, case: row.case, tool: "nix-instantiate", unit: "us", time: { median: nUs, min: nUs, max: nUs, n: 1 } });
  }
}

/**
 * Edit to plan: one file of a recipe set is edited and `kiln plan` tells what to build. The set
 * is the graph's file and one more (edit.ts) that puts a derivation on top of the graph's root;
 * each timed run writes edit.ts anew with another line, so every run follows a real edit (the
 * recipe bundle rebuilt, nothing answered from a record). Anchor: nix-instantiate of the graph,
 * which evaluates everything at every run anyway.
 */
function editToPlan(b: Bench, g: GraphDir): void {
  if (g.kilnBroken) return;
  const dir = join(g.dir, "edit");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "edit.ts");
  let edits = 0;
  const edit = () => {
    edits++;
    writeFileSync(file, `// generated by bench/suites/graphs.ts: edit ${edits}\nimport { derivation, sh } from "kiln";\nimport graph from ${JSON.stringify(g.recipe)};\n` +
      `export default { root: derivation({ name: "edited", hostTools: ["sh"], script: sh\`: \${graph.root}; echo ${edits} > $out\` }) };\n`);
  };
  const kilnArgv = [...b.kiln, "--store", g.kilnStore, "-f", file, "plan", "root"];
  const contenders: Contender[] = [{ key: "kiln", cmd: { argv: kilnArgv }, before: edit }];
  const nix = nixInstantiate(b, g);
  if (nix) contenders.push(nix);
  if (!works(b, contenders[0]!, `kiln plan after an edit, ${g.label}`)) return;
  b.log(`edit-to-plan ${g.label}: ${contenders.map((c) => c.key).join(", ")} x ${runsFor(b, g.n)}`);
  const res = measureRoundRobin(contenders, { runs: runsFor(b, g.n), warmup: 0 });
  const k = summarize(res.get("kiln")!.ms);
  const caseName = `${g.label} (${g.drvs + 1} drvs): edit one file, plan`;
  const row: Row = {
    section: EVAL, case: caseName, tool: "kiln", command: kilnArgv.join(" "), unit: "ms", time: k, rssMiB: mib(res.get("kiln")!),
    note: "a derivation on top of the graph, in a file of its own, changed before each run; the plan: 1 to build",
  };
  const nx = res.get("nix-instantiate");
  if (nx) {
    const r = k.median / summarize(nx.ms).median;
    row.ratios = [{ anchor: "nix-instantiate", value: r }];
    if (g.n >= 10_000) row.goals = [{ text: "edit-to-plan of a 10k set at most 0.5x nix-instantiate", actual: `${r.toFixed(2)}x`, met: r <= 0.5 }];
  }
  b.report.add(row);
  if (nx) b.report.add({ section: EVAL, case: caseName, tool: "nix-instantiate", command: contenders[1]!.cmd.argv.join(" "), unit: "ms", time: summarize(nx.ms), rssMiB: mib(nx) });
}
