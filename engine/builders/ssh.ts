// A build machine reached over SSH, running `kiln builder-serve` (engine/builders/serve.ts) with
// its own store: the inputs it lacks are sent in the binary cache's archive format, the
// BuildRequest (pure, no host paths) runs there in its sandbox, and the outputs come back as
// built, to be registered here. A machine is named by a URL:
//
//   ssh://[USER@]HOST[:PORT]?system=x86_64-linux&jobs=2[&key=FILE][&host-key=BASE64]
//        [&store=DIR][&kiln=COMMAND]
//
// system (repeatable): what it builds for (default: this machine's); jobs: builds at once
// (default 1); key: the SSH identity file; host-key: its ed25519 host key (ssh-keyscan's base64),
// checked instead of known_hosts; store: its store root (default: kiln's default there); kiln:
// the command that runs kiln there (default `kiln`).
import { spawn } from "node:child_process";
import { createReadStream, createWriteStream, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as tar from "tar-stream";
import { KilnError } from "../../store/errors.js";
import type { LocalStore } from "../../store/local-store.js";
import { packPath, unpackPath } from "../../store/path-archive.js";
import { removeTree, type StorePathName } from "../../store/paths.js";
import type { BuildIO, BuildResult } from "../builder.js";
import type { BuildRequest } from "../build-request.js";
import type { BuildOutcome, ImportInfo } from "./serve.js";

export interface MachineSpec {
  /** the URL as given, without secrets: how messages name it */
  name: string;
  user?: string;
  host: string;
  port?: number;
  systems: string[];
  jobs: number;
  key?: string;
  hostKey?: string;
  store?: string;
  kiln: string;
}

export function parseMachine(uri: string, defaultSystem: string): MachineSpec {
  const bad = (why: string) => new KilnError("USAGE", `builder ${uri}: ${why}`, "a builder is ssh://[USER@]HOST[:PORT]?system=SYSTEM&jobs=N[&key=FILE][&host-key=BASE64][&store=DIR][&kiln=COMMAND]");
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw bad("it is not a URL");
  }
  if (u.protocol !== "ssh:") throw bad("only ssh:// builders are known");
  if (!u.hostname) throw bad("no host");
  const known = new Set(["system", "jobs", "key", "host-key", "store", "kiln"]);
  for (const k of u.searchParams.keys()) if (!known.has(k)) throw bad(`unknown parameter ${k} (known: ${[...known].join(", ")})`);
  const jobs = Number(u.searchParams.get("jobs") ?? "1");
  if (!Number.isInteger(jobs) || jobs < 1) throw bad(`jobs=${u.searchParams.get("jobs")} is not a positive whole number`);
  const systems = u.searchParams.getAll("system").flatMap((s) => s.split(",")).filter(Boolean);
  const get = (k: string) => u.searchParams.get(k) ?? undefined;
  const spec: MachineSpec = {
    name: `ssh://${u.username ? `${decodeURIComponent(u.username)}@` : ""}${u.host}`,
    host: u.hostname, systems: systems.length ? systems : [defaultSystem], jobs, kiln: get("kiln") ?? "kiln",
  };
  if (u.username) spec.user = decodeURIComponent(u.username);
  if (u.port) spec.port = Number(u.port);
  for (const [k, f] of [["key", "key"], ["store", "store"]] as const) if (get(k) !== undefined) spec[f] = get(k)!;
  // base64 has '+', which a query string reads as a space when it is not escaped
  const hostKey = get("host-key")?.replace(/ /g, "+");
  if (hostKey !== undefined) {
    if (!/^[A-Za-z0-9+/]+=*$/.test(hostKey)) throw bad("host-key is not base64 (the second field of `ssh-keyscan -t ed25519 HOST`)");
    spec.hostKey = hostKey;
  }
  return spec;
}

/** The machine could not be used (SSH failed, the connection dropped, kiln there is missing or broken): try another. */
export class MachineFailed extends Error {}

/** What the far side said, in short: its last lines. */
const lastLines = (s: string) => s.trim().split("\n").filter((l) => l.trim()).slice(-3).join(" / ");

const quote = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export interface SshMachineOptions {
  store: LocalStore;
  /** a directory for this process's files (the host key file) */
  processDir: () => string;
}

export class SshMachine {
  running = 0;
  /** until this time (ms) it is not asked again, after a failure */
  downUntil = 0;
  constructor(readonly spec: MachineSpec, private readonly o: SshMachineOptions) {}

  private sshArgs(): string[] {
    const s = this.spec;
    const args = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3"];
    if (s.port) args.push("-p", String(s.port));
    if (s.key) args.push("-i", s.key, "-o", "IdentitiesOnly=yes");
    if (s.hostKey) {
      const known = join(this.o.processDir(), `known-hosts-${s.host}-${s.port ?? 22}`);
      writeFileSync(known, `${s.port ? `[${s.host}]:${s.port}` : s.host} ssh-ed25519 ${s.hostKey}\n`);
      args.push("-o", `UserKnownHostsFile=${known}`, "-o", "StrictHostKeyChecking=yes");
    }
    args.push(s.user ? `${s.user}@${s.host}` : s.host, "--");
    const kiln = [s.kiln, ...(s.store ? ["--store", s.store] : []), "--reporter", "quiet", "builder-serve"];
    return [...args, ...kiln.map(quote)];
  }

  /** One exchange: `builder-serve op` there, `feed` writing its stdin, `read` consuming its stdout. */
  private async exchange<T>(op: string, signal: AbortSignal, feed: (stdin: NodeJS.WritableStream) => Promise<void>, read: (stdout: Readable) => Promise<T>, onStderr?: (c: Buffer) => void): Promise<T> {
    const child = spawn("ssh", [...this.sshArgs(), op], { stdio: ["pipe", "pipe", "pipe"], signal });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => {
      if (onStderr) onStderr(c);
      else stderr += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => {
      child.on("error", () => resolve(255));
      child.on("close", (code) => resolve(code));
    });
    child.stdin.on("error", () => {}); // a dead connection is reported by the exit code
    try {
      const [, value] = await Promise.all([feed(child.stdin).then(() => void child.stdin.end()), read(child.stdout)]);
      const code = await exited;
      if (code !== 0) throw new MachineFailed(`${this.spec.name}: builder-serve ${op} exited with ${code}${stderr ? `: ${lastLines(stderr)}` : ""}`);
      return value;
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      // what went wrong on this side usually follows from the far side's end: its exit says more
      const code = await Promise.race([exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000).unref())]);
      if (code === undefined) child.kill();
      if ((code === undefined || code === 0) && e instanceof MachineFailed) throw e;
      const why = code !== undefined && code !== 0 ? `exited with ${code}` : `failed: ${(e as Error).message}`;
      throw new MachineFailed(`${this.spec.name}: builder-serve ${op} ${why}${stderr ? `: ${lastLines(stderr)}` : ""}`);
    }
  }

  async build(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    const store = this.o.store;
    const wanted = [...req.inputs];
    const missing = await this.exchange("missing", io.signal,
      async (stdin) => void stdin.write(JSON.stringify(wanted)),
      async (stdout) => JSON.parse(Buffer.concat(await stdout.toArray()).toString("utf8")) as StorePathName[]);
    if (missing.length) {
      io.onOutput(Buffer.from(`kiln: copying ${missing.length} input path(s) to ${this.spec.name}\n`));
      await this.exchange("import", io.signal, (stdin) => this.sendPaths(missing, stdin, io.signal), async (stdout) => void (await stdout.toArray()));
    }
    const scratch = store.scratchDir(`remote-${req.name}`);
    const release = () => removeTree(scratch);
    try {
      const outcome = await this.exchange("build", io.signal,
        async (stdin) => void stdin.write(JSON.stringify(req)),
        (stdout) => this.receiveOutputs(req, stdout, scratch, io.signal),
        io.onOutput);
      const outputs: Record<string, string | undefined> = {};
      for (const [o, name] of Object.entries(req.outputs)) outputs[o] = outcome.received.has(o) ? join(scratch, name) : undefined;
      return { exitCode: outcome.exitCode, signal: outcome.signal, outputs, release };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** The paths as a tar of info + archive, each after the paths it references. */
  private async sendPaths(paths: StorePathName[], stdin: NodeJS.WritableStream, signal: AbortSignal): Promise<void> {
    const store = this.o.store;
    const want = new Set(paths);
    const order: StorePathName[] = [];
    const seen = new Set<StorePathName>();
    const visit = (p: StorePathName) => {
      if (seen.has(p)) return;
      seen.add(p);
      for (const r of store.pathInfo(p)!.references) if (r !== p && want.has(r)) visit(r);
      order.push(p);
    };
    for (const p of [...paths].sort()) visit(p);
    const pack = tar.pack();
    const sent = pipeline(pack, stdin as unknown as NodeJS.WritableStream);
    const scratch = store.scratchDir("remote-send");
    try {
      for (const p of order) {
        const info = store.pathInfo(p)!;
        const msg: ImportInfo = { path: p, narDigest: info.narDigest, references: info.references, ...(info.ca ? { ca: info.ca } : {}) };
        pack.entry({ name: `${p}.json` }, JSON.stringify(msg));
        const file = join(scratch, `${p}.tar.zst`);
        await packPath(store.hostPath(p), p, file, { signal });
        await new Promise<void>((resolve, reject) => {
          const sink = pack.entry({ name: `${p}.tar.zst`, size: statSync(file).size }, (e) => (e ? reject(e) : resolve()));
          createReadStream(file).pipe(sink);
        });
        removeTree(file);
      }
      pack.finalize();
      await sent;
    } finally {
      removeTree(scratch);
    }
  }

  private async receiveOutputs(req: BuildRequest, stdout: Readable, scratch: string, signal: AbortSignal): Promise<BuildOutcome & { received: Set<string> }> {
    const extract = tar.extract();
    const done = pipeline(stdout, extract);
    const received = new Set<string>();
    let outcome: BuildOutcome | undefined;
    for await (const entry of extract) {
      const name = entry.header.name;
      if (name === "result.json") {
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        outcome = JSON.parse(Buffer.concat(chunks).toString("utf8")) as BuildOutcome;
        continue;
      }
      const o = name.replace(/\.tar\.zst$/, "");
      const pathName = req.outputs[o];
      if (!pathName || received.has(o)) throw new MachineFailed(`${this.spec.name}: unexpected output ${name}`);
      const file = join(scratch, name);
      await pipeline(entry, createWriteStream(file));
      await unpackPath(file, pathName, join(scratch, pathName), signal);
      removeTree(file);
      received.add(o);
    }
    await done;
    if (!outcome) throw new MachineFailed(`${this.spec.name}: the build's result did not arrive`);
    return { ...outcome, received };
  }
}
