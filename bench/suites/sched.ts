// Row 4: scheduler efficiency. A graph of sleep jobs with a known critical path (see
// lib/graphs.ts), built from scratch at -j2 and -j8. Ideal = max(critical path, total work / j),
// counting the sleeps only; efficiency = ideal / achieved. Kiln's figure is its realize phase
// (the "finished" event: scheduling + sandbox + registration, without process start-up and
// evaluation); its whole-process wall time is shown too. ninja runs the same sleeps unsandboxed
// (what a scheduler with no per-job overhead achieves here), Nix sandboxed like Kiln.
import { cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Bench } from "../lib/context.js";
import { kilnSleepRecipe, ninjaSleepFile, nixSleepExpr } from "../lib/graphs.js";
import { parseEvents } from "../lib/kiln.js";
import { measureRoundRobin, summarize, type Contender } from "../lib/measure.js";
import { removeTree, run, type RunResult } from "../lib/proc.js";
import { fmtNum, type Row } from "../lib/report.js";
import { writeIfChanged } from "../lib/workspace.js";

const SECTION = "4. Scheduler efficiency";

export function schedSuite(b: Bench): void {
  const chain = b.opts.quick ? 2 : 8;
  const width = b.opts.quick ? 4 : 24;
  const secs = 0.5;
  const jobs = chain + width;
  b.report.section(SECTION, `${jobs} jobs of \`sleep ${secs}\`: a chain of ${chain} (critical path ${chain * secs} s) + ${width} independent; built from scratch`, "s");

  const dir = join(b.cache, "sched");
  mkdirSync(join(dir, "ninja"), { recursive: true });
  const recipe = join(dir, "kiln.ts");
  writeIfChanged(recipe, kilnSleepRecipe(chain, width, secs));
  writeIfChanged(join(dir, "ninja", "build.ninja"), ninjaSleepFile(chain, width, secs));
  const nixFile = join(dir, "sleep.nix");
  writeIfChanged(nixFile, nixSleepExpr(chain, width, secs));

  // a template store that has evaluated the recipe once (bundle, host tools) but built nothing
  const template = join(b.tmp, "sched-template");
  run({ argv: [...b.kiln, "--store", template, "-f", recipe, "eval", "all"] });
  const runStore = join(b.tmp, "sched-store");
  const nixStore = join(b.tmp, "sched-nix-store");
  const runs = b.opts.quick ? 2 : 3;

  for (const j of [2, 8]) {
    const ideal = Math.max(chain * secs, (jobs * secs) / j) * 1000;
    const realizeMs: number[] = [];
    const perJob: number[] = [];
    const kilnAfter = (r: RunResult) => {
      const ev = parseEvents(r.stderr);
      const fin = ev.find((e) => e.type === "finished");
      if (fin?.ms !== undefined) realizeMs.push(fin.ms);
      for (const e of ev) if (e.type === "built" && e.ms !== undefined) perJob.push(e.ms);
      removeTree(runStore);
    };
    const kilnArgv = [...b.kiln, "--store", runStore, "-f", recipe, "-j", String(j), "--reporter", "json", "realize", "all", "--no-link"];
    const contenders: Contender[] = [
      { key: "kiln", cmd: { argv: kilnArgv, captureStderr: true }, before: () => { removeTree(runStore); cpSync(template, runStore, { recursive: true }); }, after: kilnAfter },
      { key: "ninja", cmd: { argv: ["ninja", "-C", join(dir, "ninja"), "-j", String(j)] }, before: () => run({ argv: ["ninja", "-C", join(dir, "ninja"), "-t", "clean"] }) },
    ];
    if (b.nix) {
      contenders.push({
        key: "nix-build", cmd: { argv: [...b.nix.tool("nix-build", nixStore), nixFile, "--no-out-link", "--max-jobs", String(j), "--cores", "1"], env: b.nix.env },
        before: () => removeTree(nixStore), after: () => removeTree(nixStore),
      });
    } else b.report.skip(`nix-build -j${j}`, b.nixMissing ?? "Nix unavailable");

    b.log(`scheduler -j${j}: ${contenders.map((c) => c.key).join(", ")} x ${runs}`);
    const res = measureRoundRobin(contenders, { runs, warmup: 0 });
    const caseName = `-j${j} (ideal ${fmtNum(ideal / 1000)} s)`;
    const rz = summarize(realizeMs);
    const overhead = perJob.length ? perJob.reduce((a, x) => a + x, 0) / perJob.length - secs * 1000 : NaN;
    const row: Row = {
      section: SECTION, case: caseName, tool: "kiln realize phase", unit: "s", time: rz, ratios: [],
      goals: [{ text: "scheduler >= 0.95 of ideal", actual: `efficiency ${(ideal / rz.median).toFixed(2)} (achieved/ideal ${(rz.median / ideal).toFixed(2)})`, met: ideal / rz.median >= 0.95 }],
      note: `mean job ${fmtNum(overhead)} ms longer than its sleep (sandbox + registration)`,
    };
    for (const c of contenders.slice(1)) row.ratios!.push({ anchor: c.key, value: rz.median / summarize(res.get(c.key)!.ms).median });
    b.report.add(row);
    for (const c of contenders) {
      const s = summarize(res.get(c.key)!.ms);
      b.report.add({
        section: SECTION, case: caseName, tool: c.key === "kiln" ? "kiln whole process" : c.key, command: c.cmd.argv.join(" "), unit: "s", time: s,
        note: `efficiency ${(ideal / s.median).toFixed(2)} (achieved/ideal ${(s.median / ideal).toFixed(2)})`,
      });
    }
  }
  removeTree(template);
}
