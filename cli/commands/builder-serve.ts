// kiln builder-serve missing|import|build: the builder's side of a remote build, run over SSH by
// another kiln (engine/builders/ssh.ts); the exchanges are in engine/builders/serve.ts. Hidden
// from the help: nobody runs it by hand.
import type { Argv } from "yargs";
import { serveBuild, serveImport, serveMissing } from "../../engine/builders/serve.js";
import { localBuilder, type GlobalArgs } from "../context.js";
import { withContext } from "../run.js";

interface Args extends GlobalArgs {
  op: "missing" | "import" | "build";
}

export const command = "builder-serve <op>";
export const describe = false;

export function builder(y: Argv<GlobalArgs>) {
  return y.positional("op", { choices: ["missing", "import", "build"] as const, demandOption: true }) as unknown as Argv<Args>;
}

export function handler(argv: Args): Promise<void> {
  return withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
    if (argv.op === "missing") return serveMissing(ctx.store, process.stdin, process.stdout);
    if (argv.op === "import") return serveImport(ctx.store, process.stdin, ctx.signal);
    // this machine's own builder, whatever builders its configuration names
    return serveBuild(ctx.store, localBuilder(ctx.store), process.stdin, process.stdout, (c) => process.stderr.write(c), ctx.signal);
  });
}
