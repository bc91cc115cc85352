// The sandbox server: dist/kiln-sandbox --serve (sandbox-helper.c), started once and asked to
// start every build. Forking kiln's own process for each build copies its page tables (~1.7 ms
// a build at ~140 MB of memory, more as it grows); the server is a small C process whose fork
// costs a tenth of a millisecond. It makes the build's namespace and overlay and becomes
// bubblewrap, as the helper does when kiln starts it directly. The protocol is in the C file.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import type { Socket } from "node:net";
import { KilnError } from "../../store/errors.js";
import type { Writable } from "node:stream";

export interface ServerLaunch {
  /** the build's working directory on the host (its scratch dir) */
  cwd: string;
  /** the overlay's options, or "" for no namespace and overlay of its own */
  overlay: string;
  /** bubblewrap and its command line */
  argv: string[];
  /** bubblewrap's options, its fd 3 */
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

const SIGNALS: Record<number, NodeJS.Signals> = { 1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ" };

/** The exit code and signal of a raw wait status, as Node's 'close' event gives them. */
export function waitStatus(st: number): { exitCode: number | null; signal: NodeJS.Signals | null } {
  const sig = st & 0x7f;
  if (sig === 0) return { exitCode: (st >> 8) & 0xff, signal: null };
  return { exitCode: null, signal: SIGNALS[sig] ?? (`SIG${sig}` as NodeJS.Signals) };
}

/** A build request's frame. */
function buildFrame(id: number, launch: ServerLaunch): Buffer {
  const body = Buffer.concat([Buffer.from("B"), u32(id), Buffer.from(`${launch.cwd}\0${launch.overlay}\0`), u32(launch.argv.length), Buffer.from(launch.argv.map((a) => `${a}\0`).join("")), launch.options]);
  return Buffer.concat([u32(body.length), body]);
}

/**
 * One build through a server of its own, synchronously: how the store view's probe tries the way
 * every build will take (the server's descriptors, its fork, the namespace, the overlay, bubblewrap).
 */
export function serveOnce(program: string, launch: ServerLaunch): ServerResult & { output: string; error?: string } {
  const r = spawnSync(program, ["--serve"], { input: buildFrame(1, launch), env: {}, stdio: ["pipe", "pipe", "pipe"], maxBuffer: 1 << 24 });
  if (r.error || r.status !== 0) return { exitCode: null, signal: null, output: "", error: String(r.error ?? (r.stderr.toString().trim() || `the server exited ${r.status ?? r.signal}`)) };
  let output = "";
  const buf = r.stdout;
  for (let at = 0; buf.length - at >= 9;) {
    const type = buf[at + 4];
    const len = buf.readUInt32LE(at + 5);
    const data = buf.subarray(at + 9, at + 9 + len);
    at += 9 + len;
    if (type === 0x4f /* O */) output += data.toString();
    else if (type === 0x44 /* D */) {
      const why = data.subarray(4).toString("utf8");
      return { ...waitStatus(data.readUInt32LE(0)), output, ...(why ? { setupError: why } : {}) };
    }
  }
  return { exitCode: null, signal: null, output, error: "the server ended without the build's end" };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

export class SandboxServer {
  #child: ChildProcess | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #buf = Buffer.alloc(0);
  #stderr = "";

  constructor(private readonly program: string) {}

  /** Start a build; its output goes to onOutput as it comes; abort kills its process group. */
  run(launch: ServerLaunch, onOutput: (chunk: Buffer) => void, signal: AbortSignal): Promise<ServerResult> {
    const child = this.#start();
    const id = this.#nextId++;
    return new Promise<ServerResult>((resolve, reject) => {
      const kill = () => this.#send(Buffer.concat([u32(5), Buffer.from("K"), u32(id)]));
      signal.addEventListener("abort", kill, { once: true });
      this.#pending.set(id, {
        onOutput,
        done: (r) => { signal.removeEventListener("abort", kill); resolve(r); },
        fail: (e) => { signal.removeEventListener("abort", kill); reject(e); },
      });
      this.#ref(child);
      this.#send(buildFrame(id, launch));
      if (signal.aborted) kill();
    });
  }

  /**
   * Remove a directory tree in a child of the server (a finished build's scratch dir): kiln's
   * thread only sends the request. Rejects if the tree could not be removed whole.
   */
  remove(dir: string): Promise<void> {
    const child = this.#start();
    const id = this.#nextId++;
    const body = Buffer.concat([Buffer.from("R"), u32(id), Buffer.from(`${dir}\0`)]);
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, {
        onOutput: () => {},
        done: (r) => (r.exitCode === 0 && r.setupError === undefined ? resolve() : reject(new Error(`${dir} could not be removed: ${r.setupError ?? `exit ${r.exitCode ?? r.signal}`}`))),
        fail: reject,
      });
      this.#ref(child);
      this.#send(Buffer.concat([u32(body.length), body]));
    });
  }

  /** Stop the server, killing its builds. */
  close(): void {
    this.#send(Buffer.concat([u32(5), Buffer.from("X"), u32(0)]));
    this.#child?.stdin?.end();
  }

  #send(b: Buffer): void {
    (this.#child?.stdin as Writable | undefined)?.write(b);
  }

  // the server keeps kiln's process alive only while a build runs
  #ref(child: ChildProcess): void {
    const on = this.#pending.size > 0;
    for (const s of [child.stdout, child.stderr, child.stdin] as (Socket | null)[]) {
      if (on) s?.ref(); else s?.unref();
    }
    if (on) child.ref(); else child.unref();
  }

  #start(): ChildProcess {
    if (this.#child) return this.#child;
    const child = spawn(this.program, ["--serve"], { stdio: ["pipe", "pipe", "pipe"], env: {} });
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
    let buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 9) {
      const id = buf.readUInt32LE(at);
      const type = buf[at + 4];
      const len = buf.readUInt32LE(at + 5);
      if (buf.length - at - 9 < len) break;
      const data = buf.subarray(at + 9, at + 9 + len);
      at += 9 + len;
      const p = this.#pending.get(id);
      if (!p) continue;
      if (type === 0x4f /* O */) p.onOutput(Buffer.from(data));
      else if (type === 0x44 /* D */) {
        this.#pending.delete(id);
        const why = data.subarray(4).toString("utf8");
        p.done({ ...waitStatus(data.readUInt32LE(0)), ...(why ? { setupError: why } : {}) });
        if (this.#pending.size === 0 && this.#child) this.#ref(this.#child);
      }
    }
    buf = buf.subarray(at);
    this.#buf = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}
