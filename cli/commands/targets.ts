// kiln targets: list the recipe set's targets.
import { join } from "node:path";
import type { Argv } from "yargs";
import { listTargets, loadRecipeSet } from "../../engine/loader.js";
import { recipesEntry, type GlobalArgs } from "../context.js";
import { withContext } from "../run.js";

export const command = "targets";
export const describe = "list the targets of the recipe set";

export function builder(y: Argv<GlobalArgs>) {
  return y;
}

export function handler(argv: GlobalArgs): Promise<void> {
  return withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
    const set = await loadRecipeSet(recipesEntry(argv), join(ctx.root, "eval-cache"));
    for (const t of listTargets(set)) process.stdout.write(`${t}\n`);
  });
}
