// The composition root: the only place that reads process.env and the working directory and
// decides where output goes. It builds the one Context the engine receives.
import { closeSync, fstatSync, openSync, readFileSync, readSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import type { Context } from "../engine/context.js";
import type { EventSink, KilnEvent } from "../engine/events.js";
import { LocalBuilder } from "../engine/builders/local.js";
import { SandboxBuilder } from "../engine/builders/sandbox.js";
import { hostSystem } from "../engine/derivation.js";
import { findOnPath, HostTools } from "../engine/hosttools.js";
import { recipeSetRoot } from "../engine/recipe-snapshot.js";
import { buildDurations } from "../store/history.js";
import { LocalStore, type OpenStoreOptions } from "../store/local-store.js";
import { BuildReasons } from "./build-reasons.js";
import { jsonReporter } from "./reporters/json.js";
import { loadTui } from "./reporters/load-tui.js";
import { plainReporter } from "./reporters/plain.js";
import { settingsOf, type CacheArgs } from "./settings.js";
import { BinaryCache } from "../engine/cache/binary-cache.js";
import { openBackend } from "../engine/cache/backend.js";
import type { Builder } from "../engine/builder.js";
import { RemoteBuilders } from "../engine/builders/remote.js";
import { parseMachine, SshMachine, type MachineSpec } from "../engine/builders/ssh.js";
import { KilnError } from "../store/errors.js";
import { parsePublicKey } from "../engine/cache/signing.js";

export interface GlobalArgs extends CacheArgs {
  store?: string;
  recipes?: string;
  jobs?: number;
  cores?: number;
  "keep-going"?: boolean;
  reporter?: string;
  "print-build-logs"?: boolean;
  mirror?: string[];
  "eval-cache"?: boolean;
}

export { evalCacheOn, recipesEntry, storeRoot } from "./locate.js";
import { recipesEntry, storeRoot } from "./locate.js";
import { isTerminal } from "./output.js";

/** The reporter asked for, else the TUI on an interactive terminal and plain lines elsewhere (CI, pipes). */
export function reporterKind(args: GlobalArgs): "tui" | "plain" | "json" | "quiet" {
  const k = args.reporter;
  if (k === "tui" || k === "plain" || k === "json" || k === "quiet") return k;
  const interactive = isTerminal(2) && !process.env.CI && process.env.TERM !== "dumb";
  return interactive && !args["print-build-logs"] ? "tui" : "plain";
}

export function makeReporter(args: GlobalArgs): EventSink {
  const write = (s: string) => process.stderr.write(s);
  const kind = args.reporter ?? "plain";
  if (kind === "json") return jsonReporter(write, Date.now);
  if (kind === "quiet") return () => {};
  return plainReporter({ write, logs: Boolean(args["print-build-logs"]), now: Date.now });
}

/** An event sink with an end: the TUI must draw its last frame and let go of the terminal. */
export interface Reporter {
  events: EventSink;
  close(): Promise<void>;
}

export interface ReporterHooks {
  /** cancel the running command (the TUI's q) */
  cancel: () => void;
  /** quit at once (q twice) */
  forceQuit: () => void;
  /** the store, once opened: recorded build durations give the TUI its ETA */
  store: () => LocalStore | undefined;
}

function jobsOf(args: GlobalArgs): number {
  return args.jobs && args.jobs > 0 ? args.jobs : availableParallelism();
}

/** The reporter for a command; the TUI (ink, react) is loaded only when it is the one. */
export async function openReporter(args: GlobalArgs, hooks: ReporterHooks): Promise<Reporter> {
  if (reporterKind(args) !== "tui") {
    const events = makeReporter({ ...args, reporter: reporterKind(args) });
    return { events, close: async () => {} };
  }
  let tuiReporter: Awaited<ReturnType<typeof loadTui>>["tuiReporter"];
  try {
    ({ tuiReporter } = await loadTui());
  } catch (e) {
    // e.g. a bundle shipped without dist/cli (see load-tui.ts): progress still shows, in lines
    process.stderr.write(`kiln: the TUI could not be loaded (${(e as Error).message.split("\n")[0]}); using plain output\n`);
    return { events: makeReporter({ ...args, reporter: "plain" }), close: async () => {} };
  }
  const logs = join(storeRoot(args), "logs");
  const reasons = new BuildReasons({ relativeTo: process.cwd(), now: Date.now, root: recipeSetRoot(recipesEntry(args)) });
  const tui = tuiReporter({
    stdout: process.stderr,
    stdin: process.stdin,
    now: Date.now,
    jobs: jobsOf(args),
    cancel: hooks.cancel,
    forceQuit: hooks.forceQuit,
    readLog: (n) => {
      const file = n.logFile ?? (n.kind === "build" && n.resolved ? join(logs, n.resolved.slice(0, 2), `${n.resolved}.log`) : undefined);
      return file ? readLogTail(file) : undefined;
    },
    reasonOf: (n) => reasons.short(n),
    whyOf: (n) => reasons.lines(n),
  });
  return {
    events: (e) => {
      const store = hooks.store();
      if (e.type === "planned" && store) {
        // before the build records anything: what each node is compared with
        reasons.planned(store, e);
        tui.events(withEstimates(store, e));
      } else tui.events(e);
    },
    close: tui.close,
  };
}

/** The planned event with each node's recorded build duration, for the TUI's ETA. */
export function withEstimates(store: LocalStore, e: Extract<KilnEvent, { type: "planned" }>): KilnEvent {
  const est = buildDurations(store, e.nodes.filter((n) => n.state !== "cached").map((n) => ({ hash: n.drv, name: n.name })));
  return { ...e, nodes: e.nodes.map((n) => (est.has(n.drv) ? { ...n, estimateMs: est.get(n.drv)!.ms } : n)) };
}

/** The last lines of a log file (at most its last 1 MiB), or undefined when there is none. */
export function readLogTail(file: string, maxBytes = 1 << 20): string[] | undefined {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    const lines = buf.toString("utf8").split("\n");
    if (size > len) lines.shift(); // a partial first line
    if (lines.at(-1) === "") lines.pop();
    return lines;
  } finally {
    closeSync(fd);
  }
}

/** The bubblewrap binary, for builds (engine/builders/sandbox.ts) and for kiln run and shell (cli/launch.ts). */
export function bwrapBinary(): string {
  // bubblewrap runs with an empty environment: it is found here, by an absolute path
  return process.env.KILN_BWRAP || findOnPath("bwrap", (process.env.PATH ?? "").split(":").filter((d) => d.startsWith("/"))) || "bwrap";
}

export interface ContextOptions {
  /**
   * false: the verb builds and substitutes nothing (gc), so the builders' and caches' settings
   * (--builders, --substituters, kiln.conf...) are read only if something asks for them, and a
   * mistake in them cannot fail it; otherwise they are read, and checked, before the verb runs
   */
  settings?: boolean;
}

export function makeContext(args: GlobalArgs, signal: AbortSignal, events?: EventSink, open: OpenStoreOptions = {}, o: ContextOptions = {}): Context & { root: string } {
  const root = storeRoot(args);
  const store = LocalStore.open(root, open);
  const hostTools = new HostTools((process.env.PATH ?? "/usr/bin:/bin").split(":").filter(Boolean), store.hostToolCache());
  const cores = availableParallelism();
  const fetchEnv: Record<string, string> = {};
  for (const k of ["PATH", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "HOME", "npm_config_registry", "KILN_DEBIAN_ARCHIVE", "KILN_DEBIAN_SECURITY", "KILN_DEBIAN_SUITE"]) {
    if (process.env[k]) fetchEnv[k] = process.env[k]!;
  }
  const mirrors = [...(args.mirror ?? []), ...(process.env.KILN_MIRRORS ?? "").split(":").filter(Boolean)].map((m) => resolve(m));
  const sink = events ?? makeReporter(args);
  let builder: Builder | undefined;
  let substituters: BinaryCache[] | undefined;
  const ctx: Context & { root: string } = {
    root,
    store,
    get builder() {
      return (builder ??= builderOf(args, store, (message) => sink({ type: "warning", message })));
    },
    get substituters() {
      return (substituters ??= substitutersOf(args, sink));
    },
    hostTools,
    events: sink,
    clock: Date.now,
    signal,
    fileCache: store.fileDigests(),
    config: {
      jobs: jobsOf(args),
      // like Nix's default, each build may use every core; make's own jobserver shares them
      buildCores: args.cores && args.cores > 0 ? args.cores : cores,
      keepGoing: Boolean(args["keep-going"]),
      mirrors,
      fetchEnv,
    },
  };
  if (o.settings !== false) {
    // made now: a mistake in the settings is reported before anything is evaluated or built
    void ctx.builder;
    void ctx.substituters;
  }
  return ctx;
}

/** This machine's builder: the builtins in-process, the rest in the bubblewrap sandbox. */
export function localBuilder(store: LocalStore, warn?: (message: string) => void): LocalBuilder {
  return new LocalBuilder(new SandboxBuilder({
    bwrap: bwrapBinary(), storeDir: store.storeDir, systems: [hostSystem()],
    scratchDir: (label) => store.scratchDir(label), scratchName: (label) => store.scratchName(label), ...(warn ? { warn } : {}),
  }), { storeDir: store.storeDir, scratchDir: (label) => store.scratchDir(label) });
}

/** The local builder, with the remote builders (--builders, KILN_BUILDERS, kiln.conf) around it if there are any. */
function builderOf(args: GlobalArgs, store: LocalStore, warn: (message: string) => void): Builder {
  const local = localBuilder(store, warn);
  const specs = machineSpecs(settingsOf(args).builders);
  if (specs.length === 0) return local;
  const machines = specs.map((spec) => new SshMachine(spec, { store, processDir: () => store.processDir() }));
  return new RemoteBuilders(machines, local, Date.now);
}

/** Builder URLs, and the machines files named as @FILE (a URL a line, # comments). */
function machineSpecs(entries: string[]): MachineSpec[] {
  const uris: string[] = [];
  for (const e of entries) {
    if (!e.startsWith("@")) {
      uris.push(e);
      continue;
    }
    let text: string;
    try {
      text = readFileSync(e.slice(1), "utf8");
    } catch (err) {
      throw new KilnError("USAGE", `cannot read the machines file ${e.slice(1)}: ${(err as Error).message}`, "give --builders @FILE with one builder URL a line");
    }
    for (const line of text.split("\n")) if (line.replace(/#.*/, "").trim()) uris.push(line.replace(/#.*/, "").trim());
  }
  return uris.map((u) => parseMachine(u, hostSystem()));
}

/** The binary caches to substitute from, in the order given, each believing the trusted keys. */
export function substitutersOf(args: GlobalArgs, events: EventSink): BinaryCache[] {
  const s = settingsOf(args);
  const trusted = s.trustedPublicKeys.map((k, i) => parsePublicKey(k, `trusted public key ${i + 1}`));
  const warn = (message: string) => events({ type: "warning", message });
  return s.substituters.map((url) => new BinaryCache(openBackend(url, { timeoutMs: s.cacheTimeoutMs }), { trusted, warn }));
}

export type { KilnEvent };
