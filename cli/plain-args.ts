// The launcher's reading of a plain command line, for the commands it answers without the full
// CLI and its argument parser: a no-op realize (cli/fast.ts) and gc (cli/gc-args.ts). It reads
// only the forms whose meaning is plain, and as yargs reads them for the full CLI: the one word of
// the command, `--opt VALUE`, `--opt=VALUE`, `-o VALUE`, `--flag`, `-f`, each option at most once
// (yargs makes a repeated one an array), a value that does not start with "-". Anything else
// (--help, `--flag=false`, `--no-flag` unless declared, grouped short flags, another command, a
// typo) is undefined, and the full CLI reads it as it always has and says what is wrong. No
// imports: the launcher loads it at every start.

/** A command's options as the launcher may read them: by every spelling (name and alias). */
export interface PlainSpec {
  command: string;
  /** its options that take one value: spelling -> key; with a number check for those in `numbers` */
  values: Record<string, string>;
  numbers?: ReadonlySet<string>;
  /** its flags: spelling -> [key, value] */
  flags: Record<string, readonly [string, boolean]>;
  /** global flags that do not change its answer (a no-op realize cannot ignore --no-eval-cache; gc can) */
  ignoredFlags: ReadonlySet<string>;
  /** whether it takes positionals (realize's targets) */
  positionals: boolean;
  /** whether its own options may come before the command word too */
  optionsBeforeCommand?: boolean;
}

export interface Plain {
  store?: string;
  recipes?: string;
  reporter?: string;
  options: Record<string, string | number | boolean>;
  positionals: string[];
}

/**
 * Global options (cli/main.ts) that take one value, with the key a plain command line keeps:
 * null for those that cannot change what a light path answers. Not the array options (--mirror,
 * --substituters...): yargs gives them every word that follows, the command too.
 */
const GLOBAL_VALUES: Record<string, "store" | "recipes" | "reporter" | null> = {
  "--store": "store", "--recipes": "recipes", "-f": "recipes", "--reporter": "reporter",
  "--jobs": null, "-j": null, "--cores": null, "--cache-timeout": null,
};
const REPORTERS = new Set(["tui", "plain", "json", "quiet"]);

export function parsePlain(argv: readonly string[], spec: PlainSpec): Plain | undefined {
  const out: Plain = { options: {}, positionals: [] };
  const seenKeys = new Set<string>();
  let command = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith("-")) {
      if (!command) {
        if (word !== spec.command) return undefined;
        command = true;
      } else if (spec.positionals) out.positionals.push(word);
      else return undefined;
      continue;
    }
    const eq = word.startsWith("--") ? word.indexOf("=") : -1;
    const name = eq > 0 ? word.slice(0, eq) : word;
    let value = eq > 0 ? word.slice(eq + 1) : undefined;
    const once = (key: string): boolean => !seenKeys.has(key) && !!seenKeys.add(key);
    const takeValue = (): string | undefined => {
      value ??= argv[++i];
      return value === undefined || value === "" || value.startsWith("-") ? undefined : value;
    };
    if (name in GLOBAL_VALUES) {
      const key = GLOBAL_VALUES[name]!;
      const v = takeValue();
      if (v === undefined || !once(key ?? name)) return undefined;
      if (key === "reporter" && !REPORTERS.has(v)) return undefined;
      if (key) out[key] = v;
      continue;
    }
    if (spec.ignoredFlags.has(name)) {
      if (value !== undefined || !once(name)) return undefined;
      continue;
    }
    if (!command && !spec.optionsBeforeCommand) return undefined;
    if (Object.hasOwn(spec.flags, name)) {
      const [key, v] = spec.flags[name]!;
      if (value !== undefined || !once(key)) return undefined;
      out.options[key] = v;
      continue;
    }
    if (Object.hasOwn(spec.values, name)) {
      const key = spec.values[name]!;
      const v = takeValue();
      if (v === undefined || !once(key)) return undefined;
      if (spec.numbers?.has(key)) {
        if (!/^\d+$/.test(v)) return undefined;
        out.options[key] = Number(v);
      } else out.options[key] = v;
      continue;
    }
    return undefined;
  }
  return command ? out : undefined;
}
