// What `kiln run` and `kiln shell` share: the targets' outputs (realized first when they are not
// in the store, with progress only then), and starting a command where /kiln/store is the store
// (engine/host-view.ts), with the outputs' bin folders first on PATH, in the user's directory and
// environment. The command's exit status becomes kiln's.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { hostView } from "../engine/host-view.js";
import { KilnError, isKilnError } from "../store/errors.js";
import { LOGICAL_STORE, type StorePathName } from "../store/paths.js";
import { bwrapBinary, recipesEntry, type GlobalArgs } from "./context.js";
import { toStorePaths } from "./resolve-paths.js";
import { withContext } from "./run.js";

export interface Outputs {
  storeDir: string;
  paths: StorePathName[];
}

/**
 * The store paths of `targets` (targets, result links or store paths). Undefined when that
 * failed: the error is reported and the exit code set, as for any command.
 */
export async function outputsOf(argv: GlobalArgs, targets: string[]): Promise<Outputs | undefined> {
  let got: Outputs | undefined;
  let missing = false;
  // quietly first: a run of something already built prints nothing of kiln's own
  await withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
    try {
      got = { storeDir: ctx.store.storeDir, paths: await toStorePaths(ctx, recipesEntry(argv), targets) };
    } catch (e) {
      if (!(isKilnError(e) && e.code === "STORE_PATH_INVALID" && e.context.notRealized)) throw e;
      missing = true;
    }
  });
  if (missing) {
    await withContext(argv, async (ctx) => {
      got = { storeDir: ctx.store.storeDir, paths: await toStorePaths(ctx, recipesEntry(argv), targets, { realize: true }) };
    });
  }
  return got;
}

/** The program an output stands for: the output itself if it is one, bin/<name>, or its only program. */
export function mainProgram(o: Outputs, path: StorePathName, target: string): string {
  const host = join(o.storeDir, path);
  const st = statSync(host);
  if (st.isFile()) {
    if (st.mode & 0o111) return `${LOGICAL_STORE}/${path}`;
    throw new KilnError("USAGE", `${target} is a file, not a program (${host})`, `run something with it: kiln shell ${target} -- <command> [args]`);
  }
  const bin = join(host, "bin");
  const progs = existsSync(bin) ? readdirSync(bin).sort() : [];
  const name = path.slice(33);
  const pick = progs.includes(name) ? name : progs.length === 1 ? progs[0] : undefined;
  if (pick) return `${LOGICAL_STORE}/${path}/bin/${pick}`;
  throw new KilnError("USAGE", progs.length ? `${target} has several programs (${progs.join(", ")}) and none is named ${name}` : `${target} has no program to run (no bin/ in ${host})`,
    progs.length ? `name one: kiln shell ${target} -- <program> [args]` : `start a shell with it instead: kiln shell ${target}`);
}

/** The words after `--`: yargs (populate--) keeps them apart from the declared arguments. */
export function afterDashes(argv: object): string[] {
  const rest = "--" in argv ? argv["--"] : undefined;
  return Array.isArray(rest) ? rest.map(String) : [];
}

/** Run a command in the host view of the store; resolves with its exit status (128 + signal when killed). */
export function launch(o: Outputs, command: string[]): Promise<number> {
  const bins = o.paths.filter((p) => existsSync(join(o.storeDir, p, "bin"))).map((p) => `${LOGICAL_STORE}/${p}/bin`);
  const env = { ...process.env, PATH: [...bins, process.env.PATH ?? "/usr/bin:/bin"].join(":") };
  const view = hostView({ bwrap: bwrapBinary(), storeDir: o.storeDir, cwd: process.cwd(), command });
  return new Promise((resolve, reject) => {
    const child = spawn(view.argv[0]!, view.argv.slice(1), { stdio: "inherit", env });
    // the terminal's Ctrl-C is the command's to handle (a shell ignores it): kiln waits for it
    const ignore = () => {};
    process.on("SIGINT", ignore);
    child.on("error", (e) => {
      process.off("SIGINT", ignore);
      const what = view.namespace ? `bubblewrap (${view.argv[0]})` : command[0];
      reject(new KilnError((e as NodeJS.ErrnoException).code === "ENOENT" && view.namespace ? "SANDBOX_UNAVAILABLE" : "USAGE", `cannot start ${what}: ${e.message}`,
        view.namespace ? "install bubblewrap (apt-get install bubblewrap), or keep the store at /kiln/store to run outputs directly" : "check the command"));
    });
    child.on("exit", (code, signal) => {
      process.off("SIGINT", ignore);
      resolve(code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0));
    });
  });
}
