// kiln verify: re-hash every valid path and compare with the database; find strays.
import { existsSync, readdirSync } from "node:fs";
import type { Argv } from "yargs";
import { hashTree } from "../../store/archive.js";
import { HASH_PART_LEN } from "../../store/digest.js";
import type { StorePathName } from "../../store/paths.js";
import { type GlobalArgs } from "../context.js";
import { EXIT, withContext } from "../run.js";

interface Args extends GlobalArgs {
  json?: boolean;
}

export const command = "verify";
export const describe = "re-hash every store path and report corruption, missing and unregistered paths";

export function builder(y: Argv<GlobalArgs>) {
  return y.option("json", { type: "boolean" }) as unknown as Argv<Args>;
}

export function handler(argv: Args): Promise<void> {
  return withContext({ ...argv, reporter: "quiet" }, async (ctx) => {
    const corrupt: Array<{ path: string; expected: string; actual: string }> = [];
    const missing: string[] = [];
    const rows = ctx.store.allPaths();
    const valid = new Set<string>();
    for (const r of rows) {
      valid.add(r.path);
      const host = ctx.store.hostPath(r.path);
      if (!existsSync(host)) {
        missing.push(host);
        continue;
      }
      const d = hashTree(host, { selfHash: (r.path as StorePathName).slice(0, HASH_PART_LEN) }).digest;
      if (d !== r.nar_digest) corrupt.push({ path: host, expected: r.nar_digest, actual: d });
    }
    const unregistered = readdirSync(ctx.store.storeDir).filter((e) => !valid.has(e)).map((e) => ctx.store.hostPath(e as StorePathName));
    const ok = corrupt.length === 0 && missing.length === 0;
    if (argv.json) {
      process.stdout.write(JSON.stringify({ checked: rows.length, corrupt, missing, unregistered, ok }, null, 2) + "\n");
    } else {
      process.stdout.write(`checked ${rows.length} store paths\n`);
      for (const c of corrupt) process.stdout.write(`CORRUPT  ${c.path}\n  expected ${c.expected}\n  actual   ${c.actual}\n`);
      for (const m of missing) process.stdout.write(`MISSING  ${m}\n`);
      for (const u of unregistered) process.stdout.write(`stray    ${u} (not registered: left by an interrupted build; harmless, collected by gc)\n`);
      process.stdout.write(ok ? "store is consistent\n" : `${corrupt.length} corrupt, ${missing.length} missing\n`);
    }
    return ok ? EXIT.ok : EXIT.failed;
  });
}
