// Inputs of the golden tests: derivations written out by hand, a recipe graph evaluated with a
// stub host-tool fingerprinter, and the literal hashes they must keep (fixtures/golden/).
// Nothing here computes an expected value: the expectations are the literals in the JSON file.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { LRUCache } from "lru-cache";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { concat, derivation, fetch, sh, source, type Drv } from "../api.js";
import { inputPlaceholder, outputPlaceholder, SYSTEM, type Derivation, type DrvHash, type HostToolFingerprint } from "../derivation.js";
import { Evaluator } from "../evaluate.js";
import { reachable } from "../graph.js";
import type { HostTools } from "../hosttools.js";
import { loadRecipeSet, selectTarget } from "../loader.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const GOLDEN_DIR = join(REPO, "fixtures", "golden");
export const GOLDEN_SRC = join(GOLDEN_DIR, "src");

export interface GoldenFile {
  encodings: Record<string, string>;
  derivations: Record<string, string>;
  placeholders: Record<string, string>;
  resolved: Record<string, string>;
  evaluated: Record<string, string>;
  sources: Record<string, string>;
}

export function loadGolden(): GoldenFile {
  return JSON.parse(readFileSync(join(GOLDEN_DIR, "derivations.json"), "utf8")) as GoldenFile;
}

/** A fixed fingerprint for a tool: what a host with exactly these binaries would report. */
export function fixedFingerprint(tool: string): HostToolFingerprint {
  const name = tool.startsWith("pkg:") ? tool.slice(4) : tool;
  return {
    path: tool.startsWith("pkg:") ? tool : `/usr/bin/${tool}`,
    package: tool.startsWith("pkg:") ? name : "stub-tools",
    version: "1.0-1",
    digest: `${name.length.toString(16).padStart(2, "0")}`.repeat(32),
    commands: tool.startsWith("pkg:") ? { [`${name}-a`]: `/usr/bin/${name}-a`, [`${name}-b`]: `/usr/bin/${name}-b` } : { [tool]: `/usr/bin/${tool}` },
  };
}

/** A HostTools stand-in for the Evaluator: fixed fingerprints, and a record of what was asked. */
export function stubHostTools(fp: (tool: string) => HostToolFingerprint = fixedFingerprint): { hostTools: HostTools; asked: string[] } {
  const asked: string[] = [];
  const stub = {
    fingerprint(entry: string) {
      asked.push(entry);
      return fp(entry);
    },
  };
  return { hostTools: stub as unknown as HostTools, asked };
}

/** Derivations written out field by field, not through the Evaluator. */
export function handBuilt(hashOf: (d: Derivation) => DrvHash): Record<"minimal" | "multi" | "fixed", Derivation> {
  const minimal: Derivation = {
    name: "minimal",
    system: SYSTEM,
    builder: "/kiln/host/bin/sh",
    args: ["-e", "-u", "-c", "echo hi > $out"],
    env: { out: outputPlaceholder("minimal", "out") },
    inputDrvs: {},
    inputSrcs: [],
    hostTools: { sh: fixedFingerprint("sh") },
    outputs: ["out"],
  };
  const mh = hashOf(minimal);
  const dep = inputPlaceholder(mh, "minimal", "out");
  const multi: Derivation = {
    name: "multi",
    system: SYSTEM,
    builder: "/kiln/host/bin/make",
    args: ["-C", `${dep}/src`, "PREFIX=$out", "DEV=$dev"],
    env: {
      dev: outputPlaceholder("multi", "dev"),
      out: outputPlaceholder("multi", "out"),
      DEP: dep,
      ALPHA: "first",
      "Ü-not-ascii": "ok",
    },
    inputDrvs: { [mh]: ["out"] },
    inputSrcs: ["1w2n1m5l6h3f0x8k4j9c7b2a0z9y8x7w-patches"],
    hostTools: { make: fixedFingerprint("make"), "pkg:coreutils": fixedFingerprint("pkg:coreutils") },
    outputs: ["out", "dev"],
  };
  const fixed: Derivation = {
    name: "source.tar.gz",
    system: SYSTEM,
    builder: "builtin:fetch",
    args: [],
    env: {},
    inputDrvs: {},
    inputSrcs: [],
    hostTools: {},
    outputs: ["out"],
    fixed: { sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" },
  };
  return { minimal, multi, fixed };
}

/** A small recipe graph over fixtures/golden/src, as recipe authors would write it. */
export function goldenRecipes(): { user: Drv; top: Drv; dep: Drv; fetched: Drv } {
  const input = source(GOLDEN_SRC, "input.txt");
  const dir = source(GOLDEN_SRC);
  const dep = derivation({
    name: "golden-dep",
    hostTools: ["pkg:coreutils"],
    env: { B: "2", A: "1", UNSET: undefined },
    outputs: ["out", "dev"],
    script: sh`
      mkdir -p $out $dev
      cp ${input} $out/input.txt
      cp -r ${dir} $dev/src
    `,
  });
  const top = derivation({
    name: "golden-top",
    builder: "gcc",
    args: ["-o", "$out", concat(dep.output("dev"), "/src/main.c"), 3, true],
    env: { DEP: dep, BOTH: [dep, dep.output("dev")] },
  });
  const fetched = fetch({ name: "golden-fetch.txt", sha256: "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03", sources: [{ file: "/nonexistent/golden-fetch.txt" }] });
  const user = derivation({
    name: "golden-user",
    hostTools: ["pkg:coreutils"],
    script: sh`cat ${fetched} ${top} > $out`,
  });
  return { user, top, dep, fetched };
}

/**
 * Compare name -> hash pairs with a golden file. With KILN_UPDATE_GOLDEN=1 the file is written
 * first (a deliberate change of hashes, to be reviewed in the diff), so the comparison passes.
 */
export function assertGolden(file: string, got: Record<string, string>, what: string): void {
  if (process.env.KILN_UPDATE_GOLDEN === "1") writeFileSync(file, JSON.stringify(got, null, 2) + "\n");
  const want = JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  assert.deepEqual(got, want, `${what} changed: if intended, regenerate with KILN_UPDATE_GOLDEN=1 and review the diff`);
}

/** The derivation hash of every node reachable from the targets of a recipe set, by name, host tools stubbed. */
export async function recipeHashes(entry: string, targets: string[], cacheDir: string): Promise<Record<string, string>> {
  const set = await loadRecipeSet(entry, cacheDir);
  const ev = new Evaluator({ hostTools: stubHostTools().hostTools, fileCache: new LRUCache({ max: 1000 }) });
  const roots = targets.flatMap((t) => selectTarget(set, t)).map((t) => ev.evaluate(t.value).node);
  const got: Record<string, string> = {};
  for (const n of reachable(ev.graph, roots)) got[n.name] = n.hash;
  return got;
}
