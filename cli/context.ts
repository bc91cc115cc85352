// The composition root: the only place that reads process.env and the working directory and
// decides where output goes. It builds the one Context the engine receives.
import { existsSync } from "node:fs";
import { availableParallelism, homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { Context } from "../engine/context.js";
import type { EventSink, KilnEvent } from "../engine/events.js";
import { HostTools } from "../engine/hosttools.js";
import { PersistentDigestCache } from "../store/digest-cache.js";
import { Store } from "../store/store.js";
import { jsonReporter } from "./reporters/json.js";
import { plainReporter } from "./reporters/plain.js";

export interface GlobalArgs {
  store?: string;
  recipes?: string;
  jobs?: number;
  cores?: number;
  "keep-going"?: boolean;
  reporter?: string;
  "print-build-logs"?: boolean;
  mirror?: string[];
}

export function storeRoot(args: GlobalArgs): string {
  if (args.store) return resolve(args.store);
  if (process.env.KILN_STORE) return resolve(process.env.KILN_STORE);
  const data = process.env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(data, "kiln");
}

/** recipes/index.ts in the current directory or the nearest parent that has one. */
export function recipesEntry(args: GlobalArgs): string {
  if (args.recipes) return resolve(args.recipes);
  if (process.env.KILN_RECIPES) return resolve(process.env.KILN_RECIPES);
  let dir = process.cwd();
  for (;;) {
    const cand = join(dir, "recipes", "index.ts");
    if (existsSync(cand)) return cand;
    const up = dirname(dir);
    if (up === dir) return join(process.cwd(), "recipes", "index.ts");
    dir = up;
  }
}

export function makeReporter(args: GlobalArgs): EventSink {
  const write = (s: string) => process.stderr.write(s);
  const kind = args.reporter ?? "plain";
  if (kind === "json") return jsonReporter(write, Date.now);
  if (kind === "quiet") return () => {};
  return plainReporter({ write, logs: Boolean(args["print-build-logs"]), now: Date.now });
}

export function makeContext(args: GlobalArgs, signal: AbortSignal, events?: EventSink): Context & { root: string } {
  const root = storeRoot(args);
  const store = Store.open(root);
  const hostTools = new HostTools((process.env.PATH ?? "/usr/bin:/bin").split(":").filter(Boolean), {
    get: (k) => store.db.prepare<[string], { json: string }>("SELECT json FROM host_tool_cache WHERE key = ?").get(k)?.json,
    put: (k, j) => store.db.prepare("INSERT OR REPLACE INTO host_tool_cache (key, json) VALUES (?, ?)").run(k, j),
  });
  const cores = availableParallelism();
  const fetchEnv: Record<string, string> = {};
  for (const k of ["PATH", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY", "HOME"]) {
    if (process.env[k]) fetchEnv[k] = process.env[k]!;
  }
  const mirrors = [...(args.mirror ?? []), ...(process.env.KILN_MIRRORS ?? "").split(":").filter(Boolean)].map((m) => resolve(m));
  return {
    root,
    store,
    hostTools,
    events: events ?? makeReporter(args),
    clock: Date.now,
    signal,
    fileCache: new PersistentDigestCache(store.db),
    config: {
      jobs: args.jobs && args.jobs > 0 ? args.jobs : cores,
      // like Nix's default, each build may use every core; make's own jobserver shares them
      buildCores: args.cores && args.cores > 0 ? args.cores : cores,
      keepGoing: Boolean(args["keep-going"]),
      mirrors,
      bwrap: process.env.KILN_BWRAP || "bwrap",
      fetchEnv,
    },
  };
}

export type { KilnEvent };
