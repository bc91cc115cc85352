// kiln why-depends <a> <b>: why a depends on b, as the shortest chain of references (runtime) or
// of derivation inputs (--build).
import { join } from "node:path";
import { buildChain, runtimeChain } from "../../engine/why-depends.js";
import { evaluateTargets } from "../../engine/targets.js";
import { recipesEntry } from "../context.js";
import { toStorePaths } from "../resolve-paths.js";
import { EXIT } from "../run.js";
import { defineCommand } from "../command.js";

function draw(lines: string[]): string {
  return lines.map((l, i) => (i === 0 ? l : `${"    ".repeat(i - 1)}└── ${l}`)).join("\n") + "\n";
}

export const whyDependsCommand = defineCommand({
  command: "why-depends <from> <to>",
  describe: "show the shortest chain by which <from> depends on <to> (store references, or --build for derivation inputs)",
  options: (y) => y
    .positional("from", { type: "string", demandOption: true, describe: "a target, result link or store path" })
    .positional("to", { type: "string", demandOption: true, describe: "a target, store path, or (with --build) a derivation name" })
    .option("build", { type: "boolean", describe: "follow build-time inputs (derivations) instead of runtime references" })
    .option("json", { type: "boolean" }),
  run: async (argv, ctx) => {
    const entry = recipesEntry(argv);
    let chain: string[] | undefined;
    if (argv.build) {
      const ev = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), [argv.from]);
      const to = argv.to;
      let want: Set<string> | undefined;
      if (!ev.evaluator.graph.nodes.some((n) => n.name === to || n.hash === to)) {
        // not a derivation name in from's graph: maybe a target name
        const other = await evaluateTargets(ctx, entry, join(ctx.root, "eval-cache"), [to]).catch(() => undefined);
        want = new Set(other?.roots.map((r) => r.node.hash) ?? []);
      }
      const match = (n: { name: string; hash: string }) => (want ? want.has(n.hash) : n.name === to || n.hash === to);
      for (const r of ev.roots) chain ??= buildChain(r.node, match)?.map((n) => n.name);
    } else {
      const [from] = await toStorePaths(ctx, entry, [argv.from]);
      const [to] = await toStorePaths(ctx, entry, [argv.to]);
      chain = runtimeChain(ctx.store, from!, to!)?.map((p) => ctx.store.hostPath(p));
    }
    if (!chain) {
      if (argv.json) process.stdout.write(JSON.stringify({ depends: false, chain: [] }) + "\n");
      else process.stdout.write(`${argv.from} does not depend on ${argv.to}${argv.build ? " (build inputs)" : " at run time (try --build for build inputs)"}\n`);
      return EXIT.failed;
    }
    if (argv.json) process.stdout.write(JSON.stringify({ depends: true, chain }, null, 2) + "\n");
    else process.stdout.write(draw(chain));
    return EXIT.ok;
  },
});
