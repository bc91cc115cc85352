// kiln show-derivation <target|drv-hash>: the derivation(s), as JSON. A derivation that uses the
// host (declared host tools, the impure escape) says so: an `impure` list in its JSON, and a line
// on stderr naming each tool.
import { join } from "node:path";
import { KilnError } from "../../store/errors.js";
import { evaluateTargets } from "../../engine/targets.js";
import { impurities, type Derivation } from "../../engine/derivation.js";
import { reachable } from "../../engine/graph.js";
import { recipesEntry } from "../context.js";
import { defineCommand } from "../command.js";

export const showDerivationCommand = defineCommand({
  command: "show-derivation <target>",
  describe: "print a target's derivation (or a derivation hash's, from the store) as JSON",
  options: (y) => y
    .positional("target", { type: "string", demandOption: true })
    .option("recursive", { alias: "r", type: "boolean", describe: "include every input derivation" }),
  run: async (argv, ctx) => {
    if (/^[0-9a-f]{64}$/.test(argv.target)) {
      const row = ctx.store.derivation(argv.target);
      if (!row) throw new KilnError("TARGET_NOT_FOUND", `no derivation ${argv.target} is recorded in this store`, "realize the target first, or name it by target");
      const stored = JSON.parse(row.json) as { drv: Derivation };
      process.stdout.write(JSON.stringify({ [row.hash]: withImpurities(stored, stored.drv) }, null, 2) + "\n");
      return;
    }
    const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), [argv.target]);
    const nodes = argv.recursive ? reachable(ev.evaluator.graph, ev.roots.map((r) => r.node)) : ev.roots.map((r) => r.node);
    process.stdout.write(JSON.stringify(Object.fromEntries(nodes.map((n) => [n.hash, withImpurities({ ...n.drv, meta: n.meta }, n.drv)])), null, 2) + "\n");
  },
});

/** The shown object with `impure` added when the derivation uses the host, which stderr names too. */
function withImpurities<T extends object>(shown: T, drv: Derivation): T & { impure?: string[] } {
  const impure = impurities(drv);
  if (impure.length === 0) return shown;
  process.stderr.write(`impure: ${drv.name} uses the host, outside its inputs:\n${impure.map((l) => `  ${l}\n`).join("")}`);
  return { ...shown, impure };
}
