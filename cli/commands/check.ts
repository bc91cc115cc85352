// kiln check <target...>: rebuild realised targets from scratch and compare bit for bit.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { check } from "../../engine/check.js";
import { evaluateTargets } from "../../engine/targets.js";
import { recipesEntry } from "../context.js";
import { EXIT } from "../run.js";
import { defineCommand } from "../command.js";

export const checkCommand = defineCommand({
  command: "check <targets..>",
  describe: "rebuild targets from scratch and compare with the store bit for bit (reproducibility)",
  options: (y) => y
    .positional("targets", { type: "string", array: true, demandOption: true })
    .option("recursive", { alias: "r", type: "boolean", describe: "check every derivation the targets depend on, too" })
    .option("diffoscope", { type: "boolean", default: true, describe: "explain differences with diffoscope when it is installed" })
    .option("json", { type: "boolean" }),
  reporter: (argv) => argv.reporter,
  run: async (argv, ctx) => {
    const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), argv.targets);
    const results = await check(ctx, ev.evaluator.graph, ev.roots.map((r) => r.node), Boolean(argv.recursive), join(ctx.root, "checks"));
    const bad = results.filter((r) => !r.identical);
    if (argv.json) {
      process.stdout.write(JSON.stringify({ checked: results.length, identical: results.length - bad.length, results }, null, 2) + "\n");
    } else {
      for (const r of results) {
        process.stdout.write(`${r.identical ? "identical" : "DIFFERS  "} ${ctx.store.hostPath(r.path)}\n`);
        if (r.identical) continue;
        for (const d of r.differences) process.stdout.write(`  differs: ${d}\n`);
        process.stdout.write(`  rebuilt copy kept at ${r.rebuilt}\n`);
        if (argv.diffoscope && spawnSync("which", ["diffoscope"]).status === 0) {
          const d = spawnSync("diffoscope", ["--text", "-", ctx.store.hostPath(r.path), r.rebuilt!], { encoding: "utf8", maxBuffer: 64 << 20 });
          process.stdout.write(d.stdout.split("\n").slice(0, 200).join("\n") + "\n");
        }
      }
      process.stdout.write(`${results.length} output(s) checked, ${bad.length} differ\n`);
    }
    return bad.length ? EXIT.failed : EXIT.ok;
  },
});
