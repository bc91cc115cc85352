// import() of what kiln loads at run time: the recipe bundle, optional packages (esbuild, the S3
// client, lzma), the TUI. The shipped CLI (dist/kiln-main.cjs) is compiled by the launcher with
// V8's code cache (cli/kiln.ts), and a script compiled that way has no import() of its own: the
// launcher hands in its own. Run any other way (compiled modules, a TypeScript loader): the plain
// import(). Bare specifiers resolve the same from either, within kiln's own package.
export const IMPORT_HOOK: unique symbol = Symbol.for("kiln.import") as never;

export function importModule<T = Record<string, unknown>>(specifier: string): Promise<T> {
  const hook = (globalThis as { [IMPORT_HOOK]?: (s: string) => Promise<unknown> })[IMPORT_HOOK];
  return (hook ? hook(specifier) : import(specifier)) as Promise<T>;
}
