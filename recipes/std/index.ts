// The standard helpers recipe authors use: a shell build step on the bootstrap seed (the stdenv),
// Debian package fetch + unpack, and npm tarballs.
//
// Every build step runs on a seed tree as its whole /usr (engine/builders/sandbox.ts): nothing of
// the host enters it or its hash. Which tree, like Nix's stdenv plus nativeBuildInputs: always
// the `base` set (shell, coreutils, make, perl, gcc...), plus the sets the step names (`seed:
// ["cross-aarch64", "kernel"]`). A step's tree holds what it needs and no more, so that when
// the seed moves (a point release, a security update), only the steps whose tools moved are
// rebuilt: a new QEMU re-runs the boot tests, not the kernel and llama.cpp; a new git re-clones
// the llama.cpp source, and early cutoff stops there when the tree comes out the same. A package
// shared by several trees is fetched and unpacked once; each union tree costs one merge (hard
// links) and its registration.
import { derivation, type DerivationArgs, type Drv, type Value } from "kiln";
import { seed, type SeedSet } from "./seed.js";

export { fetchDeb, fetchDebFromPool, fetchDebSource, fetchNpm, type DebSourceSpec, type DebSpec, type NpmSpec } from "./fetch.js";
export { BUILD_TRIPLE, native, PHASES, pkg, package, packageScript, rootTree, type PackageArgs, type Phase, type Platform, type Toolchain } from "./stdenv.js";
export { seed, type SeedSet } from "./seed.js";

export interface BuildArgs extends Omit<DerivationArgs, "script" | "builder" | "args" | "usr" | "hostTools"> {
  /** the build script (sh -e -u), run in /build with $out set */
  script: Value;
  /** seed sets the step needs besides `base` (recipes/std/seed/sets.json) */
  seed?: readonly SeedSet[];
}

/** A shell build step on the seed tree of `base` and the sets given. */
export function build(a: BuildArgs): Drv {
  const { seed: sets = [], script, ...rest } = a;
  return derivation({ ...rest, usr: seed("base", ...sets), script });
}

/** The files of a .deb (its data part), unpacked by kiln itself (merged-/usr: bin -> usr/bin). */
export function unpackDeb(name: string, deb: Drv): Drv {
  return derivation({ name, builder: "builtin:unpack-deb", args: [deb] });
}
