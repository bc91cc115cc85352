// The cache archive format on its own, for the archive/restore rows (bench/suites/cache.ts):
//   node archive-tool.mjs pack OUTDIR STOREDIR NAME...   one NAME.tar.zst per store path
//   node archive-tool.mjs unpack INDIR DESTDIR           every *.tar.zst back to DESTDIR/NAME
// It runs the compiled store/path-archive.js (npm run build), as kiln copy and a substitution do.
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { packPath, unpackPath } from "../../dist/store/path-archive.js";

const [mode, a, b, ...names] = process.argv.slice(2);
if (mode === "pack") {
  mkdirSync(a, { recursive: true });
  for (const name of names) await packPath(join(b, name), name, join(a, `${name}.tar.zst`));
} else if (mode === "unpack") {
  mkdirSync(b, { recursive: true });
  for (const f of readdirSync(a).filter((f) => f.endsWith(".tar.zst"))) {
    const name = f.slice(0, -".tar.zst".length);
    await unpackPath(join(a, f), name, join(b, name));
  }
} else {
  process.stderr.write("usage: archive-tool.mjs pack OUTDIR STOREDIR NAME... | unpack INDIR DESTDIR\n");
  process.exit(2);
}
