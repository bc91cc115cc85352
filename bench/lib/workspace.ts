// Synthetic graphs on disk, with stores that already hold them (for no-op rows).
//
// A first build of a trivial derivation costs a sandbox start-up (tens to hundreds of ms here,
// in Kiln and Nix alike), so a 10k-node graph takes many minutes to build. The generated files
// and the populated Kiln store, Nix store and ninja outputs are therefore kept in the cache
// directory between runs. Each run still starts with a real `realize` (and nix-build, ninja) of
// the graph: it is a no-op when the cache is complete, and a genuine first build (timed and
// reported as such) when the cache is new or the engine's hashing changed.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Bench } from "./context.js";
import { derivationCount, FAN_IN, kilnRecipe, ninjaFile, nixExpr, sizeLabel, type Shape } from "./graphs.js";
import type { NixEnv } from "./nix.js";
import { runUnchecked } from "./proc.js";

export interface FirstBuild {
  tool: string;
  ms: number;
  /** derivations actually built (the rest were already there) */
  built: number;
  /** when the populating run started */
  at: string;
  /** -j it ran with */
  jobs: number;
  note?: string;
}

export interface GraphDir {
  shape: Shape;
  n: number;
  label: string;
  drvs: number;
  dir: string;
  recipe: string;
  kilnStore: string;
  ninjaDir: string;
  nixFile: string;
  nixStore: string;
  /** first builds done by this run while populating */
  firstBuilds: FirstBuild[];
  /** every first build recorded in the cache, by this run or earlier ones */
  recorded: FirstBuild[];
  /** why `kiln realize` could not produce the graph's root, if it could not */
  kilnBroken?: string;
  /** why ninja cannot build the graph, if it cannot (no ninja anchor then) */
  ninjaBroken?: string;
  /** why Nix's store does not hold the whole graph, if it does not (no Nix no-op row then) */
  nixMissing?: string;
}

/** Write a file only when its content differs (keeps mtimes, so Kiln's bundle cache stays warm). */
export function writeIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, "utf8") === text) return;
  writeFileSync(path, text);
}

export function graphDir(b: Bench, shape: Shape, n: number): GraphDir {
  const dir = join(b.cache, "graphs", `${shape}-${n}`);
  const ninjaDir = join(dir, "ninja");
  mkdirSync(ninjaDir, { recursive: true });
  const g: GraphDir = {
    shape, n, label: `${shape} ${sizeLabel(n)}`, drvs: derivationCount(shape, n), dir,
    recipe: join(dir, "kiln.ts"), kilnStore: join(dir, "kiln-store"), ninjaDir,
    nixFile: join(dir, "graph.nix"), nixStore: join(dir, "nix-store"), firstBuilds: [], recorded: [],
  };
  const metaFile = join(dir, "first-builds.json");
  if (existsSync(metaFile)) g.recorded = JSON.parse(readFileSync(metaFile, "utf8")) as FirstBuild[];
  writeIfChanged(g.recipe, kilnRecipe(shape, n));
  writeIfChanged(join(ninjaDir, "build.ninja"), ninjaFile(shape, n));
  writeIfChanged(g.nixFile, nixExpr(shape, n));
  return g;
}

/** `kiln realize root` of the graph into `store`, as a first build runs it (-j: --jobs). */
export function kilnBuildArgv(b: Bench, g: GraphDir, store: string): string[] {
  return [...b.kiln, "--store", store, "-f", g.recipe, "-j", String(b.opts.populateJobs), "--reporter", "quiet", "realize", "root", "--no-link"];
}

/** `nix-build -A attr` of the graph into `store`, as a first build runs it (-j: --jobs, one core a build). */
export function nixBuildArgv(b: Bench, nix: NixEnv, g: GraphDir, store: string, attr = "root"): string[] {
  return [...nix.tool("nix-build", store), g.nixFile, "-A", attr, "--no-out-link", "--max-jobs", String(b.opts.populateJobs), "--cores", "1"];
}

/** Bring Kiln's store, ninja's outputs and (if available) Nix's store up to date with the graph. */
export function populate(b: Bench, g: GraphDir, withNix: boolean): void {
  const jobs = b.opts.populateJobs;
  const at = new Date().toISOString();

  b.log(`${g.label}: kiln realize (populating the store; a first build takes a while)`);
  const k = runUnchecked({
    argv: [...kilnBuildArgv(b, g, g.kilnStore), "--json"],
    capture: true, captureStderr: true, timeoutMs: 6 * 3600_000,
  });
  let summary: { built: number; cached: number; outputs: unknown[] } | undefined;
  try {
    summary = JSON.parse(k.stdout) as typeof summary;
  } catch {
    /* no summary: see below */
  }
  if (k.status !== 0 || !summary || summary.outputs.length !== 1) {
    // e.g. exit 0 with no outputs: a failure the CLI itself did not report
    const err = k.stderr.split("\n").map((l) => l.trim()).filter((l) => /Error|error:/.test(l)).slice(0, 2).join(" / ");
    g.kilnBroken = `\`kiln realize root\` exited ${k.status ?? k.signal} after ${(k.ms / 1000).toFixed(1)} s with ${summary ? `${summary.outputs.length} outputs, ${summary.built} built, ${summary.cached} cached` : "no JSON summary"}${err ? `; stderr: ${err.slice(0, 300)}` : ""}`;
    b.log(`${g.label}: KILN FAILED: ${g.kilnBroken}`);
  } else if (summary.built > 0) g.firstBuilds.push({ tool: "kiln", ms: k.ms, built: summary.built, at, jobs });

  b.log(`${g.label}: ninja (first build if new)`);
  const nj = runUnchecked({ argv: ["ninja", "-C", g.ninjaDir], capture: true, captureStderr: true });
  if (nj.status !== 0) {
    // ninja 1.11 overflows its stack (SIGSEGV) scanning a 100k-deep chain: an anchor that fails
    // is reported, and Kiln's rows still stand
    g.ninjaBroken = `ninja exited ${nj.signal ?? (nj.status === 139 ? "139 (SIGSEGV)" : nj.status)} on this graph${nj.stderr.trim() ? `: ${nj.stderr.trim().split("\n").pop()}` : ""}`;
    b.log(`${g.label}: ${g.ninjaBroken}`);
  } else if (!/no work to do/.test(nj.stdout)) g.firstBuilds.push({ tool: "ninja", ms: nj.ms, built: g.drvs, at, jobs: 0 });

  if (withNix && b.nix && g.kilnBroken) {
    // filling Nix's store with a graph Kiln cannot realize costs an hour here and yields no ratio
    g.nixMissing = "Kiln failed on this graph, so its Nix store was not filled";
  } else if (withNix && b.nix && g.drvs > b.opts.nixBuildMax) {
    g.nixMissing = `Nix's store was not filled by building (${g.drvs} derivations > --nix-build-max ${b.opts.nixBuildMax}; raise it to fill Nix's store by building, a first build of every derivation)`;
  } else if (withNix && b.nix) {
    fillNix(b, g, b.nix, at, jobs);
  }

  if (g.firstBuilds.length) {
    g.recorded.push(...g.firstBuilds);
    writeFileSync(join(g.dir, "first-builds.json"), JSON.stringify(g.recorded, null, 2));
  }
}

/**
 * Fill Nix's store with the graph. One `nix-build -A root` for graphs up to CHUNKED_ABOVE
 * derivations. Above that, Nix 2.8's scheduler slows down with the number of goals (a 10k-wide
 * graph advanced at ~8 s per derivation here, a 10k chain at ~1 s: hours), so the graph is built
 * in stretches: a wide one group (100 leaves) per invocation, a deep one CHAIN_STRETCH nodes per
 * invocation, then the root; the first-build row says so.
 */
const CHUNKED_ABOVE = 2000;
const CHAIN_STRETCH = 1000;

function fillNix(b: Bench, g: GraphDir, nix: NixEnv, at: string, jobs: number): void {
  const steps = g.drvs <= CHUNKED_ABOVE ? ["root"]
    : g.shape === "wide" ? [...Array.from({ length: Math.ceil(g.n / FAN_IN) }, (_, i) => `groups.${i}`), "root"]
    : [...Array.from({ length: Math.ceil(g.n / CHAIN_STRETCH) - 1 }, (_, i) => `nodes.${(i + 1) * CHAIN_STRETCH - 1}`), "root"];
  const dry = runUnchecked({ argv: [...nix.tool("nix-build", g.nixStore), g.nixFile, "-A", "root", "--dry-run"], env: nix.env, capture: true, captureStderr: true });
  if (dry.status === 0 && !/will be built/.test(dry.stderr)) return; // complete already
  b.log(`${g.label}: nix-build (populating the Nix store${steps.length > 1 ? `, ${steps.length} invocations` : ""})`);
  let ms = 0;
  let built = 0;
  for (const attr of steps) {
    const nx = runUnchecked({
      argv: nixBuildArgv(b, nix, g, g.nixStore, attr),
      env: nix.env, capture: true, captureStderr: true, timeoutMs: 6 * 3600_000,
    });
    if (nx.status !== 0) {
      // e.g. Nix's evaluator overflowing its stack on a 100k-deep chain: the no-op and eval rows report it
      g.nixMissing = `nix-build -A ${attr} failed: ${nx.stderr.trim().split("\n").slice(-1)[0]}`;
      b.log(`${g.label}: ${g.nixMissing}`);
      return;
    }
    ms += nx.ms;
    const m = /these (\d+) derivations will be built/.exec(nx.stderr) ?? (/this derivation will be built/.test(nx.stderr) ? ["", "1"] : undefined);
    if (m) built += Number(m[1]);
  }
  if (built > 0) {
    g.firstBuilds.push({ tool: "nix-build", ms, built, at, jobs, ...(steps.length > 1 ? { note: `in ${steps.length} nix-build invocations (${g.shape === "wide" ? "one per group" : `${CHAIN_STRETCH} nodes each`}, then the root)` } : {}) });
  }
}
