// The fixtures' seed (fixtures/lib/seed.json) as the CLI tests see it: where its .debs are cached
// between runs (a mirror folder outside the repo, handed to kiln as KILN_MIRRORS, so that a test
// store fetches nothing from the network), and which derivations of a run are the seed's rather
// than the fixture's own.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { sha256File } from "../../store/digest.js";

interface SeedSpec {
  packages: Record<string, { version: string; arch: string; sha256: string; url: string }>;
  seeds: Record<string, { packages: string[] }>;
}

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), "../../fixtures/lib");
const spec = JSON.parse(readFileSync(join(LIB, "seed.json"), "utf8")) as SeedSpec;

/** The .deb cache: $KILN_SEED_DEB_CACHE, else ~/.cache/kiln-test/seed-debs (shared with the seed's own tests). */
export const SEED_DEB_CACHE = process.env.KILN_SEED_DEB_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "kiln-test", "seed-debs");

const debName = (name: string) => {
  const p = spec.packages[name]!;
  return `${name}_${p.version.replace(/^\d+:/, "")}_${p.arch}.deb`;
};

/** Names of the seed's derivations: the .deb fetches, their unpacks, the merged trees. */
export const SEED_NODES: ReadonlySet<string> = new Set([
  ...Object.keys(spec.packages).flatMap((n) => [debName(n), `${n}-unpacked`]),
  ...Object.keys(spec.seeds),
]);

/** Build invocations (unpacks and merges) a fresh store makes for a seed. */
export function seedBuildCount(seed: string): number {
  return spec.seeds[seed]!.packages.length + 1;
}

/** Derivations of a seed in a run's graph: a fetch and an unpack per package, one merge. */
export function seedNodeCount(seed: string): number {
  return 2 * spec.seeds[seed]!.packages.length + 1;
}

let ensured = false;

/**
 * Put every seed .deb into the cache, once per test process: what is there with the pinned sha256
 * is kept; what is missing is downloaded once (Debian's archive URL, else `apt-get download`).
 * Synchronous, so that copyFixture can call it.
 */
export function ensureSeedDebs(): void {
  if (ensured) return;
  mkdirSync(SEED_DEB_CACHE, { recursive: true });
  for (const [name, p] of Object.entries(spec.packages)) {
    const file = join(SEED_DEB_CACHE, debName(name));
    if (existsSync(file) && sha256File(file) === p.sha256) continue;
    const tmp = mkdtempSync(join(SEED_DEB_CACHE, ".download-"));
    try {
      const got = download(p.url, tmp) ?? aptDownload(`${name}:${p.arch}=${p.version}`, tmp);
      if (!got || sha256File(got) !== p.sha256) throw new Error(`cannot fetch ${debName(name)} with sha256 ${p.sha256} (from ${p.url} or apt-get download); put it into ${SEED_DEB_CACHE}`);
      renameSync(got, file);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  ensured = true;
}

function download(url: string, dir: string): string | undefined {
  const dst = join(dir, "download.deb");
  const script = "const [u, d] = process.argv.slice(1); const r = await fetch(u); if (!r.ok) process.exit(1); (await import('node:fs')).writeFileSync(d, Buffer.from(await r.arrayBuffer()));";
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, url, dst], { stdio: "ignore", timeout: 300_000 });
  return r.status === 0 && existsSync(dst) ? dst : undefined;
}

function aptDownload(spec: string, dir: string): string | undefined {
  const r = spawnSync("apt-get", ["download", "-q", spec], { cwd: dir, stdio: "ignore", timeout: 300_000 });
  const deb = r.status === 0 ? readdirSync(dir).find((f) => f.endsWith(".deb")) : undefined;
  return deb ? join(dir, deb) : undefined;
}
