// What every kiln process sets up before its command runs: the full CLI (cli/main.ts) and gc's own
// bundle (cli/gc-main.ts).
import { mapStack } from "../engine/source-map.js";

export function installProcessHooks(): void {
  // An error no command catches (thrown in a recipe's timer callback, say) ends kiln with exit 1 as
  // Node's own handler would, its stack in the recipe's lines rather than the bundle's
  for (const event of ["uncaughtException", "unhandledRejection"] as const) {
    process.on(event, (e: unknown) => {
      process.stderr.write(`${mapStack(String((e as Error)?.stack ?? e))}\n`);
      process.exit(1);
    });
  }

  // `kiln targets --all | head`: a reader that stops reading ends the output, as for any other tool.
  // Each stream gets its handler when it is first made: making process.stdout or process.stderr (a
  // socket, for a pipe) costs a few milliseconds that a command writing through cli/output.ts, or
  // not at all, does not pay.
  const onStreamError = (e: NodeJS.ErrnoException): void => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  };
  for (const name of ["stdout", "stderr"] as const) {
    const made = Object.getOwnPropertyDescriptor(process, name);
    if (!made?.get || !made.configurable) {
      process[name].on("error", onStreamError);
      continue;
    }
    Object.defineProperty(process, name, {
      configurable: true,
      enumerable: made.enumerable,
      get() {
        const stream = made.get!.call(process) as NodeJS.WriteStream;
        Object.defineProperty(process, name, { configurable: true, enumerable: made.enumerable, writable: true, value: stream });
        stream.on("error", onStreamError);
        return stream;
      },
    });
  }
}
