// kiln why <target>: why the latest realisation of a target differs from the one before it (or
// from the one at a git revision, or from a given derivation): root causes and blast radius.
import { pickComparison, storeLookup, type AgainstSpec, type Comparison } from "../../engine/history.js";
import { recipeSetRoot } from "../../engine/recipe-snapshot.js";
import { explain, renderWhy, type WhyReport } from "../../engine/why.js";
import type { TargetRealisation } from "../../store/history.js";
import { recipesEntry } from "../context.js";
import { recipesOf, refineReports } from "../causes.js";
import { resolveRevision } from "../git.js";
import { defineCommand } from "../command.js";

function side(target: string, s: Comparison["old"]) {
  // a derivation found inside another target's tree: that realisation's path is the other target's
  const own = s.row?.target === target;
  return {
    drv: s.drvHash, path: own ? s.row?.path : undefined, via: s.row && !own ? s.row.target : undefined,
    at: s.row ? new Date(s.row.at).toISOString() : undefined, recipes: s.row?.recipes ?? undefined,
  };
}

function describeSide(label: string, drv: string, row: TargetRealisation | undefined): string {
  if (!row) return `  ${label}: derivation ${drv.slice(0, 12)}…`;
  const rev = row.recipes ? `, recipes at ${row.recipes.rev.slice(0, 10)}${row.recipes.dirty ? " + uncommitted changes" : ""}` : "";
  return `  ${label}: derivation ${drv.slice(0, 12)}… realised ${new Date(row.at).toISOString()}${rev}`;
}

export const whyCommand = defineCommand({
  command: "why <target>",
  describe: "explain why a target's latest realisation differs from the previous one: root causes and blast radius",
  options: (y) => y
    .positional("target", { type: "string", demandOption: true, describe: "a realised target (or a derivation name inside one)" })
    .option("since", { type: "string", describe: "compare against the realisation recorded at this git revision of the recipes" })
    .option("against", { type: "string", describe: "compare against this derivation hash" })
    .conflicts("since", "against")
    .option("json", { type: "boolean", describe: "print the report as JSON" }),
  run: async (argv, ctx) => {
    const lookup = storeLookup(ctx.store);
    let against: AgainstSpec = { kind: "previous" };
    if (argv.against) against = { kind: "drv", hash: argv.against };
    if (argv.since) {
      const full = resolveRevision(recipesEntry(argv), argv.since);
      against = { kind: "rev", revs: full ? [full] : [argv.since] };
    }
    const cmp = pickComparison(ctx.store, lookup, argv.target, against);
    const report: WhyReport = explain(cmp.old.drvHash, cmp.new.drvHash, lookup, recipesOf(ctx.store, lookup, cmp.old, cmp.new, recipeSetRoot(recipesEntry(argv))));
    refineReports(report.causes, cmp.new.row?.recipes);
    if (argv.json) {
      process.stdout.write(JSON.stringify({ target: cmp.target, old: side(cmp.target, cmp.old), new: side(cmp.target, cmp.new), changed: report.changed, causes: report.causes, tree: report.root }, null, 2) + "\n");
      return;
    }
    const lines: string[] = [];
    if (!report.root) {
      if (against.kind === "previous") {
        lines.push(`${cmp.target}: no earlier realisation with a different derivation is recorded; nothing to explain`);
      } else lines.push(`${cmp.target}: the same derivation as the one compared against; nothing changed`);
      lines.push(describeSide("latest", cmp.new.drvHash, cmp.new.row));
    } else {
      lines.push(`why ${cmp.target} changed: ${report.changed} ${report.changed === 1 ? "derivation differs" : "derivations differ"}, ${report.causes.length} root cause${report.causes.length === 1 ? "" : "s"}`);
      lines.push(describeSide("was", cmp.old.drvHash, cmp.old.row), describeSide("now", cmp.new.drvHash, cmp.new.row), "");
      lines.push(...renderWhy(report, { relativeTo: process.cwd() }));
    }
    process.stdout.write(lines.join("\n") + "\n");
  },
});
