// kiln copy --to URL TARGET...: push realized targets (or store paths, or result links) to a
// binary cache: the closure of each, signed, and for targets the realisation records of their
// whole derivation graph, so that another machine can plan them from the cache alone.
import { join } from "node:path";
import { reachable } from "../../engine/graph.js";
import { plan } from "../../engine/plan.js";
import { evaluateTargets } from "../../engine/targets.js";
import type { PushRealisation } from "../../engine/cache/push.js";
import { KilnError } from "../../store/errors.js";
import type { StorePathName } from "../../store/paths.js";
import { recipesEntry } from "../context.js";
import { pusherFor } from "../push.js";
import { storePathOf } from "../resolve-paths.js";
import { human } from "../units.js";
import { defineCommand } from "../command.js";

export const copyCommand = defineCommand({
  command: "copy <targets..>",
  describe: "push realized targets (or store paths) with their closures to a binary cache, signed with --secret-key",
  options: (y) => y
    .positional("targets", { type: "string", array: true, demandOption: true, describe: "targets, result links or store paths" })
    .option("to", { type: "string", demandOption: true, describe: "the cache: file:///DIR, http(s)://HOST/PATH (WebDAV PUT) or s3://BUCKET[/PREFIX]?endpoint=URL&region=REGION" }),
  reporter: (argv) => argv.reporter ?? "plain",
  run: async (argv, ctx) => {
    const paths: StorePathName[] = [];
    const targets: string[] = [];
    for (const item of argv.targets) {
      const p = storePathOf(ctx.store.storeDir, item);
      if (!p) targets.push(item);
      else if (!ctx.store.isValid(p)) throw new KilnError("STORE_PATH_INVALID", `${item} is not a valid path in the store ${ctx.root}`, "realize it first");
      else paths.push(p);
    }
    const records: PushRealisation[] = [];
    if (targets.length > 0) {
      const ev = await evaluateTargets(ctx, recipesEntry(argv), join(ctx.root, "eval-cache"), targets);
      const nodes = reachable(ev.evaluator.graph, ev.roots.map((r) => r.node));
      // with the caches' records, as a realize plans: a substituted target may lack its build inputs
      const p = await plan(ctx.store, nodes, ctx.substituters, ctx.signal);
      for (const r of ev.roots) {
        const out = p.get(r.node)!.state === "cached" ? p.get(r.node)!.outputs![r.output] : undefined;
        if (!out) throw new KilnError("STORE_PATH_INVALID", `target ${r.target} is not realized in this store`, `run \`kiln realize ${r.target}\` first`);
        paths.push(out);
      }
      // every realisation the store knows in the graph: records are small, and they let a
      // planner resolve the targets without the build inputs' contents
      for (const n of nodes) {
        const e = p.get(n)!;
        if (e.state !== "cached") continue;
        for (const [output, path] of Object.entries(e.outputs!)) records.push({ resolved: e.resolved ?? n.hash, output, path });
      }
    }
    const pusher = pusherFor(ctx, argv, argv.to, "kiln copy");
    await pusher.push(paths, records);
    const t = pusher.totals;
    process.stderr.write(`copied ${t.pushed.length} path(s) (${human(t.bytes)} of archives) to ${pusher.backend.url}; ${t.present} were there already; ${t.realisations} realisation record(s) written\n`);
  },
});
