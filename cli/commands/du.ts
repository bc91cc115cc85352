// kiln du [target|path...]: closure size and the biggest contributors; without arguments, the
// whole store split into live (reachable from a root) and reclaimable.
import { closureSize, loadGraph } from "../../store/gc.js";
import { listRoots } from "../../store/roots.js";
import { recipesEntry } from "../context.js";
import { toStorePaths } from "../resolve-paths.js";
import { human } from "../units.js";
import { defineCommand } from "../command.js";

export const duCommand = defineCommand({
  command: "du [paths..]",
  describe: "closure size and its biggest contributors (no argument: the whole store, live vs reclaimable)",
  options: (y) => y
    .positional("paths", { type: "string", array: true, describe: "targets, result links or store paths" })
    .option("top", { alias: "n", type: "number", default: 10, describe: "how many of the biggest paths to list" })
    .option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const g = loadGraph(ctx.store);
    const rootIdx = (paths: string[]) => paths.map((p) => g.index.get(p)).filter((i): i is number => i !== undefined);
    const live = closureSize(g, rootIdx(listRoots(ctx.store).roots.map((r) => r.path)));
    let scope: Uint8Array | undefined;
    let summary: Record<string, number>;
    if (argv.paths?.length) {
      const c = closureSize(g, rootIdx(await toStorePaths(ctx, recipesEntry(argv), argv.paths)));
      scope = c.members;
      summary = { paths: c.paths, bytes: c.bytes };
    } else {
      let bytes = 0;
      for (let i = 0; i < g.paths.length; i++) bytes += g.size[i]!;
      summary = { paths: g.paths.length, bytes, livePaths: live.paths, liveBytes: live.bytes, reclaimablePaths: g.paths.length - live.paths, reclaimableBytes: bytes - live.bytes };
    }
    const idx: number[] = [];
    for (let i = 0; i < g.paths.length; i++) if (!scope || scope[i]) idx.push(i);
    idx.sort((a, b) => g.size[b]! - g.size[a]!);
    const top = idx.slice(0, Math.max(0, argv.top)).map((i) => ({
      path: ctx.store.hostPath(g.paths[i]!), bytes: g.size[i]!, share: summary.bytes! ? g.size[i]! / summary.bytes! : 0, live: live.members[i] === 1,
    }));
    if (argv.json) {
      process.stdout.write(JSON.stringify({ ...summary, top }, null, 2) + "\n");
      return;
    }
    if (scope) process.stdout.write(`closure: ${summary.paths} paths, ${human(summary.bytes!)}\n`);
    else {
      process.stdout.write(`store: ${summary.paths} paths, ${human(summary.bytes!)}\n`);
      process.stdout.write(`  live (reachable from a root): ${summary.livePaths} paths, ${human(summary.liveBytes!)}\n`);
      process.stdout.write(`  reclaimable by kiln gc:       ${summary.reclaimablePaths} paths, ${human(summary.reclaimableBytes!)}\n`);
    }
    if (top.length) process.stdout.write(`biggest:\n`);
    for (const t of top) {
      process.stdout.write(`${human(t.bytes).padStart(10)} ${(100 * t.share).toFixed(1).padStart(5)}%  ${t.path}${scope || t.live ? "" : "  (reclaimable)"}\n`);
    }
  },
});
