// Loads the Ink TUI only when it is used, from outside the esbuild bundle on purpose: ink, react
// and yoga are ~1.3 MB of JavaScript that every plain, JSON or no-op run would otherwise parse
// (about 100 ms more start-up, measured), and ink's optional devtools import does not bundle
// without extra build flags. `tsc -p tsconfig.build.json` emits tui.js beside this file's own
// output; from the bundle (dist/kiln.cjs) that is dist/cli/reporters/tui.js. Under tsx, the
// .js name resolves to tui.tsx.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { importModule } from "../../engine/dynamic-import.js";

type TuiModule = typeof import("./tui.js");

export async function loadTui(): Promise<TuiModule> {
  const here = new URL("./tui.js", import.meta.url);
  const beside = existsSync(fileURLToPath(here)) || existsSync(fileURLToPath(new URL("./tui.tsx", import.meta.url)));
  const url = beside ? here : new URL("./cli/reporters/tui.js", import.meta.url);
  // a computed specifier keeps esbuild from pulling the module into the bundle
  const spec: string = url.href;
  return await importModule<TuiModule>(spec);
}
