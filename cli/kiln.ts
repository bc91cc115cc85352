// kiln's launcher (dist/kiln.cjs). A no-op `kiln realize` is answered here from its record
// (cli/fast.ts) in a few milliseconds; everything else loads the full CLI (dist/kiln-main.mjs).
import { tryFastRealize } from "./fast.js";

let answered = false;
try {
  answered = tryFastRealize(process.argv.slice(2));
} catch {
  // whatever went wrong (a locked database, a link in the way), the full CLI does it properly
  answered = false;
}
if (!answered) {
  import(new URL("./kiln-main.mjs", import.meta.url).href).catch((e: unknown) => {
    process.stderr.write(`internal error (a bug in kiln, please report it):\n${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 70;
  });
}
