// The built-in fetcher for fixed-output derivations. Sources are tried in order; the first whose
// bytes have the pinned sha256 wins. Failing that, the error lists every place tried, what each
// gave (unreachable, or which wrong hash), and how to add the file by hand.
import { spawnSync } from "node:child_process";
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { sha256File } from "../store/digest.js";
import { KilnError } from "../store/errors.js";
import type { FetchSource } from "./derivation.js";

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
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText} from ${metaUrl}`);
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
  if (!res.ok || !res.body) throw new Error(`HTTP ${res.status} ${res.statusText}`);
  const dst = join(tmp, "download");
  await pipeline(Readable.fromWeb(res.body as never), createWriteStream(dst));
  return dst;
}

/** fetch(), with the network's reason (refused, no DNS, ...) in the message instead of only "fetch failed". */
async function httpGet(url: string, signal: AbortSignal, headers: Record<string, string> = {}): Promise<Response> {
  try {
    return await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(15 * 60_000)]), redirect: "follow", headers });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.message ?? cause?.code;
    throw new Error(why ? `${(e as Error).message}: ${why}` : (e as Error).message);
  }
}
