// Owner of the tables profiles and generations (store/profiles.ts says what they mean).
import type { Db } from "./database.js";

export interface GenRow {
  profile: string;
  number: number;
  path: string;
  created_at: number;
  entries: string;
}

export class ProfileTable {
  private readonly q;
  constructor(db: Db) {
    this.q = {
      summaries: db.prepare<[], { name: string; current: number; numbers: string }>(
        "SELECT p.name, p.current, json_group_array(g.number) AS numbers FROM profiles p JOIN generations g ON g.profile = p.name GROUP BY p.name ORDER BY p.name",
      ),
      current: db.prepare<[string], { current: number }>("SELECT current FROM profiles WHERE name = ?"),
      last: db.prepare<[string], { last: number }>("SELECT last FROM profiles WHERE name = ?"),
      generations: db.prepare<[string], GenRow>("SELECT * FROM generations WHERE profile = ? ORDER BY number"),
      generation: db.prepare<[string, number], GenRow>("SELECT * FROM generations WHERE profile = ? AND number = ?"),
      upsert: db.prepare("INSERT INTO profiles (name, current, last) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET current = excluded.current, last = excluded.last"),
      insertGen: db.prepare("INSERT INTO generations (profile, number, path, created_at, entries) VALUES (?, ?, ?, ?, ?)"),
      setCurrent: db.prepare("UPDATE profiles SET current = ? WHERE name = ?"),
      deleteGen: db.prepare("DELETE FROM generations WHERE profile = ? AND number = ?"),
      fingerprint: db.prepare<[], { f: string }>(
        `SELECT json_array((SELECT json_group_array(json_array(name, current)) FROM (SELECT * FROM profiles ORDER BY name)),
                           (SELECT json_group_array(json_array(profile, number, path)) FROM (SELECT * FROM generations ORDER BY profile, number))) AS f`,
      ),
    };
  }

  /** Every profile's current generation and every generation, as one string (changes when one does). */
  fingerprint(): string {
    return this.q.fingerprint.get()!.f;
  }

  summaries(): Array<{ name: string; current: number; numbers: number[] }> {
    return this.q.summaries.all().map((r) => ({ name: r.name, current: r.current, numbers: JSON.parse(r.numbers) as number[] }));
  }

  current(profile: string): number | undefined {
    return this.q.current.get(profile)?.current;
  }

  /** The highest number ever given in this profile (numbers are never reused). */
  last(profile: string): number {
    return this.q.last.get(profile)?.last ?? 0;
  }

  generations(profile: string): GenRow[] {
    return this.q.generations.all(profile);
  }

  generation(profile: string, n: number): GenRow | undefined {
    return this.q.generation.get(profile, n);
  }

  /** A new generation, made current. */
  insertGeneration(g: GenRow): void {
    this.q.upsert.run(g.profile, g.number, g.number);
    this.q.insertGen.run(g.profile, g.number, g.path, g.created_at, g.entries);
  }

  setCurrent(profile: string, n: number): void {
    this.q.setCurrent.run(n, profile);
  }

  deleteGeneration(profile: string, n: number): void {
    this.q.deleteGen.run(profile, n);
  }
}
