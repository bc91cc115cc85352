// Plain reporter: one line per state change, elapsed time in front, the failing node's log tail,
// and a summary. For CI logs and pipes.
import type { KilnEvent } from "../../engine/events.js";
import { skipReason } from "./view-state.js";
import { human } from "../units.js";

export interface PlainOptions {
  write: (s: string) => void;
  /** print every build log line (-L) */
  logs: boolean;
  now: () => number;
}

export function plainReporter(o: PlainOptions): (e: KilnEvent) => void {
  const t0 = o.now();
  const stamp = () => `[${((o.now() - t0) / 1000).toFixed(1).padStart(6)}s]`;
  const line = (s: string) => o.write(`${stamp()} ${s}\n`);
  return (e) => {
    switch (e.type) {
      case "evaluated":
        if (e.unchanged) line(`${e.targets.join(", ")}: nothing changed since the last realize (recipes, sources, host tools); ${e.derivations} derivations not re-evaluated`);
        else line(`evaluated ${e.targets.join(", ")}: ${e.derivations} derivations in ${e.ms} ms`);
        break;
      case "planned": {
        const c = { cached: 0, substitutable: 0, build: 0, fetch: 0, unknown: 0 };
        for (const n of e.nodes) c[n.state]++;
        const download = e.nodes.reduce((t, n) => t + (n.downloadBytes ?? 0), 0);
        const subst = c.substitutable ? `${c.substitutable} to substitute (${human(download)} to download), ` : "";
        line(`planned ${e.nodes.length} derivations: ${c.cached} in the store, ${subst}${c.fetch} to fetch, ${c.build} to build, ${c.unknown} to build unless cut off early`);
        break;
      }
      case "forgotten":
        line(`warning: ${e.missing.length} store path(s) recorded as valid were missing from disk (${e.missing.join(", ")}); forgot them and ${e.paths.length - e.missing.length} path(s) referring to them: what is needed is built again`);
        break;
      case "waiting":
        line(`waiting  ${e.node.name}: ${e.reason}`);
        break;
      case "started":
        line(`${e.kind === "fetch" ? "fetching" : e.kind === "substitute" ? "substituting" : "building"} ${e.node.name}`);
        break;
      case "log":
        if (o.logs) o.write(`${e.node.name}> ${e.line}\n`);
        break;
      case "cached":
        if (e.cutoff) line(`cut off  ${e.node.name}: inputs rebuilt identically, output reused`);
        break;
      case "substituted":
        line(`fetched  ${e.node.name} from ${e.from}`);
        break;
      case "built":
        line(`built    ${e.node.name} in ${(e.ms / 1000).toFixed(1)}s${e.identical ? " (identical to an earlier build)" : ""}`);
        break;
      case "failed":
        line(`FAILED   ${e.node.name}: ${e.message}`);
        if (e.logTail.length) {
          o.write(`  last ${e.logTail.length} log lines of ${e.node.name}:\n`);
          for (const l of e.logTail) o.write(`  | ${l}\n`);
        }
        break;
      case "skipped":
        line(`skipped  ${e.node.name}: ${skipReason(e)}`);
        break;
      case "cancelled":
        line(`cancelled ${e.node.name}`);
        break;
      case "checking":
        line(`checking ${e.node.name}: building it again to compare with the store`);
        break;
      case "checked":
        line(`${e.identical ? "same    " : "DIFFERS "} ${e.node.name}${e.output !== "out" ? `.${e.output}` : ""}: ${e.identical ? "rebuilt bit-identical" : `rebuild differs in ${e.differences.length} file(s): ${e.differences.slice(0, 8).join(", ")}`}`);
        break;
      case "finished":
        if (e.unchanged) line(`done: up to date, the outputs are valid in the store (${e.ms} ms)`);
        else line(`done: ${e.built} built, ${e.cached} from the store, ${e.substituted ? `${e.substituted} substituted, ` : ""}${e.failed} failed${e.cancelled ? `, ${e.cancelled} cancelled` : ""}${e.skipped ? `, ${e.skipped} skipped` : ""} in ${(e.ms / 1000).toFixed(1)}s`);
        break;
      case "dispatched":
        line(`building ${e.node.name} on ${e.machine === "local" ? "this machine" : e.machine}`);
        break;
      case "pushed":
        line(`pushed   ${e.path} to ${e.to} (${human(e.bytes)})`);
        break;
      case "warning":
        o.write(`warning: ${e.message}\n`);
        break;
      case "round":
        line(`round ${e.round}${e.changed.length ? `: changed ${e.changed.join(", ")}` : ""}`);
        break;
      case "watching":
        if (e.error) o.write(`error: ${e.error.message}\n`);
        line(`round ${e.round} ${e.error ? "failed" : "done"}; watching ${e.files} files and folders for changes (Ctrl-C to stop)`);
        break;
      default: {
        const never: never = e;
        void never;
      }
    }
  };
}
