// The hand-over of NODE_EXTRA_CA_CERTS from the launcher's shell line (engine/extra-ca.ts).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { rootCertificates } from "node:tls";
import { fileURLToPath } from "node:url";
import { adoptDeferredCa, deferredCaFile, DEFERRED_CA_ENV, tlsCa } from "./extra-ca.js";

const CA = fileURLToPath(new URL("../fixtures/tls/ca.pem", import.meta.url));

test("the file moved aside is put back for child processes, and kiln's requests add it to Node's roots", () => {
  assert.equal(deferredCaFile(), undefined);
  assert.deepEqual(tlsCa(), {}, "nothing deferred: Node's own defaults");
  // started by `node dist/kiln.cjs` with both set: Node read NODE_EXTRA_CA_CERTS, nothing is kiln's
  const both: NodeJS.ProcessEnv = { [DEFERRED_CA_ENV]: "/elsewhere.pem", NODE_EXTRA_CA_CERTS: "/loaded.pem" };
  adoptDeferredCa(both);
  assert.deepEqual(both, { NODE_EXTRA_CA_CERTS: "/loaded.pem" });
  assert.equal(deferredCaFile(), undefined);
  const empty: NodeJS.ProcessEnv = { [DEFERRED_CA_ENV]: "" };
  adoptDeferredCa(empty);
  assert.deepEqual(empty, {});
  assert.equal(deferredCaFile(), undefined);

  const env: NodeJS.ProcessEnv = { [DEFERRED_CA_ENV]: CA };
  adoptDeferredCa(env);
  assert.deepEqual(env, { NODE_EXTRA_CA_CERTS: CA });
  assert.equal(deferredCaFile(), CA);
  const { ca } = tlsCa();
  assert.equal(ca?.length, rootCertificates.length + 1);
  assert.deepEqual(ca?.slice(0, -1), [...rootCertificates]);
  assert.match(ca!.at(-1)!, /BEGIN CERTIFICATE/);
});

test("a file that is not a certificate is reported once and left out", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-test-ca-"));
  const bad = join(dir, "bad.pem");
  writeFileSync(bad, "not a certificate\n");
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  adoptDeferredCa({ [DEFERRED_CA_ENV]: bad });
  assert.deepEqual(tlsCa(), {});
  assert.deepEqual(tlsCa(), {});
  rmSync(dir, { recursive: true });
  await new Promise((r) => setImmediate(r));
  process.off("warning", onWarning);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /Ignoring extra certs from `.*bad\.pem`, load failed: no PEM certificate/);
});
