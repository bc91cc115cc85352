// Row 5: garbage collection, once `kiln gc` exists.
//
// The stores collected are the ones the wide synthetic graphs filled by real builds (lib/
// workspace.ts): Kiln's holds the graph's N + N/100 + 1 outputs; Nix's, built from the same graph,
// holds as many outputs plus their .drv files. Neither has a root (they were built without result
// links), so each gc finds every path unreachable: mark is `kiln gc --dry-run` / `nix-store --gc
// --print-dead` on the store as it is (nothing is deleted), sweep is `kiln gc` / `nix-store --gc`
// on a fresh copy of it each run (the copy is not timed). With no references between these
// outputs, the mark is mostly loading the store's path table; Kiln's own split (load, mark,
// sweep ms from `kiln gc --json`) is shown too.
import { cpSync, lstatSync } from "node:fs";
import { join } from "node:path";
import type { Bench } from "../lib/context.js";
import { measureRoundRobin, summarize, type Contender } from "../lib/measure.js";
import { removeTree, runUnchecked, type RunResult } from "../lib/proc.js";
import { fmtNum, type Row } from "../lib/report.js";
import type { GraphDir } from "../lib/workspace.js";

const SECTION = "5. Garbage collection";

interface GcJson {
  dead: number;
  deleted: unknown[];
  ms: { load: number; mark: number; sweep: number };
}

export function gcSuite(b: Bench, graphs: GraphDir[]): void {
  b.report.section(SECTION, "every path of a store filled by the wide graph is unreachable (no roots): mark = dry run on the store, sweep = gc of a fresh copy", "ms");
  const help = runUnchecked({ argv: [...b.kiln, "gc", "--help"], capture: true });
  if (help.status !== 0 || !/--dry-run/.test(help.stdout)) {
    b.report.skip("gc rows", "`kiln gc` (with --dry-run) does not exist yet; nothing to measure");
    return;
  }
  const wide = graphs.filter((g) => g.shape === "wide" && !g.kilnBroken);
  if (!wide.length) {
    b.report.skip("gc rows", "no populated wide graph in this run (add --shapes wide)");
    return;
  }
  for (const g of wide) collect(b, g);
  if (!graphs.some((g) => g.n >= 100_000)) b.report.skip("gc of 100k paths (goal: mark < 1 s)", "no 100k store in this run: add --graphs wide-100000 (its first build fills Kiln's store once, ~20 min here; bench/README.md, \"100k\"); bench/gc.ts measures kiln's collector in-process on 10k/100k stores registered by direct inserts");
}

function collect(b: Bench, g: GraphDir): void {
  const kilnCopy = join(b.tmp, "gc-kiln-store");
  const nixCopy = join(b.tmp, "gc-nix-store");
  const runs = b.opts.quick ? 2 : 3;
  const kilnJson: Record<"mark" | "sweep", GcJson[]> = { mark: [], sweep: [] };
  const keep = (phase: "mark" | "sweep") => (r: RunResult) => {
    try {
      kilnJson[phase].push(JSON.parse(r.stdout) as GcJson);
    } catch {
      /* no JSON: the row says so through its missing split */
    }
  };
  const fresh = (from: string, to: string) => () => {
    removeTree(to);
    // not Nix's gc socket (a running collector's, if any): sockets cannot be copied
    cpSync(from, to, { recursive: true, verbatimSymlinks: true, filter: (p) => !lstatSync(p).isSocket() });
  };
  const contenders: Contender[] = [
    { key: "kiln mark", cmd: { argv: [...b.kiln, "--store", g.kilnStore, "gc", "--dry-run", "--json"], capture: true }, after: keep("mark") },
    { key: "kiln sweep", cmd: { argv: [...b.kiln, "--store", kilnCopy, "gc", "--json"], capture: true }, before: fresh(g.kilnStore, kilnCopy), after: (r) => { keep("sweep")(r); removeTree(kilnCopy); } },
  ];
  let nixPaths = 0;
  if (b.nix && g.nixMissing) b.report.skip(`nix-store --gc, ${g.label}`, g.nixMissing);
  else if (b.nix) {
    const dead = runUnchecked({ argv: [...b.nix.tool("nix-store", g.nixStore), "--gc", "--print-dead"], env: b.nix.env, capture: true });
    nixPaths = dead.stdout.split("\n").filter(Boolean).length;
    if (dead.status === 0 && nixPaths > 0) {
      contenders.push(
        { key: "nix mark", cmd: { argv: [...b.nix.tool("nix-store", g.nixStore), "--gc", "--print-dead"], env: b.nix.env } },
        {
          key: "nix sweep", cmd: { argv: [...b.nix.tool("nix-store", nixCopy), "--gc"], env: b.nix.env },
          before: fresh(g.nixStore, nixCopy), after: () => removeTree(nixCopy),
        },
      );
    } else b.report.skip(`nix-store --gc, ${g.label}`, dead.status === 0 ? "the Nix store of this graph is empty" : `failed: ${dead.stderr.trim().split("\n").pop()}`);
  } else b.report.skip(`nix-store --gc, ${g.label}`, b.nixMissing ?? "Nix unavailable");

  b.log(`gc ${g.label}: ${contenders.map((c) => c.key).join(", ")} x ${runs}`);
  const res = measureRoundRobin(contenders, { runs, warmup: 0 });
  const kilnPaths = kilnJson.mark[0]?.dead ?? g.drvs;
  for (const phase of ["mark", "sweep"] as const) {
    const k = summarize(res.get(`kiln ${phase}`)!.ms);
    const split = kilnJson[phase];
    const med = (f: (j: GcJson) => number) => fmtNum(summarize(split.map(f)).median);
    const row: Row = {
      section: SECTION, case: `${g.label}: ${phase}`, tool: "kiln", command: contenders.find((c) => c.key === `kiln ${phase}`)!.cmd.argv.join(" "), unit: "ms", time: k,
      note: `${kilnPaths} paths; kiln's own split (median): load ${med((j) => j.ms.load)} ms, mark ${med((j) => j.ms.mark)} ms${phase === "sweep" ? `, sweep ${med((j) => j.ms.sweep)} ms` : ""}; the rest: process start-up, the scan of the store directory for strays, printing the result`,
    };
    if (phase === "mark" && g.n >= 100_000) {
      row.goals = [{ text: "gc mark of 100k paths under 1 s", actual: `${fmtNum(k.median)} ms whole process (load + mark ${med((j) => j.ms.load + j.ms.mark)} ms)`, met: k.median < 1000 }];
    }
    const nx = res.get(`nix ${phase}`);
    if (nx) {
      const r = k.median / summarize(nx.ms).median;
      row.ratios = [{ anchor: `nix-store --gc${phase === "mark" ? " --print-dead" : ""}`, value: r }];
      if (phase === "mark" && g.n === 1000) (row.goals ??= []).push({ text: "gc mark (whole process) no slower than nix-store --gc --print-dead at 1k", actual: `${r.toFixed(2)}x`, met: r <= 1 });
    }
    b.report.add(row);
    if (nx) b.report.add({ section: SECTION, case: `${g.label}: ${phase}`, tool: "nix-store", command: contenders.find((c) => c.key === `nix ${phase}`)!.cmd.argv.join(" "), unit: "ms", time: summarize(nx.ms), note: `${nixPaths} paths (outputs and .drv files)` });
  }
}
