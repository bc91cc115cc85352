// Settings for binary caches and remote builders, from the command line, the environment and a
// config file, in that order of precedence (the first that sets a value wins):
//
//   --substituters URL...          KILN_SUBSTITUTERS           substituters = URL URL
//   --trusted-public-keys KEY...   KILN_TRUSTED_PUBLIC_KEYS    trusted-public-keys = KEY KEY
//   --secret-key FILE              KILN_SECRET_KEY_FILE        secret-key-file = FILE
//   --cache-timeout SECONDS        KILN_CACHE_TIMEOUT          cache-timeout = SECONDS
//   --builders SPEC...             KILN_BUILDERS               builders = SPEC SPEC (or @FILE)
//
// The config file is $KILN_CONFIG, else $XDG_CONFIG_HOME/kiln/kiln.conf (~/.config/kiln/kiln.conf):
// `key = value` lines, values split at white space, `#` comments, as nix.conf.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { KilnError } from "../store/errors.js";

export interface CacheArgs {
  substituters?: string[];
  "trusted-public-keys"?: string[];
  "secret-key"?: string;
  "cache-timeout"?: number;
  builders?: string[];
}

export interface Settings {
  substituters: string[];
  trustedPublicKeys: string[];
  /** a secret key file's path, to sign what is pushed */
  secretKeyFile: string | undefined;
  cacheTimeoutMs: number;
  /** remote builder specs (ssh://...), or @FILE naming a machines file */
  builders: string[];
}

const KEYS = ["substituters", "trusted-public-keys", "secret-key-file", "cache-timeout", "builders"] as const;
type Key = (typeof KEYS)[number];

export function configFile(): string {
  if (process.env.KILN_CONFIG) return resolve(process.env.KILN_CONFIG);
  return join(process.env.XDG_CONFIG_HOME || join(homedir(), ".config"), "kiln", "kiln.conf");
}

/** The config file's settings; relative paths in it are relative to the file. */
export function readConfig(file: string): Partial<Record<Key, string[]>> {
  if (!existsSync(file)) return {};
  const out: Partial<Record<Key, string[]>> = {};
  for (const [i, raw] of readFileSync(file, "utf8").split("\n").entries()) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    const m = /^([a-z-]+)\s*=\s*(.*)$/.exec(line);
    if (!m || !(KEYS as readonly string[]).includes(m[1]!)) {
      throw new KilnError("USAGE", `${file}:${i + 1}: ${m ? `unknown setting ${m[1]}` : "not a `key = value` line"}`, `the settings are ${KEYS.join(", ")}`);
    }
    const key = m[1] as Key;
    let values = m[2]!.split(/\s+/).filter(Boolean);
    if (key === "secret-key-file") values = values.map((v) => resolve(dirname(file), v));
    if (key === "builders") values = values.map((v) => (v.startsWith("@") ? `@${resolve(dirname(file), v.slice(1))}` : v));
    out[key] = values;
  }
  return out;
}

const words = (s: string | undefined) => (s === undefined ? undefined : s.split(/\s+/).filter(Boolean));

/** The config file read once per process: a command asks for its settings in several places. */
const configs = new Map<string, ReturnType<typeof readConfig>>();

export function settingsOf(args: CacheArgs): Settings {
  const file = configFile();
  let conf = configs.get(file);
  if (!conf) configs.set(file, (conf = readConfig(file)));
  const env = process.env;
  const timeout = args["cache-timeout"] ?? (env.KILN_CACHE_TIMEOUT !== undefined ? Number(env.KILN_CACHE_TIMEOUT) : conf["cache-timeout"] ? Number(conf["cache-timeout"][0]) : 10);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new KilnError("USAGE", `cache timeout ${timeout} is not a number of seconds`, "give --cache-timeout SECONDS (for example 10)");
  const keyFile = args["secret-key"] ?? env.KILN_SECRET_KEY_FILE ?? conf["secret-key-file"]?.[0];
  return {
    substituters: args.substituters?.flatMap((s) => words(s)!) ?? words(env.KILN_SUBSTITUTERS) ?? conf.substituters ?? [],
    trustedPublicKeys: args["trusted-public-keys"]?.flatMap((s) => words(s)!) ?? words(env.KILN_TRUSTED_PUBLIC_KEYS) ?? conf["trusted-public-keys"] ?? [],
    secretKeyFile: keyFile === undefined ? undefined : resolve(keyFile),
    cacheTimeoutMs: timeout * 1000,
    builders: args.builders?.flatMap((s) => words(s)!) ?? words(env.KILN_BUILDERS) ?? conf.builders ?? [],
  };
}
