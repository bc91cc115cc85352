// Nix as an anchor, used without a daemon and only with `--store <dir>` (a chroot store: the
// logical store stays /nix/store, the files live under <dir>/nix/store), so that nothing is
// written to /nix. Configuration comes from a private NIX_CONF_DIR: no build users (we run as
// whoever runs the bench), no substituters (no network), and a sandbox that shows the host's
// /bin, /usr and /lib read-only so the trivial builders' /bin/sh can run, as Kiln's sandbox does.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runUnchecked, version, which } from "./proc.js";

export interface NixEnv {
  version: string;
  env: Record<string, string>;
  /** argv prefix for a store at dir: [tool, "--store", dir] */
  tool(name: "nix-build" | "nix-instantiate" | "nix-store" | "nix-hash", store?: string): string[];
}

export type NixProbe = { ok: true; nix: NixEnv } | { ok: false; reason: string };

export function probeNix(workDir: string): NixProbe {
  if (!which("nix-build") || !which("nix-instantiate") || !which("nix-store")) {
    return { ok: false, reason: "Nix is not installed (apt-get install -y nix-bin)" };
  }
  const v = version(["nix-build", "--version"]) ?? "nix (unknown version)";
  const conf = join(workDir, "nix-conf");
  const home = join(workDir, "nix-home");
  mkdirSync(conf, { recursive: true });
  mkdirSync(home, { recursive: true });
  writeFileSync(join(conf, "nix.conf"), [
    "build-users-group =",
    "substituters =",
    "sandbox = true",
    "sandbox-paths = /bin /usr /lib /lib64",
    "experimental-features = nix-command",
    "",
  ].join("\n"));
  const env: Record<string, string> = { NIX_CONF_DIR: conf, HOME: home, NIX_REMOTE: "", XDG_CACHE_HOME: join(home, ".cache") };
  const nix: NixEnv = {
    version: v,
    env,
    tool: (name, store) => (store ? [name, "--store", store] : [name]),
  };
  // a real build in a throwaway store proves the sandbox and the configuration work here
  const probeStore = join(workDir, "nix-probe-store");
  const expr = join(workDir, "nix-probe.nix");
  writeFileSync(expr, `derivation { name = "probe"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo ok > $out" ]; }\n`);
  const hadNix = existsSync("/nix");
  const r = runUnchecked({ argv: [...nix.tool("nix-build", probeStore), expr, "--no-out-link"], env, capture: true, captureStderr: true, timeoutMs: 120_000 });
  if (!hadNix && existsSync("/nix")) return { ok: false, reason: "Nix created /nix although it was given --store; not using it" };
  if (r.status !== 0) return { ok: false, reason: `a trivial nix-build with --store failed here: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}` };
  return { ok: true, nix };
}
