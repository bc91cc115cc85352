// The sandbox server: dist/kiln-sandbox --serve (sandbox-helper.c), started once and asked to
// start every build. Forking kiln's own process for each build copies its page tables (~1.7 ms
// a build at ~140 MB of memory, more as it grows); the server is a small C process whose fork
// costs a tenth of a millisecond. It makes the build's sandbox itself, from the options kiln
// would give bubblewrap (namespaces, overlay, mounts, the build's command as its pid 1's child),
// in one process where bubblewrap took three. The protocol is in the C file.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { constants } from "node:os";
import { KilnError } from "../../store/errors.js";
import type { Writable } from "node:stream";

export interface ServerLaunch {
  /**
   * "sandbox": the server makes the build's sandbox itself, from bubblewrap's options (the ones
   * kiln gives), and runs `argv` in it; "process": it runs `argv` (bubblewrap) in the namespace
   * and overlay, `options` on its fd 3
   */
  kind: "sandbox" | "process";
  /** the build's working directory on the host (its scratch dir) */
  cwd: string;
  /** the overlay's options, or "" for no overlay of its own */
  overlay: string;
  /** the command: the build's own ("sandbox"), or bubblewrap's command line ("process") */
  argv: string[];
  /** bubblewrap's options, NUL-terminated */
  options: Buffer;
}

export interface ServerResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** why the sandbox could not be set up ("kiln-sandbox: ..."), when it could not */
  setupError?: string;
}

interface Pending {
  onOutput: (chunk: Buffer) => void;
  done: (r: ServerResult) => void;
  fail: (e: Error) => void;
}

/** Signal numbers to names, from Node's own table. */
const SIGNALS = new Map(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** The exit code and signal of a raw wait status, as Node's 'close' event gives them. */
export function waitStatus(st: number): { exitCode: number | null; signal: NodeJS.Signals | null } {
  const sig = st & 0x7f;
  if (sig === 0) return { exitCode: (st >> 8) & 0xff, signal: null };
  return { exitCode: null, signal: SIGNALS.get(sig) ?? (`SIG${sig}` as NodeJS.Signals) };
}

/** A request's frame: its length, its type, the id it concerns, its payload. */
function frame(type: "B" | "S" | "P" | "G" | "K" | "X" | "R", id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUInt32LE(5 + payload.length, 0);
  head.write(type, 4, "latin1");
  head.writeUInt32LE(id, 5);
  return Buffer.concat([head, payload]);
}

/** A build request's frame. */
function buildFrame(id: number, launch: ServerLaunch): Buffer {
  return frame(launch.kind === "sandbox" ? "S" : "B", id, Buffer.concat([Buffer.from(`${launch.cwd}\0${launch.overlay}\0`), commandPayload(launch.argv, launch.options)]));
}

/** The payload of a command and its options: argc, argv, then the options, all NUL-terminated. */
function commandPayload(argv: string[], options: Buffer): Buffer {
  const argc = Buffer.alloc(4);
  argc.writeUInt32LE(argv.length);
  return Buffer.concat([argc, Buffer.from(argv.map((a) => `${a}\0`).join("")), options]);
}

/**
 * A sandbox made ahead of its build (SandboxServer.makeAhead): namespaces, overlay and the first
 * part of its root, waiting for the build that will use it (SandboxServer.start). `ended`: it is
 * gone (a setup that failed, a kill): it cannot be used.
 */
export interface PreparedSandbox {
  readonly id: number;
  ended: boolean;
}

/** The whole events in `buf` (id, type, data), each to `fn`; returns how many bytes they took. */
function eachEvent(buf: Buffer, fn: (id: number, type: number, data: Buffer) => void): number {
  let at = 0;
  while (buf.length - at >= 9) {
    const len = buf.readUInt32LE(at + 5);
    if (buf.length - at - 9 < len) break;
    fn(buf.readUInt32LE(at), buf[at + 4]!, buf.subarray(at + 9, at + 9 + len));
    at += 9 + len;
  }
  return at;
}

/** A 'D' event's data: the wait status, then why the sandbox could not be set up, if it could not. */
function doneOf(data: Buffer): ServerResult {
  const why = data.subarray(4).toString("utf8");
  return { ...waitStatus(data.readUInt32LE(0)), ...(why ? { setupError: why } : {}) };
}

/**
 * The server's process: an empty environment, and a command line without its host path. A
 * sandbox's pid 1 is a fork of the server, and a build can read /proc/1/cmdline.
 */
const SERVER_PROCESS = { env: {}, argv0: "kiln-sandbox" };

const OUTPUT = 0x4f; // 'O'
const DONE = 0x44; // 'D'

/**
 * One build through a server of its own, synchronously: how the store view's probe tries the way
 * every build will take (the server's descriptors, its fork, the namespace, the overlay, bubblewrap).
 */
export function serveOnce(program: string, launch: ServerLaunch): ServerResult & { output: string; error?: string } {
  const r = spawnSync(program, ["--serve"], { input: buildFrame(1, launch), ...SERVER_PROCESS, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 1 << 24 });
  if (r.error || r.status !== 0) return { exitCode: null, signal: null, output: "", error: String(r.error ?? (r.stderr.toString().trim() || `the server exited ${r.status ?? r.signal}`)) };
  let output = "";
  let done: ServerResult | undefined;
  eachEvent(r.stdout, (_id, type, data) => {
    if (type === OUTPUT) output += data.toString();
    else if (type === DONE) done ??= doneOf(data);
  });
  return done ? { ...done, output } : { exitCode: null, signal: null, output, error: "the server ended without the build's end" };
}

export class SandboxServer {
  #child: ChildProcess | undefined;
  #pending = new Map<number, Pending>();
  /** prepared sandboxes not started: they do not keep kiln running */
  #prepared = new Set<number>();
  #nextId = 1;
  #buf = Buffer.alloc(0);
  #stderr = "";

  constructor(private readonly program: string) {}

  /** Start a build; its output goes to onOutput as it comes; abort kills its process group. */
  run(launch: ServerLaunch, onOutput: (chunk: Buffer) => void, signal: AbortSignal): Promise<ServerResult> {
    const id = this.#nextId++;
    const kill = () => this.#send(frame("K", id));
    return new Promise<ServerResult>((resolve, reject) => {
      signal.addEventListener("abort", kill, { once: true });
      this.#request(buildFrame(id, launch), id, {
        onOutput,
        done: (r) => { signal.removeEventListener("abort", kill); resolve(r); },
        fail: (e) => { signal.removeEventListener("abort", kill); reject(e); },
      });
      if (signal.aborted) kill();
    });
  }

  /**
   * Make a sandbox ahead of the build that will use it: its namespaces, its overlay over `cwd`,
   * and its root as `options` (the part of bubblewrap's options every build of its kind shares)
   * lay it out; then it waits for `start`. A sandbox never started does not keep kiln running;
   * `discard` ends it.
   */
  makeAhead(launch: { cwd: string; overlay: string; options: Buffer }): PreparedSandbox {
    const id = this.#nextId++;
    const p: PreparedSandbox = { id, ended: false };
    this.#prepared.add(id);
    this.#request(frame("P", id, Buffer.concat([Buffer.from(`${launch.cwd}\0${launch.overlay}\0`), commandPayload([], launch.options)])), id, {
      onOutput: () => {},
      done: () => { p.ended = true; this.#prepared.delete(id); },
      fail: () => { p.ended = true; this.#prepared.delete(id); },
    });
    return p;
  }

  /**
   * Start the build in a prepared sandbox: its command (`argv`) and the rest of its options (the
   * inputs, the build directory, the environment). Settles as `run` does; a sandbox that ended
   * before (p.ended) is for the caller to check.
   */
  start(p: PreparedSandbox, argv: string[], options: Buffer, onOutput: (chunk: Buffer) => void, signal: AbortSignal): Promise<ServerResult> {
    const kill = () => this.#send(frame("K", p.id));
    return new Promise<ServerResult>((resolve, reject) => {
      signal.addEventListener("abort", kill, { once: true });
      this.#prepared.delete(p.id);
      this.#pending.set(p.id, {
        onOutput,
        done: (r) => { p.ended = true; signal.removeEventListener("abort", kill); resolve(r); },
        fail: (e) => { p.ended = true; signal.removeEventListener("abort", kill); reject(e); },
      });
      if (this.#child) this.#ref(this.#child);
      this.#send(frame("G", p.id, commandPayload(argv, options)));
      if (signal.aborted) kill();
    });
  }

  /** End a prepared sandbox that will not be used. */
  discard(p: PreparedSandbox): void {
    if (p.ended) return;
    p.ended = true;
    this.#send(frame("K", p.id));
  }

  /**
   * Remove a directory tree in a child of the server (a finished build's scratch dir): kiln's
   * thread only sends the request. Rejects if the tree could not be removed whole.
   */
  remove(dir: string): Promise<void> {
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#request(frame("R", id, Buffer.from(`${dir}\0`)), id, {
        onOutput: () => {},
        done: (r) => (r.exitCode === 0 && r.setupError === undefined ? resolve() : reject(new Error(`${dir} could not be removed: ${r.setupError ?? `exit ${r.exitCode ?? r.signal}`}`))),
        fail: reject,
      });
    });
  }

  #request(f: Buffer, id: number, p: Pending): void {
    const child = this.#start();
    this.#pending.set(id, p);
    this.#ref(child);
    this.#send(f);
  }

  /** Stop the server, killing its builds. */
  close(): void {
    this.#send(frame("X", 0));
    this.#child?.stdin?.end();
  }

  // the frames of one turn of the event loop (a build's request and the next one's sandbox, say)
  // go in one write: each write to the server's pipe costs a wake-up of the server
  #send(b: Buffer): void {
    const stdin = this.#child?.stdin as Writable | undefined;
    if (!stdin) return;
    if (stdin.writableCorked === 0) {
      stdin.cork();
      process.nextTick(() => stdin.uncork());
    }
    stdin.write(b);
  }

  // the server keeps kiln's process alive only while a build runs
  #ref(child: ChildProcess): void {
    const on = this.#pending.size > this.#prepared.size;
    for (const s of [child.stdout, child.stderr, child.stdin] as (Socket | null)[]) {
      if (on) s?.ref(); else s?.unref();
    }
    if (on) child.ref(); else child.unref();
  }

  #start(): ChildProcess {
    if (this.#child) return this.#child;
    const child = spawn(this.program, ["--serve"], { stdio: ["pipe", "pipe", "pipe"], ...SERVER_PROCESS });
    this.#child = child;
    this.#buf = Buffer.alloc(0);
    this.#stderr = "";
    child.stdin!.on("error", () => {});
    child.stdout!.on("data", (chunk: Buffer) => this.#data(chunk));
    child.stderr!.on("data", (chunk: Buffer) => { if (this.#stderr.length < 4096) this.#stderr += chunk.toString(); });
    const gone = (why: string) => {
      if (this.#child !== child) return;
      this.#child = undefined;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) p.fail(new KilnError("SANDBOX_UNAVAILABLE", `kiln's sandbox server (${this.program}) ended: ${why}${this.#stderr ? `: ${this.#stderr.trim()}` : ""}`, "KILN_SANDBOX_VIEW=binds starts builds without it"));
    };
    child.on("error", (e) => gone(String(e)));
    child.on("close", (code, sig) => gone(sig ? `killed by ${sig}` : `exit ${code}`));
    return child;
  }

  #data(chunk: Buffer): void {
    const buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    const used = eachEvent(buf, (id, type, data) => {
      const p = this.#pending.get(id);
      if (!p) return;
      if (type === OUTPUT) p.onOutput(Buffer.from(data));
      else if (type === DONE) {
        this.#pending.delete(id);
        p.done(doneOf(data));
        if (this.#child) this.#ref(this.#child);
      }
    });
    this.#buf = used < buf.length ? Buffer.from(buf.subarray(used)) : Buffer.alloc(0);
  }
}
