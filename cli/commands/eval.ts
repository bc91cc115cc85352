// kiln eval <target>: evaluate without building; print the derivation graph.
import { join } from "node:path";
import { evaluateTargets } from "../../engine/targets.js";
import { reachable } from "../../engine/graph.js";
import { defineCommand, storeVerb } from "../command.js";
import { recipesEntry } from "../context.js";

export const evalVerb = storeVerb({
  command: "eval <targets..>",
  describe: "evaluate targets into their derivation graph without building",
  options: (y) => y
    .positional("targets", { type: "string", array: true, demandOption: true })
    .option("json", { type: "boolean", describe: "the whole graph as JSON" }),
  run: async (argv, ctx) => {
    const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), argv.targets);
    const nodes = reachable(ev.evaluator.graph, ev.roots.map((r) => r.node));
    if (argv.json) {
      const out = {
        roots: ev.roots.map((r) => ({ target: r.target, drv: r.node.hash, output: r.output })),
        derivations: Object.fromEntries(nodes.map((n) => [n.hash, { ...n.drv, meta: n.meta }])),
      };
      process.stdout.write(JSON.stringify(out, null, 2) + "\n");
    } else {
      // one write: stdout to a file or pipe is written synchronously, a system call per write
      process.stdout.write(nodes.map((n) => `${n.hash}  ${n.name}${n.deps.length ? `  <- ${n.deps.map((d) => d.name).join(", ")}` : ""}\n`).join(""));
    }
  },
});

export const evalCommand = defineCommand(evalVerb);
