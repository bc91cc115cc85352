// kiln show-derivation <target|drv-hash>: the derivation(s), as JSON.
import { join } from "node:path";
import type { Argv } from "yargs";
import { KilnError } from "../../store/errors.js";
import { evaluateTargets } from "../../engine/targets.js";
import { reachable } from "../../engine/graph.js";
import { recipesEntry, type GlobalArgs } from "../context.js";
import { withContext } from "../run.js";

interface Args extends GlobalArgs {
  target: string;
  recursive?: boolean;
}

export const command = "show-derivation <target>";
export const describe = "print a target's derivation (or a derivation hash's, from the store) as JSON";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .positional("target", { type: "string", demandOption: true })
    .option("recursive", { alias: "r", type: "boolean", describe: "include every input derivation" }) as unknown as Argv<Args>;
}

export function handler(argv: Args): Promise<void> {
  return withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
    if (/^[0-9a-f]{64}$/.test(argv.target)) {
      const row = ctx.store.derivation(argv.target);
      if (!row) throw new KilnError("TARGET_NOT_FOUND", `no derivation ${argv.target} is recorded in this store`, "realize the target first, or name it by target");
      process.stdout.write(JSON.stringify({ [row.hash]: JSON.parse(row.json) }, null, 2) + "\n");
      return;
    }
    const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), [argv.target]);
    const nodes = argv.recursive ? reachable(ev.evaluator.graph, ev.roots.map((r) => r.node)) : ev.roots.map((r) => r.node);
    process.stdout.write(JSON.stringify(Object.fromEntries(nodes.map((n) => [n.hash, { ...n.drv, meta: n.meta }])), null, 2) + "\n");
  });
}
