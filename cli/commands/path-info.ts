// kiln path-info [paths|targets...]: sizes, references, closures.
import { recipesEntry } from "../context.js";
import { toStorePaths } from "../resolve-paths.js";
import { human } from "../units.js";
import type { StorePathName } from "../../store/paths.js";
import { defineCommand } from "../command.js";

export const pathInfoCommand = defineCommand({
  command: "path-info <paths..>",
  describe: "show store paths' sizes and references (targets, result links or store paths)",
  options: (y) => y
    .positional("paths", { type: "string", array: true, demandOption: true })
    .option("recursive", { alias: "r", type: "boolean", describe: "every path in the closure" })
    .option("closure-size", { alias: "S", type: "boolean", describe: "also the closure size" })
    .option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const roots = await toStorePaths(ctx, recipesEntry(argv), argv.paths);
    const paths: StorePathName[] = argv.recursive ? [...ctx.store.closure(roots)].sort() : roots;
    const rows = paths.map((p) => {
      const info = ctx.store.pathInfo(p)!;
      const closureSize = argv["closure-size"] ? [...ctx.store.closure([p])].reduce((s, q) => s + ctx.store.pathInfo(q)!.narSize, 0) : undefined;
      return { path: ctx.store.hostPath(p), narSize: info.narSize, closureSize, narDigest: info.narDigest, references: info.references, deriver: info.deriver, ca: info.ca, registeredAt: info.registeredAt };
    });
    if (argv.json) {
      process.stdout.write(JSON.stringify(rows, null, 2) + "\n");
      return;
    }
    for (const r of rows) {
      process.stdout.write(`${r.path}\t${human(r.narSize).padStart(10)}${r.closureSize !== undefined ? `\t${human(r.closureSize).padStart(10)}` : ""}\n`);
    }
  },
});
