// kiln log <target|drv-hash>: the log of the latest build of a derivation.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { KilnError } from "../../store/errors.js";
import { evaluateTargets } from "../../engine/targets.js";
import { defineCommand } from "../command.js";
import { recipesEntry } from "../context.js";

export const logCommand = defineCommand({
  command: "log <target>",
  describe: "print the build log of the latest build of a target (or derivation hash, or name)",
  options: (y) => y.positional("target", { type: "string", demandOption: true }),
  run: async (argv, ctx) => {
    let row = /^[0-9a-f]{64}$/.test(argv.target) ? ctx.store.lastBuild(argv.target) : ctx.store.lastBuildByName(argv.target);
    if (!row && !/^[0-9a-f]{64}$/.test(argv.target)) {
      try {
        const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), [argv.target]);
        for (const r of ev.roots) row ??= ctx.store.lastBuild(r.node.hash);
      } catch (e) {
        if (!(e instanceof KilnError && e.code === "TARGET_NOT_FOUND")) throw e;
      }
    }
    if (!row) throw new KilnError("TARGET_NOT_FOUND", `no build of ${argv.target} is recorded in this store`, "it may have come from the store without a build; realize it first");
    if (!row.log_file || !existsSync(row.log_file)) throw new KilnError("TARGET_NOT_FOUND", `the log of ${row.name} (build ${row.id}) is gone`, "it was collected or never written");
    process.stdout.write(readFileSync(row.log_file));
  },
});
