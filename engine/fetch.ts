// The built-in fetcher for fixed-output derivations. Sources are tried in order; the first whose
// bytes have the pinned sha256 wins. Failing that, the error lists every place tried, what each
// gave (unreachable, or which wrong hash), and how to add the file by hand.
import { spawnSync } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { sha256File } from "../store/digest.js";
import { KilnError } from "../store/errors.js";
import type { FetchSource } from "./derivation.js";
import { httpGet as get, type HttpResponse } from "./http-get.js";

export interface Attempt {
  source: string;
  outcome: "ok" | "unreachable" | "mismatch";
  detail: string;
}

export interface FetchRequest {
  name: string;
  sha256: string;
  sources: FetchSource[];
  /** extra local folders to look in (config), tried after the recipe's sources */
  mirrors: string[];
  /** scratch directory; the result is written to `${dir}/out` */
  dir: string;
  env: Record<string, string>;
  signal: AbortSignal;
  onLine: (s: string) => void;
}

export function describeSource(s: FetchSource): string {
  if ("url" in s) return s.url;
  if ("deb" in s) return `debian:${s.deb.package}${s.deb.arch ? `:${s.deb.arch}` : ""}=${s.deb.version}`;
  if ("debSource" in s) return `debian-source:${s.debSource.package}=${s.debSource.version}/${s.debSource.file}`;
  if ("npm" in s) return `npm:${s.npm.name}@${s.npm.version}`;
  if ("file" in s) return `file:${s.file}`;
  return `mirror:${s.mirror}`;
}

/** Fetch into `${dir}/out`; returns the attempts (last one ok) or throws with all of them. */
export async function fetchFixed(req: FetchRequest): Promise<Attempt[]> {
  mkdirSync(req.dir, { recursive: true });
  const out = join(req.dir, "out");
  const attempts: Attempt[] = [];
  // the configured mirrors first, as Nix tries its hashed mirrors before the URLs: a local folder
  // answers at once and spares the network
  const all = [...req.mirrors.map((m) => ({ mirror: m })), ...req.sources];
  for (const [i, s] of all.entries()) {
    if (req.signal.aborted) throw new KilnError("CANCELLED", `fetch of ${req.name} cancelled`);
    const tmp = join(req.dir, `try-${i}`);
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    const label = describeSource(s);
    req.onLine(`trying ${label}`);
    let file: string | undefined;
    try {
      file = await obtain(s, tmp, req);
    } catch (e) {
      // an aborted download says nothing about the source: report the cancellation
      if (req.signal.aborted) throw new KilnError("CANCELLED", `fetch of ${req.name} cancelled`);
      attempts.push({ source: label, outcome: "unreachable", detail: (e as Error).message.split("\n")[0]! });
      continue;
    }
    if (!file) {
      attempts.push({ source: label, outcome: "unreachable", detail: "not found there" });
      continue;
    }
    const actual = sha256File(file);
    if (actual !== req.sha256) {
      attempts.push({ source: label, outcome: "mismatch", detail: actual });
      continue;
    }
    renameSync(file, out);
    rmSync(tmp, { recursive: true, force: true });
    attempts.push({ source: label, outcome: "ok", detail: actual });
    return attempts;
  }
  throw fetchError(req, attempts);
}

function fetchError(req: FetchRequest, attempts: Attempt[]): KilnError {
  const lines = attempts.map((a) =>
    a.outcome === "mismatch"
      ? `  ${a.source}: hash mismatch\n      expected sha256 ${req.sha256}\n      actual   sha256 ${a.detail}`
      : `  ${a.source}: ${a.detail}`,
  );
  const mismatch = attempts.some((a) => a.outcome === "mismatch");
  const head = mismatch
    ? `fixed output ${req.name}: no source gave the pinned bytes (expected sha256 ${req.sha256})`
    : `fixed output ${req.name}: unreachable (sha256 ${req.sha256})`;
  // where the bytes are an npm package, npm itself can download them (with its cache and config)
  const npm = req.sources.flatMap((s) => ("npm" in s ? [`npm pack ${s.npm.name}@${s.npm.version}`] : []));
  const hint = mismatch
    ? "if the new bytes are right (a new upstream version), update sha256 in the recipe to the actual hash; otherwise the source was tampered with or changed"
    : `download the file yourself${npm.length ? ` (e.g. ${npm[0]})` : ""} and add it with: kiln store add-fixed <file>   (it must have sha256 ${req.sha256})`;
  return new KilnError(mismatch ? "FIXED_OUTPUT_MISMATCH" : "FETCH_FAILED", `${head}; tried:\n${lines.join("\n")}`, hint, {
    expected: req.sha256,
    attempts,
  });
}

async function obtain(s: FetchSource, tmp: string, req: FetchRequest): Promise<string | undefined> {
  if ("file" in s) {
    if (!existsSync(s.file)) return undefined;
    const dst = join(tmp, basename(s.file));
    copyFileSync(s.file, dst);
    return dst;
  }
  if ("mirror" in s) {
    for (const cand of [join(s.mirror, "sha256", req.sha256), join(s.mirror, req.sha256), join(s.mirror, req.name)]) {
      if (existsSync(cand) && statSync(cand).isFile()) {
        const dst = join(tmp, "file");
        copyFileSync(cand, dst);
        if (sha256File(dst) === req.sha256) return dst;
      }
    }
    return undefined;
  }
  if ("url" in s) return download(s.url, tmp, req);
  if ("npm" in s) return obtainNpm(s.npm, tmp, req);
  if ("debSource" in s) return obtainDebSource(s.debSource, tmp, req);
  // a Debian package, exactly as the archive serves it
  const spec = `${s.deb.package}${s.deb.arch ? `:${s.deb.arch}` : ""}=${s.deb.version}`;
  const r = spawnSync("apt-get", ["download", "-q", spec], { cwd: tmp, encoding: "utf8", env: req.env, timeout: 30 * 60_000 });
  if (r.error) throw new Error(`apt-get: ${r.error.message}`);
  if (r.status !== 0) {
    const msg = (r.stderr || r.stdout).trim().split("\n").filter(Boolean).pop() ?? `exit ${r.status}`;
    throw new Error(`apt-get download ${spec}: ${msg}${/Unable to locate|Can't find|not found/i.test(msg) ? " (run apt-get update; for :arm64 also dpkg --add-architecture arm64)" : ""}`);
  }
  const deb = readdirSync(tmp).find((f) => f.endsWith(".deb"));
  return deb ? join(tmp, deb) : undefined;
}

/** Debian's archive and its security archive, unless the environment names a mirror (KILN_DEBIAN_ARCHIVE, KILN_DEBIAN_SECURITY). */
function debianArchives(env: Record<string, string>): { archive: string; security: string } {
  return {
    archive: (env.KILN_DEBIAN_ARCHIVE || "http://deb.debian.org/debian").replace(/\/+$/, ""),
    security: (env.KILN_DEBIAN_SECURITY || "http://deb.debian.org/debian-security").replace(/\/+$/, ""),
  };
}

/** The suite whose source indices apt is given when the pool does not have the file (KILN_DEBIAN_SUITE, default bookworm). */
const DEFAULT_SUITE = "bookworm";

/**
 * A file of a Debian source package. The archive's pool holds it at a place its name gives
 * (pool/<component>/<prefix>/<package>/<file>): tried first, in main, contrib and non-free and in
 * the security archive, a request each. Failing that, `apt-get source --download-only` with an
 * apt configuration of its own (deb-src lines for the suite, its own index and cache folders in
 * the scratch directory): it finds a file the pool moved, and works where the host's apt has no
 * deb-src lines, without touching the host's apt state.
 */
async function obtainDebSource(d: { package: string; version: string; file: string }, tmp: string, req: FetchRequest): Promise<string | undefined> {
  const { archive, security } = debianArchives(req.env);
  const prefix = d.package.startsWith("lib") ? d.package.slice(0, 4) : d.package[0]!;
  const pools = [
    ...["main", "contrib", "non-free"].map((c) => `${archive}/pool/${c}/${prefix}/${d.package}/${d.file}`),
    `${security}/pool/updates/main/${prefix}/${d.package}/${d.file}`,
  ];
  for (const url of pools) {
    const res = await httpGet(url, req.signal, {}, "HEAD");
    res.discard();
    if (!res.ok) continue;
    req.onLine(`found in the pool: ${url}`);
    return download(url, tmp, req);
  }
  req.onLine(`not in the pool at ${archive}: asking apt-get source`);
  const suite = req.env.KILN_DEBIAN_SUITE || DEFAULT_SUITE;
  const apt = join(tmp, "apt");
  for (const dir of ["lists/partial", "cache/archives/partial", "etc", "get"]) mkdirSync(join(apt, dir), { recursive: true });
  writeFileSync(join(apt, "etc/sources.list"), [
    `deb-src ${archive} ${suite} main contrib non-free non-free-firmware`,
    `deb-src ${archive} ${suite}-updates main contrib non-free non-free-firmware`,
    `deb-src ${security} ${suite}-security main contrib non-free non-free-firmware`,
    "",
  ].join("\n"));
  const opts = [
    "-q", "-o", `Dir::Etc::SourceList=${join(apt, "etc/sources.list")}`, "-o", "Dir::Etc::SourceParts=/dev/null",
    "-o", `Dir::State::Lists=${join(apt, "lists")}`, "-o", `Dir::Cache=${join(apt, "cache")}`, "-o", "APT::Sandbox::User=root",
  ];
  const run = (args: string[], cwd: string) => {
    const r = spawnSync("apt-get", [...opts, ...args], { cwd, encoding: "utf8", env: req.env, timeout: 30 * 60_000 });
    if (r.error) throw new Error(`apt-get: ${r.error.message}`);
    return r;
  };
  const upd = run(["update"], tmp);
  if (upd.status !== 0) throw new Error(`apt-get update (deb-src for ${suite}): ${(upd.stderr || upd.stdout).trim().split("\n").pop()}`);
  const spec = `${d.package}=${d.version}`;
  const r = run(["source", "--download-only", spec], join(apt, "get"));
  if (r.status !== 0) {
    const msg = (r.stderr || r.stdout).trim().split("\n").filter(Boolean).pop() ?? `exit ${r.status}`;
    if (/Unable to find a source package|Can not find version/i.test(msg)) return undefined;
    throw new Error(`apt-get source ${spec}: ${msg}`);
  }
  const file = join(apt, "get", d.file);
  if (existsSync(file)) return file;
  throw new Error(`apt-get source ${spec} gave ${readdirSync(join(apt, "get")).sort().join(", ")}, not ${d.file}`);
}

/** Where npm itself would look, unless the environment names another registry (as npm does). */
export const NPM_REGISTRY = "https://registry.npmjs.org/";

/**
 * A package tarball exactly as the npm registry serves it: the version's metadata names the
 * tarball (dist.tarball), which is then downloaded. A version the registry does not have is "not
 * found there", like a missing Debian package.
 */
async function obtainNpm(p: { name: string; version: string }, tmp: string, req: FetchRequest): Promise<string | undefined> {
  const registry = (req.env.npm_config_registry || NPM_REGISTRY).replace(/\/+$/, "");
  // a scoped name keeps its @ and escapes its slash, as the registry's own URLs do
  const metaUrl = `${registry}/${p.name.replace("/", "%2f")}/${encodeURIComponent(p.version)}`;
  const res = await httpGet(metaUrl, req.signal, { accept: "application/json" });
  if (!res.ok) {
    res.discard();
    if (res.status === 404) return undefined;
    throw new Error(`HTTP ${res.status} ${res.statusText} from ${metaUrl}`);
  }
  const meta = (await res.json().catch(() => undefined)) as { dist?: { tarball?: unknown } } | undefined;
  const tarball = meta?.dist?.tarball;
  if (typeof tarball !== "string") throw new Error(`${metaUrl} gave no dist.tarball (not an npm registry?)`);
  try {
    return await download(tarball, tmp, req);
  } catch (e) {
    throw new Error(`${(e as Error).message} from ${tarball}`);
  }
}

async function download(url: string, tmp: string, req: FetchRequest): Promise<string> {
  const res = await httpGet(url, req.signal);
  if (!res.ok) {
    res.discard();
    throw new Error(`HTTP ${res.status} ${res.statusText}`);
  }
  const dst = join(tmp, "download");
  await pipeline(res.body, createWriteStream(dst));
  return dst;
}

/** A GET or HEAD, given up after 15 minutes for the whole answer, as well as on the build's cancellation. */
function httpGet(url: string, signal: AbortSignal, headers: Record<string, string> = {}, method: "GET" | "HEAD" = "GET"): Promise<HttpResponse> {
  return get(url, signal, headers, method, { totalMs: 15 * 60_000 });
}
