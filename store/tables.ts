// The table owners of one open database, each made on first use. Small on purpose: the no-op
// launcher (cli/fast.ts) uses it without loading the rest of the store.
import { BuildTable } from "./build-table.js";
import type { Db } from "./database.js";
import { HostToolTable } from "./host-tool-table.js";
import { LockTable } from "./lock-table.js";
import { PathTable } from "./path-table.js";
import { ProfileTable } from "./profile-table.js";
import { RealisationTable } from "./realisation-table.js";
import { RecipeSnapshotTable } from "./recipe-snapshot-table.js";
import { RootTable } from "./root-table.js";
import { TargetTable } from "./target-table.js";
import { TempRootTable } from "./temp-root-table.js";

export class Tables {
  constructor(readonly db: Db) {}
  private cache = new Map<string, unknown>();
  private get<T>(k: string, make: () => T): T {
    let v = this.cache.get(k) as T | undefined;
    if (v === undefined) this.cache.set(k, (v = make()));
    return v;
  }
  get paths(): PathTable { return this.get("paths", () => new PathTable(this.db)); }
  get realisations(): RealisationTable { return this.get("realisations", () => new RealisationTable(this.db)); }
  get builds(): BuildTable { return this.get("builds", () => new BuildTable(this.db)); }
  get locks(): LockTable { return this.get("locks", () => new LockTable(this.db)); }
  get tempRoots(): TempRootTable { return this.get("tempRoots", () => new TempRootTable(this.db)); }
  get roots(): RootTable { return this.get("roots", () => new RootTable(this.db)); }
  get profiles(): ProfileTable { return this.get("profiles", () => new ProfileTable(this.db)); }
  get targets(): TargetTable { return this.get("targets", () => new TargetTable(this.db)); }
  get hostTools(): HostToolTable { return this.get("hostTools", () => new HostToolTable(this.db)); }
  get recipeSnapshots(): RecipeSnapshotTable { return this.get("recipeSnapshots", () => new RecipeSnapshotTable(this.db)); }
  /** Run `fn` in one write transaction (BEGIN IMMEDIATE), or in the caller's. */
  transaction<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn).immediate();
  }
  /** Run `fn` in one read transaction: a consistent snapshot. */
  snapshot<T>(fn: () => T): T {
    return this.db.inTransaction ? fn() : this.db.transaction(fn).deferred();
  }
}

