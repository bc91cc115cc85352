// kiln targets [prefix]: list the recipe set's targets: the top level, or everything under a prefix
// (or the whole set, --all) with the derivation each one is.
import { join } from "node:path";
import { listTargets, listTargetTree, loadRecipeSet } from "../../engine/loader.js";
import { defineCommand } from "../command.js";
import { recipesEntry } from "../context.js";

export const targetsCommand = defineCommand({
  command: "targets [prefix]",
  describe: "list the targets of the recipe set (those under a prefix, e.g. blazeneuro.toolchain, with their derivations)",
  options: (y) => y
    .positional("prefix", { type: "string", describe: "list every target under this one, nested ones included" })
    .option("all", { alias: "a", type: "boolean", describe: "list every target of the set, nested ones included" }),
  run: async (argv, ctx) => {
    const set = await loadRecipeSet(recipesEntry(argv), join(ctx.root, "eval-cache"));
    if (argv.prefix === undefined && !argv.all) {
      for (const t of listTargets(set)) process.stdout.write(`${t}\n`);
      return;
    }
    const rows = listTargetTree(set, argv.prefix);
    const width = Math.max(0, ...rows.map((r) => r.target.length));
    for (const r of rows) process.stdout.write(`${r.target.padEnd(width)}  ${r.name}\n`);
  },
});
