// kiln cache keygen NAME: an ed25519 key pair for signing what is pushed to a binary cache.
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Argv } from "yargs";
import { generateKeyPair } from "../../engine/cache/signing.js";
import { KilnError } from "../../store/errors.js";
import type { GlobalArgs } from "../context.js";
import { EXIT, reportError } from "../run.js";

interface KeygenArgs extends GlobalArgs {
  name: string;
  dir: string;
}

export const command = "cache <command>";
export const describe = "binary caches: make the key pair that signs what you push";

export function builder(y: Argv<GlobalArgs>) {
  return y
    .command<KeygenArgs>(
      "keygen <name>",
      "write NAME.sec (the secret key: keep it private) and NAME.pub, and print the public key to trust (--trusted-public-keys)",
      (y2) => y2
        .positional("name", { type: "string", demandOption: true, describe: "the key's name, e.g. cache.example.org-1" })
        .option("dir", { type: "string", default: ".", describe: "where to write the two files" }) as unknown as Argv<KeygenArgs>,
      (argv) => {
        try {
          const pair = generateKeyPair(argv.name);
          const sec = join(resolve(argv.dir), `${argv.name}.sec`);
          const pub = join(resolve(argv.dir), `${argv.name}.pub`);
          for (const f of [sec, pub]) if (existsSync(f)) throw new KilnError("USAGE", `${f} exists already`, "remove it, or choose another name or --dir: a key is never overwritten");
          writeFileSync(sec, pair.secret + "\n", { mode: 0o600, flag: "wx" });
          writeFileSync(pub, pair.public + "\n", { flag: "wx" });
          process.stderr.write(`wrote ${sec} (secret: sign with --secret-key ${sec}) and ${pub}\n`);
          process.stdout.write(pair.public + "\n");
          process.exitCode = EXIT.ok;
        } catch (e) {
          process.exitCode = reportError(e);
        }
      },
    )
    .demandCommand(1, "give a subcommand: keygen") as unknown as Argv<KeygenArgs>;
}

export function handler(): void {}
