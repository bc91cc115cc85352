// NODE_EXTRA_CA_CERTS as kiln started as a program reads it (engine/extra-ca.ts): Node is started
// without it, and kiln's own HTTPS requests add its certificates. A fetch over HTTPS from a
// server whose certificate only the test's CA vouches for, with and without that CA named.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sha256Hex } from "../store/digest.js";
import { CLI, cleanup, FIXTURES, kiln, tempDir } from "./test-helpers/kiln.js";

const TLS = join(FIXTURES, "tls");
const BODY = "served over HTTPS\n";

// the launcher's shell line is dist/kiln.cjs's: the unbundled CLI (KILN_TEST_CLI) has none
const launcher = CLI.endsWith("kiln.cjs") ? false : "KILN_TEST_CLI runs a CLI without the launcher's shell line";

describe("NODE_EXTRA_CA_CERTS, read by kiln rather than at Node's start", { timeout: 120_000, skip: launcher }, () => {
  let server: Server;
  let cwd: string;
  let requests = 0;

  before(async () => {
    server = createServer({ cert: readFileSync(join(TLS, "server.pem")), key: readFileSync(join(TLS, "server.key")) }, (req, res) => {
      requests++;
      if (req.url === "/served.txt") res.end(BODY);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    cwd = tempDir("https");
    mkdirSync(join(cwd, "recipes"));
    writeFileSync(join(cwd, "recipes", "index.ts"), [
      `import { fetch } from "kiln";`,
      `export const served = fetch({ name: "served.txt", sha256: "${sha256Hex(BODY)}", sources: [{ url: "https://127.0.0.1:${port}/served.txt" }] });`,
      `export const plain = fetch({ name: "plain.txt", sha256: "${sha256Hex("x")}", sources: [{ file: "/nonexistent" }] });`,
      "",
    ].join("\n"));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    cleanup();
  });

  test("without the test's CA the server is not believed; with it, the file is fetched", async () => {
    const store = tempDir("store");
    const refused = await kiln(["realize", "served", "--reporter", "plain"], { cwd, store, asProgram: true, env: { NODE_EXTRA_CA_CERTS: "" } });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /certificate/i);
    const before = requests;
    const r = await kiln(["realize", "served", "--reporter", "plain"], { cwd, store, asProgram: true, env: { NODE_EXTRA_CA_CERTS: join(TLS, "ca.pem") } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(requests, before + 1);
    assert.equal(readFileSync(join(cwd, "result"), "utf8"), BODY);
  });

  test("run as `node dist/kiln.cjs`, Node reads the file itself, and the fetch works the same", async () => {
    const r = await kiln(["realize", "served", "--reporter", "plain"], { cwd, store: tempDir("store"), env: { NODE_EXTRA_CA_CERTS: join(TLS, "ca.pem") } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(cwd, "result"), "utf8"), BODY);
  });

  test("a command that makes no HTTPS request never reads the file; one that does says it could not", async () => {
    const store = tempDir("store");
    const env = { NODE_EXTRA_CA_CERTS: join(cwd, "no-such-file.pem") };
    // Node warns at its start when it reads the file: started as `node dist/kiln.cjs`, it does
    const direct = await kiln(["eval", "plain"], { cwd, store, env });
    assert.equal(direct.code, 0, direct.stderr);
    assert.match(direct.stderr, /Ignoring extra certs from/);
    const program = await kiln(["eval", "plain"], { cwd, store, env, asProgram: true });
    assert.equal(program.code, 0, program.stderr);
    assert.doesNotMatch(program.stderr, /extra certs/);
    const fetching = await kiln(["realize", "served", "--reporter", "plain"], { cwd, store, env, asProgram: true });
    assert.equal(fetching.code, 1, fetching.stderr);
    assert.match(fetching.stderr, /Ignoring extra certs from `.*no-such-file\.pem`, load failed/);
  });
});
