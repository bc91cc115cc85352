// Owner of the table host_tool_cache: host tool fingerprints, revalidated by the stat of the
// binaries (engine/hosttools.ts decides; this only keeps the JSON).
import type { Db } from "./database.js";

export class HostToolTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      get: db.prepare<[string], { json: string }>("SELECT json FROM host_tool_cache WHERE key = ?"),
      put: db.prepare("INSERT OR REPLACE INTO host_tool_cache (key, json) VALUES (?, ?)"),
    };
  }

  get(key: string): string | undefined {
    return this.q.get.get(key)?.json;
  }

  put(key: string, json: string): void {
    this.q.put.run(key, json);
  }
}
