// Building a node: its local sources into the store, the BuildRequest handed to the builder, the
// log kept, the outcome checked (exit code, every declared output present, a fixed output's
// sha256), and the outputs registered with the realisations and the build record in the
// registration transaction.
import { copyFileSync, cpSync, lstatSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { sha256File } from "../store/digest.js";
import { isKilnError, KilnError } from "../store/errors.js";
import { diskFull, fullDisk } from "../store/failures.js";
import { removeTree, type StorePathName } from "../store/paths.js";
import { BuildLog } from "./build-log.js";
import { requestSelfHash, toBuildRequest, type BuildRequest } from "./build-request.js";
import type { BuildResult } from "./builder.js";
import { outputPathName, type Derivation, type InputRealisation, type ResolvedHash } from "./derivation.js";
import type { Node } from "./evaluate.js";
import type { Outputs } from "./plan.js";
import type { StepEnv, StepOutcome } from "./steps.js";
import { nodeRef } from "./graph.js";

/** A failed step's error, with the log lines a reporter shows. */
export function withLog(e: KilnError, log: BuildLog): KilnError {
  Object.assign(e.context, { logTail: log.tail, logFile: log.file });
  return e;
}

/** Copy local sources into the store if they are not there yet; they must still match evaluation. */
export function addSources(s: StepEnv, n: Node): void {
  const store = s.ctx.store;
  for (const [want, host] of n.sources) {
    if (s.protect([want])) continue;
    const scratch = store.scratchDir("source");
    try {
      const name = want.slice(33);
      const dst = join(scratch, name);
      if (lstatSync(host).isDirectory()) cpSync(host, dst, { recursive: true, verbatimSymlinks: true });
      else copyFileSync(host, dst);
      const { path } = store.addOutput({ scratch: dst, name, candidates: [] }, () => {});
      if (path !== want) {
        throw new KilnError("SOURCE_MISSING", `source ${host} changed while kiln was running (${n.name})`, "run the command again");
      }
    } finally {
      removeTree(scratch);
    }
  }
}

/** The request for `n`, resolved: its input closure from the store. */
export function requestFor(s: StepEnv, resolved: Derivation, hash: ResolvedHash): BuildRequest {
  const closure = s.ctx.store.closure(resolved.inputSrcs as StorePathName[]);
  return toBuildRequest(resolved, hash, closure, s.ctx.config.buildCores);
}

/** Refuse a request no builder here can run (another system). */
export function checkSystem(s: StepEnv, n: Node, req: BuildRequest): void {
  const systems = s.ctx.builder.systems;
  if (systems.includes(req.system)) return;
  throw new KilnError("SYSTEM_UNSUPPORTED", `${n.name} is a derivation for ${req.system}, and this machine builds only for ${systems.join(", ")}`,
    `build it on a ${req.system} machine (a remote builder), or make the recipe cross-compile: keep system ${systems[0]} and name the target platform in the build`,
    { drv: n.hash, system: req.system });
}

/** The log directories this process made or found. */
const logDirs = new Set<string>();

export async function buildStep(s: StepEnv, n: Node, resolved: Derivation, hash: ResolvedHash, inputs: InputRealisation[], started: () => void): Promise<StepOutcome> {
  const store = s.ctx.store;
  addSources(s, n);
  const req = requestFor(s, resolved, hash);
  checkSystem(s, n, req);
  s.ctx.builder.checkAvailable();
  const logDir = join(store.logDir, hash.slice(0, 2));
  // made once per process (256 of them at most): a metadata call per build less
  if (!logDirs.has(logDir)) {
    try {
      mkdirSync(logDir, { recursive: true });
      logDirs.add(logDir);
    } catch {
      /* the log cannot be written (a full disk): BuildLog keeps why, and the build goes on */
    }
  }
  const log = new BuildLog(join(logDir, `${hash}.log`), (line) => s.log(n, line));
  const t0 = s.ctx.clock();
  const buildId = store.startBuild({
    drvHash: n.hash, resolvedHash: hash, name: n.name, logFile: log.file, startedAt: t0,
    inputs: Object.fromEntries(inputs.map((i) => [`${i.drvHash}!${i.output}`, i.path])),
  });
  started();
  let result: BuildResult | undefined;
  // what the builder left goes before the build's record is written: a build that filled the
  // disk leaves room for it
  const release = (later?: boolean) => {
    const r = result;
    result = undefined;
    r?.release(later);
  };
  try {
    try {
      result = await s.ctx.builder.build(req, { signal: s.signal, onOutput: log.write, where: (machine) => s.ctx.events({ type: "dispatched", node: nodeRef(n), machine }) });
    } finally {
      log.close();
    }
    const r = result;
    const outcome = checkOutcome(s, n, req, r, log);
    if (outcome) {
      release();
      await recordWhenRoom(() => store.finishBuild(buildId, outcome.status, outcome.exitCode, s.ctx.clock()), store.tmpDir);
      throw outcome.error;
    }
    return register(s, n, req, r, hash, buildId);
  } catch (e) {
    release();
    // a full disk or a damaged database is this build's failure, named, like any other
    const failure = isKilnError(e) ? e : store.failure(e);
    if (!failure?.context.recorded) {
      // a failure the checks above did not record (the builder could not start, registration failed)
      try {
        store.finishBuild(buildId, "failed", null, s.ctx.clock());
      } catch (again) {
        // the store fails as well: the failure above is the one to tell; the next run finds the row's process gone
        if (!store.failure(again)) throw again;
      }
    }
    throw failure ? withLog(failure, log) : e;
  } finally {
    // registered (or failed and released above): nothing waits for this space
    release(true);
  }
}

/**
 * Write a failed build's record once what it left is gone. The overlay a build sees the store
 * through (StoreView) lets go of its layers a few milliseconds after the build's processes end,
 * not as they end: on a disk the build filled, the space of its removed scratch dir comes back only
 * then, and the record waits for it (2 s at most).
 */
async function recordWhenRoom(write: () => void, dir: string): Promise<void> {
  for (let waited = 0; ; waited += 20) {
    try {
      write();
      return;
    } catch (e) {
      if (!fullDisk(String((e as { code?: unknown }).code ?? ""), dir) || waited >= 2000) throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Why a finished build is not a success, if it is not. */
function checkOutcome(s: StepEnv, n: Node, req: BuildRequest, r: BuildResult, log: BuildLog): { status: "failed" | "cancelled"; exitCode: number | null; error: KilnError } | undefined {
  const recorded = { recorded: true };
  if (s.signal.aborted) return { status: "cancelled", exitCode: r.exitCode, error: new KilnError("CANCELLED", `${n.name}: cancelled`, undefined, recorded) };
  if (r.exitCode !== 0) {
    const how = r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`;
    const disk = log.writeError ? ` (and its log could not be written: ${log.writeError.code === "ENOSPC" ? "no space left on device" : log.writeError.message})` : "";
    // a build that filled the disk fails for that; saying so saves reading its log (taken before its scratch goes)
    const full = !log.writeError && diskFull(s.ctx.store.tmpDir) ? `; no space left on device: the file system holding the store ${s.ctx.store.root} is full` : "";
    return {
      status: "failed", exitCode: r.exitCode,
      error: new KilnError("BUILD_FAILED", `builder for ${n.name} ${how}${disk}${full}`,
        `${disk || full ? "free space on the file system holding the store (kiln gc deletes what no root keeps), then run it again; " : ""}full log: kiln log ${n.name}  (${log.file})`,
        { drv: n.hash, exitCode: r.exitCode, ...recorded }),
    };
  }
  for (const o of Object.keys(req.outputs)) {
    if (r.outputs[o] === undefined) {
      return {
        status: "failed", exitCode: 0,
        error: new KilnError("OUTPUT_MISSING", `builder for ${n.name} succeeded but did not create output '${o}' ($${o})`, `the build must write its result to the path in $${o}`, recorded),
      };
    }
  }
  // a host tool upgraded while the build ran: the output was made by neither version for sure
  const tools = Object.keys(n.drv.hostTools);
  const changed = tools.length ? s.ctx.hostTools.changedSince(tools) : undefined;
  if (changed) {
    return {
      status: "failed", exitCode: 0,
      error: new KilnError("BUILD_FAILED", `host tool ${changed} changed while ${n.name} was building; its output is not registered`,
        "run the command again: the next evaluation fingerprints the tool as it is now", recorded),
    };
  }
  if (n.drv.fixed) {
    const host = r.outputs.out!;
    const actual = lstatSync(host).isFile() ? sha256File(host) : "(not a regular file)";
    if (actual !== n.drv.fixed.sha256) {
      return {
        status: "failed", exitCode: 0,
        error: new KilnError("FIXED_OUTPUT_MISMATCH", `fixed output ${n.name}: hash mismatch\n  expected sha256 ${n.drv.fixed.sha256}\n  actual   sha256 ${actual}`,
          "if the new bytes are right, update sha256 in the recipe to the actual hash", recorded),
      };
    }
  }
  return undefined;
}

/** Register every output; the last one's transaction records the realisations and completes the build record. */
function register(s: StepEnv, n: Node, req: BuildRequest, r: BuildResult, hash: ResolvedHash, buildId: number): StepOutcome {
  const store = s.ctx.store;
  const outputs: Outputs = {};
  let anyNew = false;
  const names = Object.keys(req.outputs);
  for (const [i, o] of names.entries()) {
    const last = i === names.length - 1;
    const reg = store.addOutput(
      { scratch: r.outputs[o]!, name: outputPathName(n.name, o), selfHash: requestSelfHash(req, o), candidates: req.inputs, deriver: n.hash,
        ...(n.drv.fixed ? { ca: `sha256:${n.drv.fixed.sha256}` } : {}) },
      (id, path) => {
        if (n.drv.fixed) store.insertFixed(n.drv.fixed.sha256, id);
        if (!last) return;
        const all: Outputs = { ...outputs, [o]: path };
        for (const [name, p] of Object.entries(all)) store.insertRealisation(hash, name, p === path ? id : store.pathId(p)!);
        const now = s.ctx.clock();
        store.completeBuild(buildId, all, now);
        store.recordResolution(n.hash, hash, now);
      },
    );
    outputs[o] = reg.path;
    anyNew ||= reg.fresh;
  }
  return { outputs, fresh: true, identical: !anyNew };
}
