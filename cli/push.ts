// Pushing from the command line: the signing key, the Pusher for a --to / --push-to URL, and
// realize --push-to, which pushes each build's closure as soon as it is registered and, at the
// end, the realisation records of everything else the realize resolved (cheap, and what lets
// another machine plan the same targets from the cache).
import { readFileSync } from "node:fs";
import type { Context } from "../engine/context.js";
import type { DrvHash } from "../engine/derivation.js";
import type { Graph } from "../engine/evaluate.js";
import type { EventSink, KilnEvent } from "../engine/events.js";
import { openBackend } from "../engine/cache/backend.js";
import { Pusher, type PushRealisation } from "../engine/cache/push.js";
import { parseSecretKey, type SecretKey } from "../engine/cache/signing.js";
import { KilnError } from "../store/errors.js";
import type { StorePathName } from "../store/paths.js";
import type { Outputs } from "../engine/realize.js";
import { settingsOf, type CacheArgs } from "./settings.js";

export function secretKey(args: CacheArgs, what: string): SecretKey {
  const file = settingsOf(args).secretKeyFile;
  if (!file) {
    throw new KilnError("USAGE", `${what} signs what it pushes, and no secret key is given`,
      "make a key pair with `kiln cache keygen NAME`, then pass --secret-key NAME.sec (or set KILN_SECRET_KEY_FILE, or secret-key-file in kiln.conf)");
  }
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new KilnError("USAGE", `cannot read the secret key ${file}: ${(e as Error).message}`, "give the NAME.sec file that `kiln cache keygen NAME` wrote");
  }
  return parseSecretKey(text, file);
}

export function pusherFor(ctx: Context, args: CacheArgs, url: string, what: string): Pusher {
  const key = secretKey(args, what);
  const backend = openBackend(url, { timeoutMs: settingsOf(args).cacheTimeoutMs });
  return new Pusher(ctx.store, backend, key, {
    signal: ctx.signal,
    scratchDir: () => ctx.store.scratchDir("push"),
    onPushed: (path, bytes) => ctx.events({ type: "pushed", path, bytes, to: backend.url }),
  });
}

/** Every realisation the realize resolved, for records: (resolved, output) -> path. */
export function realisationsOf(ctx: Context, graph: Graph, outputs: Map<DrvHash, Outputs>): PushRealisation[] {
  const out: PushRealisation[] = [];
  for (const [drv, outs] of outputs) {
    const n = graph.byHash.get(drv);
    if (!n) continue;
    const resolved = n.drv.fixed ? n.hash : ctx.store.resolution(n.hash);
    if (!resolved) continue;
    for (const [output, path] of Object.entries(outs)) out.push({ resolved, output, path });
  }
  return out;
}

/** realize --push-to: watch the events, push each build's outputs (with their closure) as it is registered. */
export class PushAfterBuild {
  private readonly pending: Array<Promise<void>> = [];
  private readonly resolved = new Map<string, string>();
  private failure: unknown;

  constructor(readonly pusher: Pusher) {}

  /** The context's event sink, also watching for builds. */
  watch(events: EventSink): EventSink {
    return (e: KilnEvent) => {
      events(e);
      if (e.type === "started") this.resolved.set(e.node.drv, e.resolved);
      else if (e.type === "built") {
        const resolved = this.resolved.get(e.node.drv)!;
        const records = Object.entries(e.paths).map(([output, path]) => ({ resolved, output, path: path as StorePathName }));
        this.pending.push(this.pusher.push(Object.values(e.paths) as StorePathName[], records).catch((err: unknown) => void (this.failure ??= err)));
      }
    };
  }

  /** Wait for the pushes; then push the records of the rest. A failed push throws here. */
  async finish(records: PushRealisation[]): Promise<void> {
    await Promise.all(this.pending.splice(0));
    if (this.failure) throw this.failure;
    await this.pusher.push([], records);
  }
}
