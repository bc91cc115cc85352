// The BuildRequest: everything a builder needs to run one build, fully written out, sorted and
// free of host paths (no scratch dir, log file or store location: the builder maps those). It is
// what the Builder port receives (engine/builder.ts), locally or on another machine, as Tvix's
// BuildService takes a BuildRequest. toBuildRequest is pure.
import type { StorePathName } from "../store/paths.js";
import { LOGICAL_STORE } from "../store/paths.js";
import { outputPathName, outputPlaceholder, replaceAll, scratchHash, type Derivation, type ResolvedHash } from "./derivation.js";

export interface BuildRequest {
  /** the resolved derivation being built (what its outputs will be registered under) */
  resolved: ResolvedHash;
  name: string;
  system: string;
  /** what runs: a path inside the sandbox, or `builtin:<name>` */
  builder: string;
  args: string[];
  /** the build's environment, keys sorted; its outputs point at their logical scratch paths */
  env: Record<string, string>;
  /** store paths the build may see: the closure of its inputs, sorted */
  inputs: StorePathName[];
  /** the input laid out as the sandbox's /usr (a seed); absent: no /usr, or the host's for host tools */
  usr?: StorePathName;
  /** output name -> the store path name (under /kiln/store) the build writes it to */
  outputs: Record<string, string>;
  /** fixed outputs only: the one kind of build allowed the network */
  network: boolean;
  /**
   * host commands the derivation declared (name -> host path): the visibly impure escape, named
   * in show-derivation and why; empty for a hermetic build
   */
  hostTools: Record<string, string>;
  /** cores the build may use (KILN_BUILD_CORES; not part of any hash) */
  cores: number;
}

/**
 * The request for building a resolved derivation: its own output placeholders become this build's
 * scratch names (unique per resolved derivation, normalised away at registration), and its
 * inputs are the closure of its input paths.
 */
export function toBuildRequest(resolved: Derivation, hash: ResolvedHash, inputClosure: Iterable<StorePathName>, cores: number): BuildRequest {
  const outputs: Record<string, string> = {};
  const map = new Map<string, string>();
  for (const o of resolved.outputs) {
    outputs[o] = `${scratchHash(hash, o)}-${outputPathName(resolved.name, o)}`;
    map.set(outputPlaceholder(resolved.name, o), `${LOGICAL_STORE}/${outputs[o]}`);
  }
  const env: Record<string, string> = {};
  for (const k of Object.keys(resolved.env).sort()) env[k] = replaceAll(resolved.env[k]!, map);
  const hostTools: Record<string, string> = {};
  const tools: Array<[string, string]> = [];
  for (const fp of Object.values(resolved.hostTools)) tools.push(...Object.entries(fp.commands));
  for (const [name, path] of tools.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) hostTools[name] = path;
  return {
    resolved: hash,
    name: resolved.name,
    system: resolved.system,
    builder: replaceAll(resolved.builder, map),
    args: resolved.args.map((a) => replaceAll(a, map)),
    env,
    inputs: [...new Set(inputClosure)].sort(),
    ...(resolved.usr !== undefined ? { usr: resolved.usr.slice(LOGICAL_STORE.length + 1) as StorePathName } : {}),
    outputs,
    network: resolved.fixed !== undefined,
    hostTools,
    cores,
  };
}

/** The hash part a request's output carries while it is being built (normalised at registration). */
export function requestSelfHash(req: BuildRequest, output: string): string {
  return req.outputs[output]!.slice(0, 32);
}
