// import() of what kiln loads at run time: the recipe bundle, optional packages (esbuild, the S3
// client, lzma), the TUI; and require() of esbuild's API. The shipped CLI (dist/kiln-*.cjs) is
// compiled by the launcher with V8's code cache (cli/kiln.ts), and a script compiled that way has
// no import() of its own: the launcher hands in its own. Run any other way (compiled modules, a
// TypeScript loader): the plain import(). Bare specifiers resolve the same from either, within
// kiln's own package.
import { createRequire } from "node:module";

export const IMPORT_HOOK: unique symbol = Symbol.for("kiln.import") as never;

export function importModule<T = Record<string, unknown>>(specifier: string): Promise<T> {
  const hook = (globalThis as { [IMPORT_HOOK]?: (s: string) => Promise<unknown> })[IMPORT_HOOK];
  return (hook ? hook(specifier) : import(specifier)) as Promise<T>;
}

/**
 * require() of esbuild's JavaScript API (a recipe set is bundled at every evaluation after an
 * edit): the launcher's, which compiles its 100 kB through V8's code cache as it does kiln's own
 * bundles (cli/kiln.ts), else Node's, resolved from `from` (a module's URL).
 */
export const REQUIRE_HOOK: unique symbol = Symbol.for("kiln.require") as never;

export function requireModule<T>(specifier: "esbuild", from: string): T {
  const hook = (globalThis as { [REQUIRE_HOOK]?: (s: string) => unknown })[REQUIRE_HOOK];
  return (hook ? hook(specifier) : createRequire(from)(specifier)) as T;
}
