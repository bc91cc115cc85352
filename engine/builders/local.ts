// The builder of this machine: the builtin builders (engine/builtins/) run inside kiln, everything
// else goes to the sandbox. A builtin reads only its declared inputs and writes only its scratch
// output, like a sandboxed build; what it prints goes to the build log, and a failure is the
// build's failure (exit code 1, the message in the log), not kiln's.
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { isKilnError, KilnError } from "../../store/errors.js";
import { existsOrLink, LOGICAL_STORE, removeTree } from "../../store/paths.js";
import type { Builder, BuildIO, BuildResult } from "../builder.js";
import type { BuildRequest } from "../build-request.js";
import { isBuiltinBuilder, type BuiltinBuilder } from "../builtins/builders.js";
import { seedRoot, seedRootRequestFromArgs } from "../builtins/seed-root.js";
import { unpackDeb } from "../builtins/unpack-deb.js";

export interface LocalBuilderOptions {
  /** host directory holding store paths */
  storeDir: string;
  /** a fresh scratch directory on the host, on the store's file system (builtins hard-link) */
  scratchDir: (label: string) => string;
}

export class LocalBuilder implements Builder {
  readonly systems: readonly string[];
  constructor(private readonly sandbox: Builder, private readonly o: LocalBuilderOptions) {
    this.systems = sandbox.systems;
  }

  checkAvailable(): void {
    this.sandbox.checkAvailable();
  }

  build(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    if (!req.builder.startsWith("builtin:")) return this.sandbox.build(req, io);
    return this.builtin(req, io);
  }

  private async builtin(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    const scratch = this.o.scratchDir(req.name);
    const outputs: Record<string, string | undefined> = {};
    for (const [o, name] of Object.entries(req.outputs)) outputs[o] = join(scratch, "store", name);
    const release = () => removeTree(scratch);
    const say = (line: string) => io.onOutput(Buffer.from(`${line}\n`));
    let exitCode = 0;
    try {
      if (!isBuiltinBuilder(req.builder)) throw new KilnError("RECIPE_INVALID", `unknown builtin builder ${req.builder}`);
      const out = outputs.out;
      if (out === undefined || Object.keys(req.outputs).length !== 1) {
        throw new KilnError("RECIPE_INVALID", `${req.builder} writes exactly one output, out (the derivation declares ${Object.keys(req.outputs).join(", ")})`);
      }
      mkdirSync(dirname(out), { recursive: true });
      await this.run(req.builder, req, out, say);
      io.signal.throwIfAborted();
    } catch (e) {
      if (io.signal.aborted) {
        release();
        throw e;
      }
      if (!isKilnError(e) && !(e instanceof Error && "code" in e)) {
        release();
        throw e; // a bug in the builtin, not a failed build
      }
      say(`${req.builder}: ${e instanceof KilnError ? e.describe() : (e as Error).message}`);
      exitCode = 1;
    }
    for (const o of Object.keys(outputs)) if (!existsOrLink(outputs[o]!)) outputs[o] = undefined;
    return { exitCode, signal: null, outputs, release };
  }

  private async run(builder: BuiltinBuilder, req: BuildRequest, out: string, say: (line: string) => void): Promise<void> {
    const visible = new Set<string>(req.inputs);
    // an argument naming a store path must be one of the build's inputs: a builtin sees no more
    // of the store than a sandboxed build would
    const toHost = (logical: string): string => {
      const name = logical.startsWith(`${LOGICAL_STORE}/`) ? logical.slice(LOGICAL_STORE.length + 1) : "";
      if (!visible.has(name)) throw new KilnError("RECIPE_INVALID", `${builder}: ${logical} is not an input of ${req.name}`, "pass the store path as a derivation argument, so that it is an input");
      return join(this.o.storeDir, name);
    };
    switch (builder) {
      case "builtin:unpack-deb": {
        if (req.args.length !== 1) throw new KilnError("RECIPE_INVALID", `builtin:unpack-deb takes one argument, the .deb (got ${req.args.length})`);
        const r = await unpackDeb(toHost(req.args[0]!), out);
        say(`unpacked ${req.args[0]}: ${r.files} files (${r.bytes} bytes), ${r.dirs} directories, ${r.symlinks} symlinks, ${r.hardlinks} hard links`);
        if (r.skipped.length > 0) say(`not unpacked (a store path cannot hold them): ${r.skipped.join(", ")}`);
        return;
      }
      case "builtin:seed-root": {
        const r = seedRoot(seedRootRequestFromArgs(req.args, out, toHost));
        say(`merged: ${r.files} files (${r.linked} hard-linked, ${r.copied} copied, ${r.shared} shared by several packages), ${r.dirs} directories, ${r.symlinks} symlinks`);
        for (const [path, d] of Object.entries(r.decided)) say(`${path}: ${d.winner}'s, not ${d.losers.join(", ")}'s`);
        return;
      }
    }
  }
}
