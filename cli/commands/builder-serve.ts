// kiln builder-serve missing|import|build: the builder's side of a remote build, run over SSH by
// another kiln (engine/builders/ssh.ts); the exchanges are in engine/builders/serve.ts. Hidden
// from the help: nobody runs it by hand.
import { serveBuild, serveImport, serveMissing } from "../../engine/builders/serve.js";
import { defineCommand } from "../command.js";
import { localBuilder } from "../context.js";

export const builderServeCommand = defineCommand({
  command: "builder-serve <op>",
  describe: false,
  options: (y) => y.positional("op", { choices: ["missing", "import", "build"] as const, demandOption: true }),
  run: async (argv, ctx) => {
    if (argv.op === "missing") return serveMissing(ctx.store, process.stdin, process.stdout);
    if (argv.op === "import") return serveImport(ctx.store, process.stdin, ctx.signal);
    // this machine's own builder, whatever builders its configuration names
    const warn = (m: string) => process.stderr.write(`warning: ${m}\n`);
    return serveBuild(ctx.store, localBuilder(ctx.store, warn), process.stdin, process.stdout, (c) => process.stderr.write(c), ctx.signal);
  },
});
