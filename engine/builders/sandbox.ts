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
import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, renameSync, statfsSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { Writable } from "node:stream";
import { KilnError } from "../../store/errors.js";
import { beforeScratchRemoved, removeScratchLater } from "../../store/scratch.js";
import { existsOrLink, LOGICAL_STORE, removeTree } from "../../store/paths.js";
import type { Builder, BuildIO, BuildResult } from "../builder.js";
import type { BuildRequest } from "../build-request.js";
import { HOST_BIN } from "../evaluate.js";
import { SandboxServer, serveOnce, type PreparedSandbox } from "./sandbox-server.js";
import { findOnPath, HOST_TOOL_DIRS, HOST_TOOL_ETC } from "../hosttools.js";

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
  /** host directory holding store paths */
  storeDir: string;
  buildCores: number;
  /** how the host's directories reach the sandbox (storeViewOf); bind mounts when not given */
  view?: StoreView;
}

/**
 * How the host's directories reach the sandbox.
 *
 * A bind mount shows its source's path in /proc/self/mountinfo: the kernel prints, for every
 * mount, the path of its root in the file system it comes from, whatever bubblewrap is told. So a
 * build could read the host's store location there and write it into its output. With
 * "overlay", the store and the build's scratch directory reach the sandbox through an overlay
 * file system of the build's own, mounted in a user and mount namespace made for the build,
 * whose options name only paths relative to the scratch directory (`lowerdir=../../store`). Its
 * mounts then show paths inside the overlay (`/<hash>-name`), the same in every store. "binds" is
 * the way where overlayfs cannot be mounted without privileges (a kernel before 5.11, a store on
 * a file system overlayfs cannot write to, user namespaces only for bubblewrap); `why` says why.
 * What the probe found is kept, so a build looks nothing up: how builds are started (`start`:
 * kiln's sandbox server, or the command that makes the namespace and mounts the overlay), the
 * overlay's options (the same for every scratch dir of a store, all siblings) and bubblewrap by
 * its path (the helper has no PATH to search).
 */
export type StoreView = { kind: "overlay"; start: SandboxServer | string[]; options: string; bwrap: string } | { kind: "binds"; why: string };


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

/** Check once per process that bubblewrap exists and can create namespaces here (storeViewOf's probe may have shown it already). */
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

/** The host's /usr and its top-level companions, as HOST_TOOL_DIRS names them (what evaluation checked tools against); looked at once per process. */
let hostDirs: string[] | undefined;
function hostDirArgs(): string[] {
  if (hostDirs) return hostDirs;
  const args: string[] = [];
  for (const p of HOST_TOOL_DIRS) {
    if (!existsSync(p)) continue;
    // merged-/usr hosts have /bin -> usr/bin etc.; mirror what the host has
    if (lstatSync(p).isSymbolicLink()) args.push("--symlink", `usr${p}`, p);
    else args.push("--ro-bind", p, p);
  }
  return (hostDirs = args);
}

/** The host's files in /etc that a build with host tools sees (HOST_TOOL_ETC), those there are; looked at once per process. */
let hostEtc: string[] | undefined;
function hostEtcFiles(): string[] {
  return (hostEtc ??= HOST_TOOL_ETC.filter((f) => existsSync(f)));
}

/** The sandbox's /etc files. */
const ETC: Record<string, string> = {
  passwd: "root:x:0:0:root:/root:/bin/sh\nkiln:x:1000:1000:kiln build user:/homeless-shelter:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\n",
  group: "root:x:0:\nkiln:x:1000:\nnogroup:x:65534:\n",
  hosts: "127.0.0.1 localhost kiln\n::1 localhost\n",
};

/** PATH in a build on a usr tree. */
export const SEED_PATH = "/usr/bin:/usr/sbin:/bin:/sbin";

/** Merged-/usr directories that a usr tree's top level links to, as Debian's usrmerge lays them out. */
const MERGED = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/** Where the sandbox's mounts come from on this host, for one request (see StoreView). */
interface Sources {
  /** a store path (an input, the usr tree) */
  store(name: string): string;
  /** the directory the build's outputs are written to, mounted at /kiln/store */
  out: string;
  /** the /etc files */
  etc: string;
  /** the links to declared host tools, when there are any */
  hostBin?: string;
}

/** Where the overlay view keeps the build's outputs: in its upper layer, at its root beside the store's names (`<hash>-<name>`). */
const UPPER_OUT = ".kiln-out";

/** The overlay view's directories in a build's scratch dir (its options name upper and work), parents first. */
const SCRATCH_LAYOUT = ["upper", `upper/${UPPER_OUT}`, "work"];

/**
 * `<root>/sandbox` beside the store (sandboxLayer): the files every sandbox of the store sees
 * alike, written once rather than per build: /etc's files in `etc-<digest>`, and the links to a
 * set of declared host tools in `host-bin-<digest>`, each named by its contents (kilns of other
 * versions sharing the store never replace each other's). The overlay view has it as its second
 * lower layer; bind mounts take the files from it.
 * Each is made in a temporary directory and renamed into place, so processes sharing the store
 * never see one half made; what a process finds there is checked once (contents, links) and
 * remade if it differs. Returns the directory's name.
 */
const layerNames = new Map<string, string>();
function layerDir(layer: string, prefix: string, files: [string, string][], kind: "file" | "link"): string {
  const key = JSON.stringify([layer, prefix, kind, files]);
  const known = layerNames.get(key);
  if (known !== undefined) return known;
  const name = `${prefix}-${createHash("sha256").update(JSON.stringify([kind, files])).digest("hex").slice(0, 32)}`;
  const dir = join(layer, name);
  const same = (): boolean => {
    try {
      const names = readdirSync(dir).sort();
      if (names.join("\0") !== files.map(([f]) => f).sort().join("\0")) return false;
      return files.every(([f, v]) => (kind === "file" ? readFileSync(join(dir, f), "utf8") : readlinkSync(join(dir, f))) === v);
    } catch {
      return false;
    }
  };
  if (!same()) {
    const tmp = join(layer, `.new-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
    mkdirSync(tmp, { recursive: true });
    for (const [f, v] of files) {
      if (kind === "file") writeFileSync(join(tmp, f), v);
      else symlinkSync(v, join(tmp, f));
    }
    try {
      renameSync(tmp, dir);
    } catch {
      // there already: another process's (the same contents, by its name), or a damaged one
      if (!same()) {
        // damaged: moved aside, then replaced (builds of other processes that use it fail as they would anyway)
        const old = join(layer, `.old-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
        try {
          renameSync(dir, old);
          renameSync(tmp, dir);
        } catch {
          /* checked below */
        }
        removeTree(old);
      }
    }
    removeTree(tmp);
    if (!same()) throw new KilnError("STORE_UNUSABLE", `the sandbox's shared files in ${dir} could not be written`, `check that ${layer} is writable, or remove it`);
  }
  layerNames.set(key, name);
  return name;
}

/** The shared files' directory of the store at `storeDir` (layerDir). */
function sandboxLayer(storeDir: string): string {
  return join(dirname(storeDir), "sandbox");
}

/**
 * What the sandbox's root shows: a usr tree (read-only at /usr, with /bin, /lib... linked into it
 * where the tree has them), the host's /usr for a build that declares host tools (the impure
 * escape), or nothing at all for a pure build (a builtin, or a static builder in the store).
 */
function rootArgs(req: SandboxRequest, src: Sources): string[] {
  if (req.usr !== undefined) {
    const usr = join(req.storeDir, req.usr, "usr");
    const a = ["--ro-bind", join(src.store(req.usr), "usr"), "/usr"];
    for (const d of MERGED) if (existsSync(join(usr, d))) a.push("--symlink", `usr/${d}`, `/${d}`);
    return a;
  }
  if (Object.keys(req.tools).length > 0) return hostDirArgs();
  return [];
}

/** How a request is started: the program and its arguments, the overlay's options (if any), bubblewrap's options and the build's command. */
export interface SandboxLaunch {
  /** the program to start, with its arguments before bubblewrap's own (`--args 3 -- command`) */
  file: string;
  prefix: string[];
  /** the working directory to start it in */
  cwd?: string;
  /** bubblewrap's options (mounts, environment: host paths among them), given through a pipe */
  options: string[];
  /** the command run in the sandbox (logical paths only), through a shell that sets its umask and joins stderr to stdout */
  command: string[];
  /** the same without that shell, for kiln's sandbox server (which does both itself) */
  own: string[];
  /**
   * where bubblewrap's options stop being the same for every build of the kind (the root, /proc,
   * /dev, /etc, the output directory, the host tools' links, /build) and become this build's own
   * (its inputs, environment): a prepared sandbox (SandboxServer.makeAhead) lays out the first part
   */
  split: number;
  /** the host directory the build's outputs are found in afterwards, by name */
  outDir: string;
}

/**
 * The overlay view's mount, in the scratch directory: the store as its lower layer, the build's
 * own directories as its upper one; every path relative to the scratch dir. A shell in the
 * namespace unshare made mounts it with mount(8) ($1, the options $2) and becomes bubblewrap, with
 * an empty environment (dash would export PWD, the host's scratch path, to bubblewrap: the
 * sandbox's pid 1). A mount that fails ends it with SETUP_FAILED and a line that says so.
 */
const MOUNT_THEN_BWRAP = '"$1" -t overlay kiln -o "$2" . || { echo "kiln-sandbox: the build\'s overlay could not be mounted" >&2; exit 125; }; shift 2; unset PWD OLDPWD; exec "$@"';
const SETUP_FAILED = 125;
const SETUP_MARK = "kiln-sandbox: ";

/**
 * The overlay's options. `volatile`: its unmount, when the build's namespace ends, would otherwise
 * flush the whole file system under the store to disk (syncfs) at the end of every build, everyone's
 * pending writes with it; outputs written through bind mounts were never flushed either.
 */
function overlayOptions(scratch: string, storeDir: string, layer: string): string | undefined {
  // the kernel resolves `..` through the real directories: a link in the path must not change what it names
  const lower = relative(realpathSync(scratch), realpathSync(storeDir));
  const shared = relative(realpathSync(scratch), realpathSync(layer));
  // mount(8) and overlayfs split their options at these; such a path falls back to bind mounts
  if (/[,:\\\s"']/.test(lower + shared)) return undefined;
  return `lowerdir=${lower}:${shared},upperdir=upper,workdir=work,userxattr,volatile`;
}

/** How a request runs: bubblewrap's arguments and, for the overlay view, the namespace and mount around it. */
export function sandboxLaunch(bwrap: string, req: SandboxRequest, laidOut = false): SandboxLaunch {
  const entries = Object.entries(req.tools).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const layer = sandboxLayer(req.storeDir);
  const etc = layerDir(layer, "etc", Object.entries(ETC), "file");
  const hostBin = entries.length > 0 ? layerDir(layer, "host-bin", entries, "link") : undefined;
  const view = req.view;
  if (view?.kind === "overlay") {
    // the overlay is mounted over the scratch dir itself, in the build's namespace: the store's
    // paths and the layer's directories are then <scratch>/<name> there, the outputs <scratch>/.kiln-out
    const upper = join(req.scratch, "upper");
    const m = req.scratch;
    if (!laidOut) for (const d of SCRATCH_LAYOUT) mkdirSync(join(req.scratch, d));
    const src: Sources = {
      store: (name) => join(m, name), out: join(m, UPPER_OUT), etc: join(m, etc),
      ...(hostBin !== undefined ? { hostBin: join(m, hostBin) } : {}),
    };
    const { options, command, own, split } = bwrapOptions(req, src);
    const prefix = Array.isArray(view.start) ? view.start : [];
    return { file: prefix[0] ?? "", prefix: [...prefix.slice(1), view.options, view.bwrap], cwd: req.scratch, options, command, own, split, outDir: join(upper, UPPER_OUT) };
  }
  const storeView = join(req.scratch, "store");
  if (!laidOut) mkdirSync(storeView, { recursive: true });
  const src: Sources = {
    store: (name) => join(req.storeDir, name), out: storeView, etc: join(layer, etc),
    ...(hostBin !== undefined ? { hostBin: join(layer, hostBin) } : {}),
  };
  const { options, command, own, split } = bwrapOptions(req, src);
  return { file: bwrap, prefix: [], options, command, own, split, outDir: storeView };
}

function bwrapOptions(req: SandboxRequest, src: Sources): { options: string[]; command: string[]; own: string[]; split: number } {
  const a: string[] = [
    "--unshare-all",
    ...(req.network ? ["--share-net"] : []),
    "--die-with-parent",
    "--new-session",
    "--uid", "1000", "--gid", "1000",
    "--hostname", "kiln",
    ...rootArgs(req, src),
    "--proc", "/proc",
    "--dev", "/dev",
    "--tmpfs", "/tmp",
    "--dir", "/etc",
    "--ro-bind", join(src.etc, "passwd"), "/etc/passwd",
    "--ro-bind", join(src.etc, "group"), "/etc/group",
    "--ro-bind", join(src.etc, "hosts"), "/etc/hosts",
  ];
  if (req.usr === undefined && Object.keys(req.tools).length > 0) {
    for (const f of hostEtcFiles()) a.push("--ro-bind", f, f);
  }
  if (req.network) {
    // a fixed-output fetch needs name resolution and certificates: the host's, read-only
    for (const f of ["/etc/resolv.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/nsswitch.conf", "/etc/apt"]) {
      if (existsSync(f)) a.push("--ro-bind", f, f);
    }
  }
  a.push("--bind", src.out, LOGICAL_STORE);
  if (src.hostBin !== undefined) a.push("--ro-bind", src.hostBin, HOST_BIN);
  // the build directory lives in memory: unpacking and deleting a kernel tree (80k files) on
  // this kind of disk costs minutes, in tmpfs seconds; only outputs are written to disk
  a.push("--perms", "0755", "--tmpfs", "/build");
  // what follows is this build's own (split: what a prepared sandbox takes when the build comes)
  const split = a.length;
  for (const p of [...req.inputs].sort()) a.push("--ro-bind", src.store(p), `${LOGICAL_STORE}/${p}`);
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
  // kiln's sandbox server sets the umask and gives the command one pipe for both itself
  const own = [req.builder, ...req.args];
  // bubblewrap reads its options NUL-separated, and the server takes the command so: a NUL in a
  // value (evaluation refuses them; a request from elsewhere, builder-serve's, is checked here)
  // would split it into options of the build's choosing
  const bad = [...a, ...command].find((x) => x.includes("\0"));
  if (bad !== undefined) throw new KilnError("RECIPE_INVALID", `a build's command or environment contains a NUL byte (${JSON.stringify(bad.slice(0, 80))})`, "no program can be given one: remove it");
  return { options: a, command, own, split };
}

/**
 * The store view this host allows, for a store and a directory beside its scratch dirs to try it
 * in: an overlay mounted in a namespace of its own, tried once per process and store (a few ms),
 * or bind mounts with the reason the overlay could not be used, told once through `warn` unless
 * KILN_SANDBOX_VIEW=binds asked for them.
 */
const views = new Map<string, StoreView>();
export function storeViewOf(bwrap: string, storeDir: string, probeDir: () => string, warn?: (message: string) => void): StoreView {
  let v = views.get(storeDir);
  if (v === undefined) {
    if (process.env.KILN_SANDBOX_VIEW === "binds") {
      checkSandbox(bwrap);
      v = { kind: "binds", why: "KILN_SANDBOX_VIEW=binds" };
    } else {
      v = probeView(bwrap, storeDir, probeDir());
      // the probe ran bubblewrap itself: it works here, nothing more to try; where it failed,
      // bubblewrap's own trouble (missing, no namespaces at all) is the error, not a warning
      if (v.kind === "overlay") probed.set(bwrap, null);
      else {
        checkSandbox(bwrap);
        warn?.(`builds see the store through bind mounts, whose host paths show in /proc/self/mountinfo: ${v.why}; KILN_SANDBOX_VIEW=binds accepts this without the warning`);
      }
    }
    views.set(storeDir, v);
  }
  return v;
}

/** A program on kiln's PATH, or in /usr/bin or /bin. */
function findProgram(name: string): string | undefined {
  return findOnPath(name, [...(process.env.PATH ?? "").split(":").filter((p) => p.startsWith("/")), "/usr/bin", "/bin"]);
}

/**
 * The ways into a build's namespace and overlay, fastest first: kiln's own helper (dist/kiln-sandbox,
 * compiled by `npm run build` where there is a C compiler), or unshare(1), a shell and mount(8).
 * Each is followed by the overlay's options and bubblewrap.
 */
function overlayCommands(): string[][] {
  const ways: string[][] = [];
  // beside the bundle (dist/kiln-main.cjs), two up from tsc's dist/engine/builders, or in dist/ of the checkout for the sources
  const here = import.meta.url;
  const helper = new URL(here.endsWith(".ts") ? "../../dist/kiln-sandbox" : here.endsWith("/builders/sandbox.js") ? "../../kiln-sandbox" : "./kiln-sandbox", here);
  if (helper.protocol === "file:" && existsSync(helper)) ways.push([fileURLToPath(helper)]);
  const unshare = findProgram("unshare");
  const mount = findProgram("mount");
  if (unshare && mount) ways.push([unshare, "--user", "--map-root-user", "--mount", "--propagation", "private", "/bin/sh", "-c", MOUNT_THEN_BWRAP, "kiln-sandbox", mount]);
  return ways;
}

/** The whole chain a build takes (namespace, overlay, bubblewrap inside it), tried on a probe directory. */
function probeView(bwrap: string, storeDir: string, dir: string): StoreView {
  try {
    const ways = overlayCommands();
    if (ways.length === 0) return { kind: "binds", why: `${findProgram("unshare") ? "mount" : "unshare"} (util-linux) is not installed` };
    const bw = findProgram(bwrap) ?? bwrap;
    for (const d of ["upper", "work"]) mkdirSync(join(dir, d), { recursive: true });
    const layer = sandboxLayer(storeDir);
    layerDir(layer, "etc", Object.entries(ETC), "file");
    const options = overlayOptions(dir, storeDir, layer);
    if (options === undefined) return { kind: "binds", why: `the store's path relative to its scratch directories (${relative(dir, storeDir)}) has a character mount options cannot hold` };
    let why = "";
    for (const command of ways) {
      const probe = ["--unshare-all", "--uid", "1000", "--gid", "1000", "--ro-bind", "/", "/"];
      let r: { status: number | null; stderr: string; error?: unknown };
      if (command.length === 1) {
        // kiln's helper, as every build will use it: its server
        const s = serveOnce(command[0]!, { kind: "sandbox", cwd: dir, overlay: options, argv: ["/bin/true"], options: optionsBlob(probe) });
        r = s.error !== undefined ? { status: null, stderr: "", error: `kiln's sandbox server: ${s.error}` }
          : { status: s.setupError !== undefined ? SETUP_FAILED : s.exitCode, stderr: s.setupError ?? s.output };
      } else {
        r = spawnSync(command[0]!, [...command.slice(1), options, bw, ...probe, "/bin/true"], { cwd: dir, env: {}, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      }
      if (r.status === 0) return { kind: "overlay", start: command.length === 1 ? serverOf(command[0]!) : command, options, bwrap: bw };
      if (why) continue;
      const lines = (r.stderr || String(r.error ?? `exit ${r.status}`)).trim().split("\n");
      const mark = lines.find((l) => l.startsWith(SETUP_MARK));
      // the first way's reason, if it is about the namespace or the overlay; the helper failing
      // for itself (not executable, bubblewrap not found by path) leaves the reason to the next way
      if (command.length === 1 && !(r.status === SETUP_FAILED && mark && /^kiln-sandbox: (unshare|setgroups|uid_map|gid_map|private mounts|the build's overlay)/.test(mark))) continue;
      if (r.status === SETUP_FAILED && mark?.includes("overlay could not be mounted")) {
        // mount(8) names the probe's mount point, gone by now: its reason alone, and what the store is on
        const reason = (mark === lines[0] ? mark.replace(/^.*could not be mounted: /, "") : lines[0]!.replace(/^mount: [^:]*: /, ""));
        const fs = ({ 0x794c7630: "overlayfs", 0x6969: "NFS", 0x65735546: "FUSE" } as Record<number, string>)[statfsSync(storeDir).type];
        why = `an overlay cannot be mounted over this store${fs ? `, which is on ${fs}` : ""} (${reason})`;
      } else if (r.status === SETUP_FAILED && mark) why = `a user and mount namespace cannot be made here (${mark.slice(SETUP_MARK.length)})`;
      else if (lines[0]!.startsWith("unshare:")) why = `unshare cannot make a user and mount namespace here (${lines[0]})`;
      else why = `bubblewrap cannot run in the build's namespace (${lines[0]})`;
    }
    return { kind: "binds", why: why || "kiln's sandbox helper failed, and unshare and mount (util-linux) are not installed" };
  } finally {
    removeTree(dir);
  }
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
export function runSandboxed(bwrap: string, req: SandboxRequest, onOutput: (chunk: Buffer) => void, signal: AbortSignal, prepared?: { sandbox: PreparedSandbox; launch: SandboxLaunch }): Promise<{ exitCode: number | null; signal: string | null; outDir: string }> {
  checkSandbox(bwrap);
  const launch = prepared?.launch ?? sandboxLaunch(bwrap, req);
  const view = req.view;
  if (view?.kind === "overlay" && view.start instanceof SandboxServer) {
    // kiln's helper: its server starts the build, in a sandbox prepared for it (req.scratch is the
    // prepared one's, and the first part of its options the same) or from scratch
    const started = prepared ? view.start.start(prepared.sandbox, launch.own, optionsBlob(launch.options.slice(launch.split)), onOutput, signal)
      : view.start.run({ kind: "sandbox", cwd: launch.cwd!, overlay: view.options, argv: launch.own, options: optionsBlob(launch.options) }, onOutput, signal);
    return started
      .then((r) => {
        if (r.setupError !== undefined) throw setupFailure(r.setupError);
        return { exitCode: r.exitCode, signal: r.signal, outDir: launch.outDir };
      });
  }
  return new Promise((resolvePromise, reject) => {
    // the child inherits the umask at fork: 022 for the builds, whatever kiln's own is
    const saved = process.umask(0o022);
    let child;
    try {
      child = spawn(launch.file, [...launch.prefix, "--args", "3", "--", ...launch.command],
        { stdio: ["ignore", "pipe", "pipe", "pipe"], detached: true, env: {}, ...(launch.cwd ? { cwd: launch.cwd } : {}) });
    } finally {
      process.umask(saved);
    }
    const argsPipe = child.stdio[3] as Writable;
    // bubblewrap may fail before it reads them all (it is missing, say): the child's error or exit says why
    argsPipe.on("error", () => {});
    argsPipe.end(optionsBlob(launch.options));
    // the first output, to tell the overlay's mount failing (SETUP_FAILED) from the build's own failure
    let head = "";
    const output = (chunk: Buffer) => {
      if (head.length < 4096) head += chunk.toString("utf8", 0, 4096);
      onOutput(chunk);
    };
    child.stdout!.on("data", output);
    child.stderr!.on("data", output);
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
      const mark = head.split("\n").find((l) => l.startsWith(SETUP_MARK));
      if (code === SETUP_FAILED && req.view?.kind === "overlay" && mark) {
        reject(setupFailure(mark));
        return;
      }
      resolvePromise({ exitCode: code, signal: sig, outDir: launch.outDir });
    });
  });
}

/** bubblewrap's options as `--args` reads them. */
function optionsBlob(options: string[]): Buffer {
  return Buffer.from(options.map((a) => `${a}\0`).join(""));
}

function setupFailure(why: string): KilnError {
  return new KilnError("SANDBOX_UNAVAILABLE", `the sandbox could not be set up: ${why.trim().split("\n")[0]}`,
    "KILN_SANDBOX_VIEW=binds builds through bind mounts instead of an overlay");
}

/** One server per helper, for the life of the process. */
const servers = new Map<string, SandboxServer>();
function serverOf(helper: string): SandboxServer {
  let s = servers.get(helper);
  if (!s) servers.set(helper, (s = new SandboxServer(helper)));
  return s;
}

export interface SandboxBuilderOptions {
  /** the bubblewrap binary */
  bwrap: string;
  /** host directory holding store paths */
  storeDir: string;
  /** a fresh scratch directory on the host (under the store, so outputs move into it by rename) */
  scratchDir: (label: string) => string;
  /** the same, named but not made: kiln's sandbox server makes a prepared sandbox's, off kiln's thread */
  scratchName?: (label: string) => string;
  systems: readonly string[];
  /** told once when the store view falls back to bind mounts (StoreView), with why */
  warn?: (message: string) => void;
}

/** The Builder port on this machine: each request runs in bubblewrap. */
export class SandboxBuilder implements Builder {
  readonly systems: readonly string[];
  constructor(private readonly o: SandboxBuilderOptions) {
    this.systems = o.systems;
  }

  /** bubblewrap works here, and how builds will see the store (found once: storeViewOf). */
  checkAvailable(): void {
    this.view();
  }

  private view(): StoreView {
    return storeViewOf(this.o.bwrap, this.o.storeDir, () => this.o.scratchDir("sandbox-view"), this.o.warn);
  }

  /**
   * A sandbox prepared for the next build (kiln's sandbox server): its namespaces, overlay and the
   * part of its root every build of its kind shares are made while the build before it runs, so a
   * chain of small builds waits only for what is its own (inputs, environment, the command). It
   * serves the next build whose first part of the options is the same (`key`), else it is discarded.
   */
  #next: { key: string; scratch: string; sandbox: PreparedSandbox; server: SandboxServer } | undefined;
  #atEnd = false;

  async build(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    const view = this.view();
    const server = view.kind === "overlay" && view.start instanceof SandboxServer ? view.start : undefined;
    const request = (scratch: string): SandboxRequest => ({
      builder: req.builder, args: req.args, env: req.env, inputs: req.inputs, ...(req.usr !== undefined ? { usr: req.usr } : {}), tools: req.hostTools, network: req.network,
      scratch, storeDir: this.o.storeDir, buildCores: req.cores, view,
    });
    const ready = server ? this.#takePrepared(request) : undefined;
    let scratch = ready?.scratch ?? this.o.scratchDir(req.name);
    try {
      let r;
      try {
        const running = runSandboxed(this.o.bwrap, request(scratch), io.onOutput, io.signal, ready);
        // the next build's sandbox, made once this one's request is on its way (not before it)
        if (server) this.#prepare(server, request);
        r = await running;
      } catch (e) {
        // a prepared sandbox that could not take the build (it ended first): the build starts afresh
        if (!ready || !(e instanceof KilnError && e.code === "SANDBOX_UNAVAILABLE") || io.signal.aborted) throw e;
        removeTree(scratch);
        scratch = this.o.scratchDir(req.name);
        r = await runSandboxed(this.o.bwrap, request(scratch), io.onOutput, io.signal);
      }
      const { outDir, ...rest } = r;
      const outputs: Record<string, string | undefined> = {};
      for (const [o, name] of Object.entries(req.outputs)) {
        const host = join(outDir, name);
        outputs[o] = existsOrLink(host) ? host : undefined;
      }
      const done = scratch;
      return { ...rest, outputs, release: (later) => (later && server ? removeScratchLater(done, (d) => server.remove(d)) : removeTree(done)) };
    } catch (e) {
      removeTree(scratch);
      throw e;
    }
  }

  /** The prepared sandbox, if it can serve this request (it is then this build's); else it is discarded. */
  #takePrepared(request: (scratch: string) => SandboxRequest): { scratch: string; sandbox: PreparedSandbox; launch: SandboxLaunch } | undefined {
    const p = this.#next;
    if (!p) return undefined;
    this.#next = undefined;
    if (!p.sandbox.ended) {
      const launch = sandboxLaunch(this.o.bwrap, request(p.scratch), true);
      if (launch.options.slice(0, launch.split).join("\0") === p.key) return { ...p, launch };
    }
    this.#discard(p);
    return undefined;
  }

  /** Prepare a sandbox of this request's kind for the next build. */
  #prepare(server: SandboxServer, request: (scratch: string) => SandboxRequest): void {
    // the scratch dir's layout is made by the server's child (--scratch-dir), off this thread; the
    // dir too, where it is only named
    const scratch = this.o.scratchName?.("prepared") ?? this.o.scratchDir("prepared");
    try {
      const launch = sandboxLaunch(this.o.bwrap, request(scratch), true);
      const first = launch.options.slice(0, launch.split);
      const view = request(scratch).view as Extract<StoreView, { kind: "overlay" }>;
      const layout = SCRATCH_LAYOUT.flatMap((d) => ["--scratch-dir", d]);
      const p = { key: first.join("\0"), scratch, sandbox: server.makeAhead({ cwd: scratch, overlay: view.options, options: optionsBlob([...layout, ...first]) }), server };
      this.#next = p;
      // the realize's end: a prepared sandbox nobody took goes, with its scratch dir
      if (!this.#atEnd) {
        this.#atEnd = true;
        beforeScratchRemoved(() => {
          this.#atEnd = false;
          const left = this.#next;
          this.#next = undefined;
          if (left) this.#discard(left);
        });
      }
    } catch {
      // not prepared (a full disk, say): the next build starts afresh
      removeTree(scratch);
    }
  }

  #discard(p: { scratch: string; sandbox: PreparedSandbox; server: SandboxServer }): void {
    p.server.discard(p.sandbox);
    removeScratchLater(p.scratch, (d) => p.server.remove(d));
  }
}
