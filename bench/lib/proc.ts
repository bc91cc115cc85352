// Running the commands we time. Every timed command runs under /usr/bin/time (GNU time) so that
// Kiln and its anchors pay the same wrapper cost and all get a peak-RSS figure; wall time is
// taken here, around the whole child process, with the monotonic clock.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Cmd {
  /** argv; argv[0] is looked up on PATH */
  argv: string[];
  cwd?: string;
  /** added to (or, with cleanEnv, instead of) the harness's environment */
  env?: Record<string, string>;
  /** keep stdout (otherwise it goes to /dev/null, as a user redirecting it would) */
  capture?: boolean;
  /** also keep stderr */
  captureStderr?: boolean;
  timeoutMs?: number;
}

export interface RunResult {
  ms: number;
  /** Date.now() just before the spawn and just after the child was reaped (to place child events) */
  startedAt: number;
  endedAt: number;
  /** peak resident set size of the child (and its largest descendant) in KiB, from GNU time */
  maxRssKb: number | undefined;
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const GNU_TIME = "/usr/bin/time";
const scratch = mkdtempSync(join(tmpdir(), "kiln-bench-time-"));
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));

export function haveGnuTime(): boolean {
  return existsSync(GNU_TIME);
}

/** Run once; throws if the command failed (a benchmark of a failing command is meaningless). */
export function run(cmd: Cmd): RunResult {
  const r = runUnchecked(cmd);
  if (r.status !== 0) {
    const tail = (r.stderr || r.stdout).trim().split("\n").slice(-8).map((l) => (l.length > 300 ? `${l.slice(0, 300)}...` : l)).join("\n");
    throw new Error(`command failed (${r.signal ?? `exit ${r.status}`}): ${cmd.argv.join(" ")}\n${tail}`);
  }
  return r;
}

export function runUnchecked(cmd: Cmd): RunResult {
  const rssFile = join(scratch, "rss");
  rmSync(rssFile, { force: true });
  const argv = haveGnuTime() ? [GNU_TIME, "-f", "%M", "-o", rssFile, ...cmd.argv] : cmd.argv;
  const opts: SpawnSyncOptions = {
    cwd: cmd.cwd,
    env: { ...process.env, ...cmd.env },
    stdio: ["ignore", cmd.capture ? "pipe" : "ignore", cmd.captureStderr || !cmd.capture ? "pipe" : "ignore"],
    maxBuffer: 1 << 30,
    timeout: cmd.timeoutMs,
    encoding: "utf8",
  };
  const startedAt = Date.now();
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), opts);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const endedAt = Date.now();
  if (r.error) throw r.error;
  let maxRssKb: number | undefined;
  if (existsSync(rssFile)) {
    // GNU time writes "Command exited with non-zero status N" before the figure on failure
    const last = readFileSync(rssFile, "utf8").trim().split("\n").pop() ?? "";
    const n = Number(last);
    if (Number.isFinite(n) && last !== "") maxRssKb = n;
  }
  return { ms, startedAt, endedAt, maxRssKb, status: r.status, signal: r.signal, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Untimed helper for set-up steps: run a shell line, throw on failure, return stdout. */
export function sh(line: string, opts: { cwd?: string; env?: Record<string, string> } = {}): string {
  const r = spawnSync("sh", ["-c", line], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, encoding: "utf8", maxBuffer: 1 << 30 });
  if (r.status !== 0) throw new Error(`set-up step failed: ${line}\n${(r.stderr || r.stdout || String(r.error)).trim().split("\n").slice(-15).join("\n")}`);
  return r.stdout;
}

/** Does a command exist on PATH? */
export function which(name: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** First line of `cmd --version` (or undefined). */
export function version(argv: string[]): string | undefined {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  if (r.status !== 0) return undefined;
  return (r.stdout || r.stderr).trim().split("\n")[0];
}

/** rm -rf that also works on read-only store trees (Nix and Kiln make outputs 0555). */
export function removeTree(p: string): void {
  if (!existsSync(p)) return;
  try {
    rmSync(p, { recursive: true, force: true });
  } catch {
    spawnSync("chmod", ["-R", "u+w", p]);
    rmSync(p, { recursive: true, force: true });
  }
}
