// Helpers for CLI end-to-end tests: run the compiled kiln (dist/cli/main.js) as a subprocess
// against a temporary store, on temporary copies of fixture recipe sets, and read back what it
// did from its JSON event stream and from the store's SQLite database.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { LocalStore } from "../../store/local-store.js";
import { removeTree } from "../../store/paths.js";
import { allValid, buildRows, closureSql, query, queryFile, storeContents, validPaths, type BuildRowLite } from "../../store/test-helpers/inspect.js";
import { ensureSeedDebs, SEED_DEB_CACHE, SEED_NODES } from "./fixture-seed.js";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
/** the compiled CLI (the shipped bundle; KILN_TEST_CLI=dist/cli/main.js runs the same tests unbundled) */
export const CLI = process.env.KILN_TEST_CLI ? resolve(REPO, process.env.KILN_TEST_CLI) : join(REPO, "dist", "kiln.cjs");
export const FIXTURES = join(REPO, "fixtures");

/** One line of `--reporter json` output. */
export interface Ev {
  type: string;
  node?: { drv: string; name: string };
  kind?: string;
  cutoff?: boolean;
  paths?: Record<string, string>;
  identical?: boolean;
  message?: string;
  line?: string;
  logTail?: string[];
  [k: string]: unknown;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** parsed JSON event lines of stderr (empty unless --reporter json) */
  events: Ev[];
}

export interface RunOptions {
  cwd: string;
  store: string;
  env?: Record<string, string>;
  /** run kiln under this umask (e.g. "077"), to show that builds do not inherit it */
  umask?: string;
  /** run kiln without network: in its own network namespace (unshare), as on a machine that is offline */
  offline?: boolean;
  /**
   * run kiln as a user who owns none of the files it did not create: root without the
   * capabilities that override file permissions (setpriv). Unlike switching to another uid, the
   * checkout (the CLI, node_modules) stays readable wherever it is, a 0700 home included.
   */
  unprivileged?: boolean;
  /** run the launcher as a program (its shell line first, as a user's shell runs `kiln`), not as `node dist/kiln.cjs` */
  asProgram?: boolean;
}

const created: string[] = [];

/** A fresh temporary directory, removed by cleanup(), and in any case when the test file's process ends. */
export function tempDir(label: string): string {
  const d = mkdtempSync(join(tmpdir(), `kiln-test-${label}-`));
  if (created.length === 0) {
    process.once("exit", () => {
      try {
        cleanup();
      } catch {
        /* what could not be removed stays in the temporary directory; the run's result stands */
      }
    });
  }
  created.push(d);
  return d;
}

/**
 * Remove every temporary directory made by tempDir so far (store outputs are read-only:
 * removeTree copes). They stay listed: a describe's tempDir runs when the file is loaded, before
 * any hook, so an earlier describe's after(cleanup) removes it too, and the kiln it is given makes
 * it again; the last cleanup, or the process's end, removes what was made again.
 */
export function cleanup(): void {
  const failed: unknown[] = [];
  for (const d of created) {
    try {
      removeTree(d);
    } catch (e) {
      failed.push(e); // the others are removed all the same
    }
  }
  if (failed.length) throw failed[0];
}

/**
 * A private copy of fixtures/<name>, so a test may edit its sources and recipes, with the shared
 * fixtures/lib beside it (the fixtures import their seed as ../../lib/seed.js), and the seed's
 * .debs in the cache kiln is pointed at.
 */
export function copyFixture(name: string): string {
  const dir = tempDir(`fx-${name}`);
  const dst = join(dir, name);
  cpSync(join(FIXTURES, name), dst, { recursive: true, verbatimSymlinks: true });
  cpSync(join(FIXTURES, "lib"), join(dir, "lib"), { recursive: true, verbatimSymlinks: true });
  ensureSeedDebs();
  for (const e of readdirSync(dst)) if (e.startsWith("result")) rmSync(join(dst, e), { force: true });
  return dst;
}

/** What a test's kiln never takes from the developer's shell: each test decides these. */
export const UNSET_FOR_TESTS = ["KILN_STORE", "KILN_RECIPES", "KILN_MIRRORS", "KILN_BWRAP", "NODE_OPTIONS", "KILN_SUBSTITUTERS", "KILN_TRUSTED_PUBLIC_KEYS", "KILN_SECRET_KEY_FILE", "KILN_CACHE_TIMEOUT", "KILN_BUILDERS", "KILN_DEBIAN_ARCHIVE", "KILN_DEBIAN_SECURITY", "KILN_DEBIAN_SUITE", "KILN_SANDBOX_VIEW"];
/** Nor the developer's kiln.conf (binary caches, builders). */
export const TEST_CONFIG = "/nonexistent/kiln.conf";

/** The environment tests run kiln with (what the developer's shell sets for kiln left out), plus `extra`. */
export function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of UNSET_FOR_TESTS) delete env[k];
  env.KILN_CONFIG = TEST_CONFIG;
  // tests look at what the graph walk does: the no-op record (cli/noop.ts) answers a repeated
  // realize without it, depending on file times; cli/fast.test.ts turns it on
  env.KILN_EVAL_CACHE = "0";
  // the fixtures' seed .debs come from the cache, not from the network (a test may override it)
  env.KILN_MIRRORS = SEED_DEB_CACHE;
  return { ...env, ...extra };
}

export function parseEvents(stderr: string): Ev[] {
  const out: Ev[] = [];
  for (const line of stderr.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      out.push(JSON.parse(line) as Ev);
    } catch {
      /* not an event line */
    }
  }
  return out;
}

export interface Running {
  child: ChildProcess;
  /** events seen so far */
  events: Ev[];
  /** resolves with the first event (already seen or future) matching pred */
  waitFor(pred: (e: Ev) => boolean): Promise<Ev>;
  done: Promise<RunResult>;
}

/** Start kiln without waiting for it. */
export function startKiln(args: string[], o: RunOptions): Running {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const argv = [CLI, "--store", o.store, ...args];
  const opts = { cwd: o.cwd, env: childEnv(o.env), stdio: ["ignore", "pipe", "pipe"] as ["ignore", "pipe", "pipe"] };
  const child = o.umask
    ? spawn("/bin/sh", ["-c", `umask ${o.umask} && exec "$0" "$@"`, process.execPath, ...argv], opts)
    : o.offline
      ? spawn("unshare", ["--net", "--map-root-user", process.execPath, ...argv], opts)
      : o.unprivileged
        ? spawn("setpriv", ["--bounding-set=-dac_override,-dac_read_search", process.execPath, ...argv], opts)
        : o.asProgram
          ? spawn(CLI, argv.slice(1), opts)
          : spawn(process.execPath, argv, opts);
  let stdout = "";
  let stderr = "";
  let partial = "";
  const events: Ev[] = [];
  const waiters: Array<{ pred: (e: Ev) => boolean; resolve: (e: Ev) => void }> = [];
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on("data", (c: Buffer) => {
    const text = c.toString();
    stderr += text;
    const lines = (partial + text).split("\n");
    partial = lines.pop()!;
    for (const l of lines) {
      const [e] = parseEvents(l);
      if (!e) continue;
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
  });
  const done = new Promise<RunResult>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code, signal) => {
      for (const w of waiters.splice(0)) w.resolve({ type: "__exited__" });
      res({ code, signal, stdout, stderr, events: parseEvents(stderr) });
    });
  });
  return {
    child,
    events,
    done,
    waitFor(pred) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((r) => waiters.push({ pred, resolve: r }));
    },
  };
}

/** Run kiln to completion. */
export function kiln(args: string[], o: RunOptions): Promise<RunResult> {
  return startKiln(args, o).done;
}

/** Run kiln with `--reporter json` and fail with its output if the exit code is not the expected one. */
export async function kilnJson(args: string[], o: RunOptions, expectCode = 0): Promise<RunResult> {
  const r = await kiln(["--reporter", "json", ...args], o);
  if (r.code !== expectCode) {
    throw new Error(`kiln ${args.join(" ")} exited with ${r.code} (signal ${r.signal}), expected ${expectCode}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r;
}

/** `started` events of kind build, optionally for one derivation name: one per builder invocation. */
export function buildStarts(events: Ev[], name?: string): Ev[] {
  return events.filter((e) => e.type === "started" && e.kind === "build" && (name === undefined || e.node?.name === name));
}

/** Whether a derivation is the fixtures' seed's (fixtures/lib/seed.ts): a .deb, its unpack, a merged tree. */
export const isSeedNode = (name: string): boolean => SEED_NODES.has(name);

/** Whether a store path (`<hash>-<name>`, as onDisk and validPaths give them) is an output of the fixtures' seed. */
export const isSeedPath = (path: string): boolean => isSeedNode(path.slice(33));

/** The events of the fixture's own derivations: the seed's left out. */
export function withoutSeed(events: Ev[]): Ev[] {
  return events.filter((e) => !e.node || !isSeedNode(e.node.name));
}

export { SEED_DEB_CACHE, seedBuildCount, seedNodeCount } from "./fixture-seed.js";

/** Rows of the store's builds table for the fixture's own derivations (the seed's left out). */
export function ownBuildRows(store: string): BuildRowLite[] {
  return buildRows(store).filter((b) => !isSeedNode(b.name));
}

/**
 * Realize one of the fixtures' seeds (an export of fixtures/lib/seed.ts: "busybox", "tcc") into
 * the store on its own, for a test that wants it there before it looks at the fixture's states.
 */
export async function realizeSeed(seed: "busybox" | "tcc", o: RunOptions): Promise<void> {
  await kilnJson(["--recipes", join(dirname(o.cwd), "lib", "seed.ts"), "realize", "--no-link", seed], o);
}

export function eventsOf(events: Ev[], type: string, name?: string): Ev[] {
  return events.filter((e) => e.type === type && (name === undefined || e.node?.name === name));
}

export { allValid, buildRows, closureSql, query, queryFile, storeContents, validPaths, type BuildRowLite };

export function hostStorePath(store: string, p: string): string {
  return join(store, "store", p);
}

/** What a store holds, by its database: store path name -> content digest. */
export function storeDigests(root: string): Map<string, string> {
  const store = LocalStore.open(root);
  try {
    return new Map(store.allPaths().map((p) => [p.path, p.nar_digest] as [string, string]));
  } finally {
    store.close();
  }
}

/** What is in the store directory on disk, sorted. */
export const onDisk = (store: string): string[] => readdirSync(join(store, "store")).sort();

/** Run git in `cwd` as a test user; its trimmed stdout. A failure throws with git's stderr. */
export function git(cwd: string, ...args: string[]): string {
  const r = spawnSync("git", ["-c", "user.name=kiln test", "-c", "user.email=test@kiln", ...args], { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr}`);
  return r.stdout.trim();
}
