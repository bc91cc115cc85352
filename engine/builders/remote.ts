// Builders elsewhere: the Builder port over a set of SSH machines (engine/builders/ssh.ts) and
// this machine's own builder. A build goes to a machine that builds its system and has a free
// slot, the least busy first; with none free it is built here when this machine can, else it
// waits for a slot. A machine that fails (SSH down, the connection lost, kiln broken there) is
// left alone for a minute and the build goes to another one, or home. Builtin builders
// always run here: they only rearrange files already in the store.
import { KilnError } from "../../store/errors.js";
import type { Builder, BuildIO, BuildResult } from "../builder.js";
import type { BuildRequest } from "../build-request.js";
import { MachineFailed, type SshMachine } from "./ssh.js";

const RETRY_AFTER_MS = 60_000;

export class RemoteBuilders implements Builder {
  readonly systems: readonly string[];
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly machines: SshMachine[], private readonly local: Builder, private readonly clock: () => number) {
    this.systems = [...new Set([...local.systems, ...machines.flatMap((m) => m.spec.systems)])];
  }

  checkAvailable(): void {
    this.local.checkAvailable();
  }

  async build(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    if (req.builder.startsWith("builtin:")) return this.local.build(req, io);
    for (;;) {
      io.signal.throwIfAborted();
      const candidates = this.machines.filter((m) => m.spec.systems.includes(req.system) && m.downUntil <= this.clock());
      const free = candidates.filter((m) => m.running < m.spec.jobs).sort((a, b) => a.running / a.spec.jobs - b.running / b.spec.jobs)[0];
      if (!free) {
        if (this.local.systems.includes(req.system)) {
          io.where?.("local");
          return this.local.build(req, io);
        }
        if (candidates.length === 0) {
          throw new KilnError("SYSTEM_UNSUPPORTED", `no builder for ${req.system} can be reached (${this.machines.filter((m) => m.spec.systems.includes(req.system)).map((m) => m.spec.name).join(", ") || "none is configured"})`,
            "check the builders' SSH access (ssh to them by hand), or build on a machine of that system", { system: req.system });
        }
        await new Promise<void>((resolve) => this.waiters.push(resolve));
        continue;
      }
      free.running++;
      try {
        io.where?.(free.spec.name);
        return await free.build(req, io);
      } catch (e) {
        if (!(e instanceof MachineFailed) || io.signal.aborted) throw e;
        free.downUntil = this.clock() + RETRY_AFTER_MS;
        io.onOutput(Buffer.from(`kiln: builder ${e.message}; building elsewhere\n`));
      } finally {
        free.running--;
        this.waiters.shift()?.();
      }
    }
  }
}
