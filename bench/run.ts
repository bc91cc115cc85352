// Kiln benchmarks: `npm run bench [-- options]`. Every figure is a ratio against an anchor measured
// in the same run on the same machine (ninja, `node -e 0`, Nix, b3sum). See bench/README.md.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { homedir, availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { Bench, BenchOptions } from "./lib/context.js";
import { probeNix } from "./lib/nix.js";
import { haveGnuTime, removeTree, version, which } from "./lib/proc.js";
import { Report } from "./lib/report.js";
import { gcSuite } from "./suites/gc.js";
import { graphSuites } from "./suites/graphs.js";
import { hashSuite } from "./suites/hash.js";
import { schedSuite } from "./suites/sched.js";
import { cacheSuite } from "./suites/cache.js";
import type { GraphDir } from "./lib/workspace.js";

const HELP = `usage: npm run bench -- [options]

  --quick            1k graphs only, a part of the kernel tree, short sleep graph: < 2 min once
                     the cached stores exist (the first run also builds them)
  --sizes 1000,10000 graph sizes for the no-op and evaluation rows (default 1000,10000;
                     --quick: 1000). 100000 is accepted: a first build of 100k takes 17-25 min
                     on a 2-core host, so measure it apart (README: "100k")
  --shapes deep,wide graph shapes (default both)
  --graphs LIST      exactly these graphs instead, e.g. deep-1000,wide-1000,wide-10000
  --runs N           timed runs per figure (default 5, --quick 3)
  --only LIST        sections: noop,eval,hash,sched,gc,cache (default all); "populate" only fills
                     the cached stores for --sizes (a first build of 10k: 1-2 min per tool, Nix's
                     chunked one longer; earlier, slower hosts: up to an hour);
                     with eval alone no store is filled (evaluation needs none)
  --out FILE         JSON results (default bench/results/<date>.json)
  --cache DIR        keeps generated graphs, populated stores, the unpacked kernel tree
                     (default $KILN_BENCH_CACHE or <tmpdir>/kiln-bench-cache)
  --jobs N           -j for the first builds that populate the stores (default: cores)
  --first-build-runs N  first builds of each 1k graph into fresh stores, Kiln's and Nix's in turn,
                     for the first-build goals (default 3, --quick 2; 0: only the populating build,
                     measured once)
  --nix-build-max N  fill Nix's store by building only for graphs of at most N derivations
                     (default 20000: Nix's first build is 10-20 ms per derivation on a fast 2-core
                     host, ~70 ms on a slow one, and chunked above 2000);
                     above it the Nix no-op and gc rows are skipped, nix-instantiate still runs
  --tree DIR         hash this tree instead of the kernel source
  --pi4-store DIR    a store in which pi4-llm-os is realized, for its no-op row (default: the
                     default store, where \`npm run demo\` puts it); the row is skipped otherwise
  --no-nix           do not use Nix even if it is installed
  --build            run \`npm run build\` first (the CLI measured is dist/kiln.cjs)
`;

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function options(): BenchOptions & { out: string | undefined; cache: string; nix: boolean; build: boolean } {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      sizes: { type: "string" },
      shapes: { type: "string" },
      graphs: { type: "string" },
      runs: { type: "string" },
      only: { type: "string" },
      out: { type: "string" },
      cache: { type: "string" },
      jobs: { type: "string" },
      "nix-build-max": { type: "string" },
      "first-build-runs": { type: "string" },
      tree: { type: "string" },
      "pi4-store": { type: "string" },
      "no-nix": { type: "boolean", default: false },
      build: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const quick = values.quick;
  const list = (s: string | undefined) => (s ? s.split(",").map((x) => x.trim()).filter(Boolean) : undefined);
  const sizes = (list(values.sizes) ?? (quick ? ["1000"] : ["1000", "10000"])).map((x) => Number(x.replace(/k$/i, "000")));
  if (sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error(`--sizes: give integers >= 2, got ${values.sizes}`);
  const shapes = (list(values.shapes) ?? ["deep", "wide"]) as Array<"deep" | "wide">;
  if (shapes.some((s) => s !== "deep" && s !== "wide")) throw new Error(`--shapes: deep and/or wide, got ${values.shapes}`);
  let graphs = sizes.flatMap((n) => shapes.map((shape) => ({ shape, n })));
  if (values.graphs) {
    graphs = list(values.graphs)!.map((x) => {
      const m = /^(deep|wide)-(\d+)k?$/i.exec(x);
      if (!m) throw new Error(`--graphs: give shape-N, e.g. deep-1000 or wide-10k, got ${x}`);
      return { shape: m[1]!.toLowerCase() as "deep" | "wide", n: Number(m[2]) * (/k$/i.test(x) ? 1000 : 1) };
    });
  }
  const only = list(values.only);
  return {
    quick,
    graphs,
    runs: values.runs ? Number(values.runs) : quick ? 3 : 5,
    populateJobs: values.jobs ? Number(values.jobs) : availableParallelism(),
    nixBuildMax: values["nix-build-max"] ? Number(values["nix-build-max"].replace(/k$/i, "000")) : 20_000,
    firstBuildRuns: values["first-build-runs"] !== undefined ? Number(values["first-build-runs"]) : quick ? 2 : 3,
    only: only ? new Set(only) : undefined,
    hashTree: values.tree ? resolve(values.tree) : undefined,
    pi4Store: resolve(values["pi4-store"] ?? process.env.KILN_STORE ?? join(process.env.XDG_DATA_HOME || join(homedir(), ".local", "share"), "kiln")),
    out: values.out ? resolve(values.out) : undefined,
    cache: resolve(values.cache ?? process.env.KILN_BENCH_CACHE ?? join(tmpdir(), "kiln-bench-cache")),
    nix: !values["no-nix"],
    build: values.build,
  };
}

function git(args: string[]): string | undefined {
  const r = spawnSync("git", args, { cwd: REPO, encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Newest mtime of the engine's sources: if newer than dist/kiln.cjs, the bundle is stale. */
function newestSource(): { file: string; mtime: number } {
  let best = { file: "", mtime: 0 };
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) {
        const m = statSync(p).mtimeMs;
        if (m > best.mtime) best = { file: p, mtime: m };
      }
    }
  };
  for (const d of ["engine", "store", "cli"]) walk(join(REPO, d));
  return best;
}

async function main(): Promise<void> {
  const o = options();
  const started = new Date();
  const log = (msg: string) => process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0).padStart(4)}s] ${msg}\n`);

  if (o.build || !existsSync(join(REPO, "dist", "kiln.cjs"))) {
    log("npm run build");
    const r = spawnSync("npm", ["run", "build"], { cwd: REPO, stdio: "inherit" });
    if (r.status !== 0) throw new Error("npm run build failed");
  }
  const dist = join(REPO, "dist", "kiln.cjs");
  const distMtime = statSync(dist).mtimeMs;
  const newest = newestSource();
  const stale = newest.mtime > distMtime;

  mkdirSync(o.cache, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), "kiln-bench-"));
  const report = new Report((s) => process.stdout.write(s));
  const b: Bench = {
    opts: o, repo: REPO, kiln: [dist], cache: o.cache, tmp, report, log,
    nix: undefined, nixMissing: undefined,
  };
  const missing = ["ninja", "node"].filter((t) => !which(t));
  if (missing.length) throw new Error(`missing tools: ${missing.join(", ")} (apt-get install -y ninja-build)`);
  if (!haveGnuTime()) report.notes.push("GNU time (/usr/bin/time) is missing: no peak-memory figures");

  if (o.nix) {
    log("probing Nix (a trivial build in a throwaway --store)");
    const p = probeNix(join(tmp, "nix"));
    if (p.ok) b.nix = p.nix;
    else b.nixMissing = p.reason;
  } else b.nixMissing = "disabled with --no-nix";

  const head = git(["rev-parse", "--short", "HEAD"]);
  const dirty = git(["status", "--porcelain", "--", "engine", "store", "cli"]);
  const meta = {
    date: started.toISOString(),
    mode: o.quick ? "quick" : "full",
    host: { cpus: cpus().length, model: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1), kernel: release(), node: process.version, loadavgAtStart: loadavg() },
    kiln: {
      cli: dist, gitHead: head, engineDirty: Boolean(dirty), distBuiltAt: new Date(distMtime).toISOString(),
      distStale: stale ? `${newest.file.slice(REPO.length + 1)} is newer than dist/kiln.cjs (pass --build)` : false,
    },
    anchors: {
      ninja: version(["ninja", "--version"]),
      node: process.version,
      b3sum: which("b3sum") ? version(["b3sum", "--version"]) : undefined,
      nix: b.nix?.version ?? `unavailable: ${b.nixMissing}`,
    },
    options: { ...o, only: o.only ? [...o.only] : undefined },
  };
  process.stdout.write(`Kiln benchmarks (${meta.mode}) ${meta.date}\n`);
  process.stdout.write(`host: ${meta.host.cpus} cpus (${meta.host.model}), ${meta.host.memGiB} GiB, Linux ${meta.host.kernel}, node ${process.version}, load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}\n`);
  process.stdout.write(`kiln: ${dist} (git ${head ?? "?"}${dirty ? ", engine has uncommitted changes" : ""}; built ${meta.kiln.distBuiltAt})\n`);
  if (stale) process.stdout.write(`WARNING: ${meta.kiln.distStale}: the figures are for the bundle as built\n`);
  process.stdout.write(`anchors: ninja ${meta.anchors.ninja}; ${meta.anchors.b3sum ?? "no b3sum"}; ${meta.anchors.nix}\n`);
  process.stdout.write(`timing: wall time of the whole process, median of ${o.runs} runs (fewer where noted), round-robin with the anchors, after the set-up runs that warm every cache; [min - max]\n`);

  const want = (s: string) => !o.only || o.only.has(s);
  let graphs: GraphDir[] = [];
  const sections: Array<[string[], () => void | Promise<void>]> = [
    [["noop", "eval", "populate", "gc"], async () => { graphs = await graphSuites(b); }],
    [["hash"], () => hashSuite(b)],
    [["sched"], () => schedSuite(b)],
    [["gc"], () => gcSuite(b, graphs)],
    [["cache"], () => cacheSuite(b)],
  ];
  const failures: string[] = [];
  try {
    for (const [names, fn] of sections) {
      if (!names.some(want)) continue;
      try {
        await fn();
      } catch (e) {
        // one broken section should not lose the others' figures
        const msg = `${names.join("/")}: ${(e as Error).message}`;
        failures.push(msg);
        report.note(`section failed: ${msg}`);
      }
    }
  } finally {
    removeTree(tmp);
  }

  const goals = report.rows.flatMap((r) => (r.goals ?? []).map((g) => ({ case: `${r.section} / ${r.case}`, ...g })));
  if (goals.length) {
    process.stdout.write("\n== Goals ==\n");
    for (const g of goals) process.stdout.write(`   ${g.met ? "MET    " : "NOT MET"}  ${g.text}: ${g.actual}   [${g.case}]\n`);
  }
  const finished = new Date();
  const result = {
    ...meta,
    finished: finished.toISOString(),
    durationS: Math.round((finished.getTime() - started.getTime()) / 1000),
    loadavgAtEnd: loadavg(),
    rows: report.rows,
    goals,
    skipped: report.skipped,
    notes: report.notes,
    failures,
  };
  const out = o.out ?? join(REPO, "bench", "results", `${started.toISOString().replace(/:/g, "-").replace(/\..*$/, "")}${o.quick ? "-quick" : ""}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  process.stdout.write(`\n${report.rows.length} rows in ${result.durationS} s; load average at end ${loadavg().map((x) => x.toFixed(2)).join(" ")}; JSON: ${out}\n`);
  if (failures.length) process.exitCode = 1;
}

await main();
