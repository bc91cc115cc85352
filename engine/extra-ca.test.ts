// The hand-over of NODE_EXTRA_CA_CERTS from the launcher's shell line (engine/extra-ca.ts).
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request, createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { adoptDeferredCa, deferredCaFile, DEFERRED_CA_ENV, tlsOptions } from "./extra-ca.js";

const TLS = fileURLToPath(new URL("../fixtures/tls/", import.meta.url));
const CA = join(TLS, "ca.pem");

/** A GET of a local HTTPS server whose certificate only the test CA signed: "ok" or the TLS error's code. */
async function reach(options: object): Promise<string> {
  const server = createServer({ cert: readFileSync(join(TLS, "server.pem")), key: readFileSync(join(TLS, "server.key")) }, (_req, res) => res.end("ok"));
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    return await new Promise<string>((resolve) => {
      const req = request({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, path: "/", agent: false, ...options }, (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve(text));
      });
      req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      req.end();
    });
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test("the file moved aside is put back for child processes, and kiln's requests trust it beside Node's roots", async () => {
  assert.equal(deferredCaFile(), undefined);
  assert.deepEqual(tlsOptions(), {}, "nothing deferred: Node's own defaults");
  // started by `node dist/kiln.cjs` with both set: Node read NODE_EXTRA_CA_CERTS, nothing is kiln's
  const both: NodeJS.ProcessEnv = { [DEFERRED_CA_ENV]: "/elsewhere.pem", NODE_EXTRA_CA_CERTS: "/loaded.pem" };
  adoptDeferredCa(both);
  assert.deepEqual(both, { NODE_EXTRA_CA_CERTS: "/loaded.pem" });
  assert.equal(deferredCaFile(), undefined);
  const empty: NodeJS.ProcessEnv = { [DEFERRED_CA_ENV]: "" };
  adoptDeferredCa(empty);
  assert.deepEqual(empty, {});
  assert.equal(deferredCaFile(), undefined);
  assert.equal(await reach({}), "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "the test CA is no root of Node's");

  const env: NodeJS.ProcessEnv = { [DEFERRED_CA_ENV]: CA };
  adoptDeferredCa(env);
  assert.deepEqual(env, { NODE_EXTRA_CA_CERTS: CA });
  assert.equal(deferredCaFile(), CA);
  const options = tlsOptions();
  assert.ok(options.secureContext);
  assert.equal(tlsOptions().secureContext, options.secureContext, "one context for every connection");
  assert.equal(await reach(options), "ok");
});

test("a file that is not a certificate is reported once and left out", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kiln-test-ca-"));
  const bad = join(dir, "bad.pem");
  writeFileSync(bad, "not a certificate\n");
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on("warning", onWarning);
  adoptDeferredCa({ [DEFERRED_CA_ENV]: bad });
  assert.deepEqual(tlsOptions(), {});
  assert.deepEqual(tlsOptions(), {});
  rmSync(dir, { recursive: true });
  await new Promise((r) => setImmediate(r));
  process.off("warning", onWarning);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /Ignoring extra certs from `.*bad\.pem`, load failed: no PEM certificate/);
});
