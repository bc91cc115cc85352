// The local builder: bubblewrap, declare-then-isolate. A build sees
//   /kiln/store/<p>   read-only, for exactly the closure of its declared inputs
//   /kiln/store/<o>   its outputs, written into a per-build scratch directory on the host
//   /usr, /bin, /lib  its usr tree (a seed of pinned Debian packages, itself one of its inputs)
//                     read-only, and nothing of the host; or, for a build that declares host
//                     tools (the visibly impure escape), the host's /usr read-only with those
//                     tools alone on PATH under /kiln/host/bin; or nothing (a static builder)
//   /build            private build directory (cwd, tmpfs); /tmp private (tmpfs)
//   /etc              passwd, group and hosts of its own
// with no network (unless fixed-output), uid 1000, hostname 'kiln', a cleared environment with
// HOME/TZ/LC_ALL/SOURCE_DATE_EPOCH fixed, and umask 022.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Writable } from "node:stream";
import { KilnError } from "../../store/errors.js";
import { existsOrLink, LOGICAL_STORE, removeTree } from "../../store/paths.js";
import type { Builder, BuildIO, BuildResult } from "../builder.js";
import type { BuildRequest } from "../build-request.js";
import { HOST_BIN } from "../evaluate.js";
import { HOST_TOOL_DIRS, HOST_TOOL_ETC } from "../hosttools.js";

/** A request as the sandbox runs it: the BuildRequest mapped onto this host. */
export interface SandboxRequest {
  builder: string;
  args: string[];
  env: Record<string, string>;
  /** store path names to make visible read-only (the input closure) */
  inputs: string[];
  /** an input to lay out as /usr (a seed tree); then nothing of the host's file system is visible */
  usr?: string;
  /** host tool commands: name -> host path (the host's /usr is then visible read-only) */
  tools: Record<string, string>;
  network: boolean;
  /** per-build scratch directory on the host */
  scratch: string;
  /**
   * a directory that lives as long as this process (LocalStore.processDir): the files every sandbox
   * sees alike (/etc/passwd, group, hosts) and the host-tool link dirs are written there once,
   * not per build
   */
  shared: string;
  /** host directory holding store paths */
  storeDir: string;
  buildCores: number;
  /** keep /build on disk (in the scratch dir) instead of tmpfs, for builds larger than RAM */
  buildDirOnDisk?: boolean;
}


export const FIXED_ENV = {
  HOME: "/homeless-shelter",
  TMPDIR: "/tmp",
  TMP: "/tmp",
  TEMP: "/tmp",
  TZ: "UTC",
  LC_ALL: "C",
  LANG: "C",
  TERM: "dumb",
  PWD: "/build",
  SOURCE_DATE_EPOCH: "1",
  KILN_STORE: LOGICAL_STORE,
} as const;

const probed = new Map<string, KilnError | null>();

/** Check once per process that bubblewrap exists and can create namespaces here. */
export function checkSandbox(bwrap: string): void {
  if (!probed.has(bwrap)) {
    const r = spawnSync(bwrap, ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "/bin/true"], { encoding: "utf8" });
    if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
      probed.set(bwrap, new KilnError("SANDBOX_UNAVAILABLE", `bubblewrap (${bwrap}) is not installed; kiln never builds without a sandbox`, "install it: apt-get install bubblewrap"));
    } else if (r.status !== 0) {
      probed.set(bwrap, new KilnError("SANDBOX_UNAVAILABLE", `bubblewrap cannot create a sandbox here: ${(r.stderr || String(r.error)).trim()}`,
        "allow unprivileged user namespaces (sysctl -w kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0), or run kiln where containers are permitted"));
    } else {
      probed.set(bwrap, null);
    }
  }
  const err = probed.get(bwrap);
  if (err) throw err;
}

/** The host's /usr and its top-level companions, as HOST_TOOL_DIRS names them (what evaluation checked tools against). */
function hostDirArgs(): string[] {
  const args: string[] = [];
  for (const p of HOST_TOOL_DIRS) {
    if (!existsSync(p)) continue;
    // merged-/usr hosts have /bin -> usr/bin etc.; mirror what the host has
    if (lstatSync(p).isSymbolicLink()) args.push("--symlink", `usr${p}`, p);
    else args.push("--ro-bind", p, p);
  }
  return args;
}

/** Directories already written under a `shared` dir: key -> path. */
const written = new Map<string, string>();

/** The sandbox's /etc files, once per shared dir. */
function etcDir(shared: string): string {
  const key = `${shared}\0etc`;
  const done = written.get(key);
  if (done) return done;
  const etc = join(shared, "etc");
  mkdirSync(etc, { recursive: true });
  writeFileSync(join(etc, "passwd"), "root:x:0:0:root:/root:/bin/sh\nkiln:x:1000:1000:kiln build user:/homeless-shelter:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n");
  writeFileSync(join(etc, "group"), "root:x:0:\nkiln:x:1000:\nnogroup:x:65534:\n");
  writeFileSync(join(etc, "hosts"), "127.0.0.1 localhost kiln\n::1 localhost\n");
  written.set(key, etc);
  return etc;
}

/** A directory of links to the declared host tools, once per set of tools and shared dir. */
function hostBinDir(shared: string, tools: Record<string, string>): string {
  const entries = Object.entries(tools).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const key = `${shared}\0${JSON.stringify(entries)}`;
  const done = written.get(key);
  if (done) return done;
  const dir = join(shared, `host-bin-${written.size}`);
  mkdirSync(dir, { recursive: true });
  for (const [name, path] of entries) symlinkSync(path, join(dir, name));
  written.set(key, dir);
  return dir;
}

/** PATH in a build on a usr tree. */
export const SEED_PATH = "/usr/bin:/usr/sbin:/bin:/sbin";

/** Merged-/usr directories that a usr tree's top level links to, as Debian's usrmerge lays them out. */
const MERGED = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/**
 * What the sandbox's root shows: a usr tree (read-only at /usr, with /bin, /lib... linked into it
 * where the tree has them), the host's /usr for a build that declares host tools (the impure
 * escape), or nothing at all for a pure build (a builtin, or a static builder in the store).
 */
function rootArgs(req: SandboxRequest): string[] {
  if (req.usr !== undefined) {
    const usr = join(req.storeDir, req.usr, "usr");
    const a = ["--ro-bind", usr, "/usr"];
    for (const d of MERGED) if (existsSync(join(usr, d))) a.push("--symlink", `usr/${d}`, `/${d}`);
    return a;
  }
  if (Object.keys(req.tools).length > 0) return hostDirArgs();
  return [];
}

/**
 * bubblewrap's arguments for a request: its options (mounts, environment: host paths among them)
 * and the command it runs in the sandbox (logical paths only). bubblewrap takes the command on its
 * own command line, after `--`.
 */
export function bwrapArgs(req: SandboxRequest): { options: string[]; command: string[] } {
  const storeView = join(req.scratch, "store");
  const build = join(req.scratch, "build");
  mkdirSync(storeView, { recursive: true });
  if (req.buildDirOnDisk) mkdirSync(build, { recursive: true });
  const etc = etcDir(req.shared);

  const a: string[] = [
    "--unshare-all",
    ...(req.network ? ["--share-net"] : []),
    "--die-with-parent",
    "--new-session",
    "--uid", "1000", "--gid", "1000",
    "--hostname", "kiln",
    ...rootArgs(req),
    "--proc", "/proc",
    "--dev", "/dev",
    "--tmpfs", "/tmp",
    "--dir", "/etc",
    "--ro-bind", join(etc, "passwd"), "/etc/passwd",
    "--ro-bind", join(etc, "group"), "/etc/group",
    "--ro-bind", join(etc, "hosts"), "/etc/hosts",
  ];
  if (req.usr === undefined && Object.keys(req.tools).length > 0) {
    for (const f of HOST_TOOL_ETC) {
      if (existsSync(f)) a.push("--ro-bind", f, f);
    }
  }
  if (req.network) {
    // a fixed-output fetch needs name resolution and certificates: the host's, read-only
    for (const f of ["/etc/resolv.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/nsswitch.conf", "/etc/apt"]) {
      if (existsSync(f)) a.push("--ro-bind", f, f);
    }
  }
  a.push("--bind", storeView, LOGICAL_STORE);
  for (const p of [...req.inputs].sort()) a.push("--ro-bind", join(req.storeDir, p), `${LOGICAL_STORE}/${p}`);
  if (Object.keys(req.tools).length > 0) a.push("--ro-bind", hostBinDir(req.shared, req.tools), HOST_BIN);
  // the build directory lives in memory: unpacking and deleting a kernel tree (80k files) on
  // this kind of disk costs minutes, in tmpfs seconds; only outputs are written to disk
  if (req.buildDirOnDisk) a.push("--bind", build, "/build");
  else a.push("--perms", "0755", "--tmpfs", "/build");
  a.push("--chdir", "/build");
  a.push("--clearenv");
  const path = req.usr !== undefined ? SEED_PATH : HOST_BIN;
  const env: Record<string, string> = { ...FIXED_ENV, PATH: path, KILN_BUILD_CORES: String(req.buildCores), ...req.env };
  for (const k of Object.keys(env).sort()) a.push("--setenv", k, env[k]!);
  // umask 022 for everything the builder creates, whatever kiln's own umask is (runSandboxed sets
  // it for bubblewrap too); stderr into stdout, one pipe, so the log keeps the order in which the
  // builder wrote its lines. The shell doing it is the seed's, or the host's for host tools.
  const shell = req.usr !== undefined ? "/bin/sh" : Object.keys(req.tools).length > 0 ? "/usr/bin/dash" : undefined;
  const command = shell ? [shell, "-c", 'umask 022 && exec "$0" "$@" 2>&1', req.builder, ...req.args] : [req.builder, ...req.args];
  return { options: a, command };
}

/**
 * Run a build in the sandbox, its output to onOutput; kill the whole process group on abort.
 *
 * bubblewrap gets its options through a pipe (`--args 3`), not its command line, and an empty
 * environment: bubblewrap is the sandbox's pid 1, and a build can read /proc/1/cmdline and
 * /proc/1/environ. There they would show the host's store location (in every bind mount) and
 * kiln's own environment, which a build could embed in its output; and a large environment
 * would not fit the kernel's limit on a command line (spawn E2BIG). Its command line keeps only
 * the builder's own command, which the build sees as its argv anyway.
 */
export function runSandboxed(bwrap: string, req: SandboxRequest, onOutput: (chunk: Buffer) => void, signal: AbortSignal): Promise<{ exitCode: number | null; signal: string | null }> {
  checkSandbox(bwrap);
  const { options, command } = bwrapArgs(req);
  return new Promise((resolvePromise, reject) => {
    // the child inherits the umask at fork: 022 for the builds, whatever kiln's own is
    const saved = process.umask(0o022);
    let child;
    try {
      child = spawn(bwrap, ["--args", "3", "--", ...command], { stdio: ["ignore", "pipe", "pipe", "pipe"], detached: true, env: {} });
    } finally {
      process.umask(saved);
    }
    const argsPipe = child.stdio[3] as Writable;
    // bubblewrap may fail before it reads them all (it is missing, say): the child's error or exit says why
    argsPipe.on("error", () => {});
    argsPipe.end(Buffer.from(options.map((a) => `${a}\0`).join("")));
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    const kill = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    };
    signal.addEventListener("abort", kill, { once: true });
    child.on("error", (e) => {
      signal.removeEventListener("abort", kill);
      reject(e);
    });
    child.on("close", (code, sig) => {
      signal.removeEventListener("abort", kill);
      resolvePromise({ exitCode: code, signal: sig });
    });
  });
}

export interface SandboxBuilderOptions {
  /** the bubblewrap binary */
  bwrap: string;
  /** host directory holding store paths */
  storeDir: string;
  /** a fresh scratch directory on the host (under the store, so outputs move into it by rename) */
  scratchDir: (label: string) => string;
  /** a directory for the life of this process (see SandboxRequest.shared) */
  processDir: () => string;
  systems: readonly string[];
}

/** The Builder port on this machine: each request runs in bubblewrap. */
export class SandboxBuilder implements Builder {
  readonly systems: readonly string[];
  constructor(private readonly o: SandboxBuilderOptions) {
    this.systems = o.systems;
  }

  checkAvailable(): void {
    checkSandbox(this.o.bwrap);
  }

  async build(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    checkSandbox(this.o.bwrap);
    const scratch = this.o.scratchDir(req.name);
    try {
      const r = await runSandboxed(this.o.bwrap, {
        builder: req.builder, args: req.args, env: req.env, inputs: req.inputs, ...(req.usr !== undefined ? { usr: req.usr } : {}), tools: req.hostTools, network: req.network,
        scratch, shared: this.o.processDir(), storeDir: this.o.storeDir, buildCores: req.cores,
      }, io.onOutput, io.signal);
      const outputs: Record<string, string | undefined> = {};
      for (const [o, name] of Object.entries(req.outputs)) {
        const host = join(scratch, "store", name);
        outputs[o] = existsOrLink(host) ? host : undefined;
      }
      return { ...r, outputs, release: () => removeTree(scratch) };
    } catch (e) {
      removeTree(scratch);
      throw e;
    }
  }
}
