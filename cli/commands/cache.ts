// kiln cache keygen NAME: an ed25519 key pair for signing what is pushed to a binary cache.
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateKeyPair } from "../../engine/cache/signing.js";
import { KilnError } from "../../store/errors.js";
import { defineCommand } from "../command.js";

const keygen = defineCommand({
  command: "keygen <name>",
  describe: "write NAME.sec (the secret key: keep it private) and NAME.pub, and print the public key to trust (--trusted-public-keys)",
  options: (y) => y
    .positional("name", { type: "string", demandOption: true, describe: "the key's name, e.g. cache.example.org-1" })
    .option("dir", { type: "string", default: ".", describe: "where to write the two files" }),
  // it writes two files, and needs no store
  store: false,
  run: async (argv) => {
    const pair = generateKeyPair(argv.name);
    const sec = join(resolve(argv.dir), `${argv.name}.sec`);
    const pub = join(resolve(argv.dir), `${argv.name}.pub`);
    for (const f of [sec, pub]) if (existsSync(f)) throw new KilnError("USAGE", `${f} exists already`, "remove it, or choose another name or --dir: a key is never overwritten");
    writeFileSync(sec, pair.secret + "\n", { mode: 0o600, flag: "wx" });
    writeFileSync(pub, pair.public + "\n", { flag: "wx" });
    process.stderr.write(`wrote ${sec} (secret: sign with --secret-key ${sec}) and ${pub}\n`);
    process.stdout.write(pair.public + "\n");
  },
});

export const cacheCommand = defineCommand({
  command: "cache <command>",
  describe: "binary caches: make the key pair that signs what you push",
  subcommands: [keygen],
  missing: "give a subcommand: keygen",
});
