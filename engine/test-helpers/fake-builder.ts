// A recording fake builder for in-process realize tests: it implements the Builder port without
// a sandbox, so tests count invocations (caching, cutoff, keep-going, cancellation) exactly.
//
// A request is interpreted from its environment:
//   CONTENT   text written to every output (default: the derivation name)
//   READ      space-separated /kiln/store paths whose files' contents are appended (inputs)
//   EXIT      exit code (default 0); a non-zero code produces no outputs
//   DELAY_MS  wait this long first (aborted by the signal, like a killed process)
//   NO_OUTPUT the build "forgets" to create its outputs
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LocalStore } from "../../store/local-store.js";
import { LOGICAL_STORE, removeTree } from "../../store/paths.js";
import type { BuildIO, BuildResult, Builder } from "../builder.js";
import type { BuildRequest } from "../build-request.js";

export class FakeBuilder implements Builder {
  readonly requests: BuildRequest[] = [];
  /** names of the builds, in the order they started */
  readonly started: string[] = [];
  running = 0;
  maxRunning = 0;

  constructor(
    private readonly store: LocalStore,
    readonly systems: readonly string[] = ["x86_64-linux"],
  ) {}

  checkAvailable(): void {}

  /** How many times a derivation of this name was built. */
  count(name: string): number {
    return this.requests.filter((r) => r.name === name).length;
  }

  async build(req: BuildRequest, io: BuildIO): Promise<BuildResult> {
    this.requests.push(req);
    this.started.push(req.name);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const scratch = this.store.scratchDir(`fake-${req.name}`);
    try {
      io.onOutput(Buffer.from(`building ${req.name}\n`));
      const delay = Number(req.env.DELAY_MS ?? 0);
      if (delay > 0) {
        const aborted = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), delay);
          io.signal.addEventListener("abort", () => (clearTimeout(t), resolve(true)), { once: true });
        });
        if (aborted) return { exitCode: null, signal: "SIGKILL", outputs: {}, release: () => removeTree(scratch) };
      }
      const exit = Number(req.env.EXIT ?? 0);
      const outputs: Record<string, string | undefined> = {};
      if (exit === 0 && !req.env.NO_OUTPUT) {
        let text = req.env.CONTENT ?? req.name;
        for (const p of (req.env.READ ?? "").split(" ").filter(Boolean)) {
          text += "\n" + readFileSync(join(this.store.storeDir, p.slice(LOGICAL_STORE.length + 1)), "utf8");
        }
        mkdirSync(join(scratch, "out"), { recursive: true });
        for (const [o, name] of Object.entries(req.outputs)) {
          const host = join(scratch, "out", name);
          writeFileSync(host, text);
          outputs[o] = host;
        }
      } else if (exit !== 0) io.onOutput(Buffer.from(`failing with ${exit}\n`));
      return { exitCode: exit, signal: null, outputs, release: () => removeTree(scratch) };
    } finally {
      this.running--;
    }
  }
}
