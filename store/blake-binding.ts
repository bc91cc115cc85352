// Loading BLAKE3's native binding (@napi-rs/blake-hash), apart from store/digest.ts so that the
// launcher (cli/kiln.ts) can load it only when it needs it: the same file, through the same
// require resolution, so the full CLI's digest module finds it in the module cache.
import { createRequire } from "node:module";

export type BlakeHash = typeof import("@napi-rs/blake-hash");

/**
 * The binding and the file it came from. @napi-rs/blake-hash chooses its binary by asking Node
 * for a diagnostic report (is the C library musl?), ~7 ms of every kiln start; on glibc Linux the
 * binary's own package is loaded directly, and the chooser is what is left if that fails (musl,
 * other systems).
 */
export function loadBlake(): { module: BlakeHash; path: string } {
  const require = createRequire(import.meta.url);
  if (process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64")) {
    try {
      const name = `@napi-rs/blake-hash-linux-${process.arch}-gnu`;
      return { module: require(name) as BlakeHash, path: require.resolve(name) };
    } catch {
      /* not installed, or not loadable here: the package's own chooser */
    }
  }
  return { module: require("@napi-rs/blake-hash") as BlakeHash, path: require.resolve("@napi-rs/blake-hash") };
}
