// The build sandbox, probed from inside (fixtures/sandbox): what a build can see and reach, and
// the fixed environment it runs in. The probes write what they find to $out.
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, copyFixture, eventsOf, hostStorePath, kilnJson, tempDir } from "./test-helpers/kiln.js";

const PROBE_BODY = "kiln sandbox network probe\n";

describe("the build sandbox", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;
  let server: Server;
  let requests = 0;
  let marker: string;
  const out: Record<string, string> = {};
  const read = (name: string, file: string) => readFileSync(join(hostStorePath(store, out[name]!), file), "utf8");

  before(async () => {
    cwd = copyFixture("sandbox");
    store = tempDir("store");
    server = createServer((_req, res) => {
      requests++;
      res.end(PROBE_BODY);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const recipe = join(cwd, "recipes", "index.ts");
    const text = readFileSync(recipe, "utf8");
    assert.ok(text.includes("const PORT = 9;"));
    writeFileSync(recipe, text.replace("const PORT = 9;", `const PORT = ${(server.address() as AddressInfo).port};`));
    // a file in the host's /tmp that no build may see
    marker = join(tempDir("marker"), "host-secret");
    writeFileSync(marker, "secret");

    await kilnJson(["realize", "--no-link", "unrelated"], { cwd, store });
    // kiln itself runs with a strict umask: the build must still get 022
    const r = await kilnJson(["realize", "--no-link", "probe", "netprobe", "netfixed"], { cwd, store, umask: "077" });
    for (const e of eventsOf(r.events, "built")) out[e.node!.name] = e.paths!.out!;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    cleanup();
  });

  test("the environment is fixed: HOME, TZ, LC_ALL, SOURCE_DATE_EPOCH, PATH, uid", () => {
    assert.equal(read("probe", "HOME"), "/homeless-shelter\n");
    assert.equal(read("probe", "TZ"), "UTC\n");
    assert.equal(read("probe", "LC_ALL"), "C\n");
    assert.equal(read("probe", "SOURCE_DATE_EPOCH"), "1\n");
    assert.equal(read("probe", "PATH"), "/kiln/host/bin\n");
    assert.equal(read("probe", "uid"), "1000\n");
    // the sandbox's own /etc/passwd and /etc/hosts (written once per kiln process, shared by its builds)
    assert.equal(read("probe", "user"), "kiln\n");
    assert.match(read("probe", "hosts"), /^127\.0\.0\.1 localhost kiln$/m);
  });

  test("umask is 022 (kiln ran with 077): new files are 644 and directories 755", () => {
    assert.equal(read("probe", "umask"), "0022\n");
    assert.equal(read("probe", "file-mode"), "644\n");
    assert.equal(read("probe", "dir-mode"), "755\n");
  });

  test("host files outside the declared inputs are not visible: /root, /work, /etc/shadow, /etc/hostname, the host /tmp", () => {
    assert.equal(read("probe", "paths"), "hidden /root\nhidden /work\nhidden /etc/shadow\nhidden /etc/hostname\n");
    assert.equal(read("probe", "tmp-listing"), "", `the sandbox's /tmp is private (the host's has ${readdirSync(tmpdir()).length} entries)`);
  });

  test("only declared inputs are in the store view (not other store paths)", () => {
    const listing = read("probe", "store-listing").trim().split("\n").sort();
    const dep = Object.entries(out).find(([n]) => n === "probe-dep");
    assert.ok(dep, "probe-dep was built in the same run");
    assert.deepEqual(listing, [out["probe-dep"], out.probe].sort());
    assert.ok(readdirSync(join(store, "store")).some((p) => p.endsWith("-unrelated")), "unrelated is in the host store");
    assert.equal(read("probe", "dep"), "dep\n");
  });

  test("undeclared host tools cannot be run by name (curl, python3, gcc)", () => {
    assert.equal(read("probe", "tools"), "no curl\ncannot run curl\nno python3\ncannot run python3\nno gcc\ncannot run gcc\n");
  });

  test("a normal build has no network: only loopback, and the test's server is unreachable", () => {
    const netdev = read("probe", "netdev");
    const ifaces = netdev.split("\n").slice(2).filter(Boolean).map((l) => l.trim().split(":")[0]);
    assert.deepEqual(ifaces, ["lo"]);
    assert.match(read("netprobe", "result"), /^unreachable \d+\n$/);
    assert.match(read("netprobe", "curl-err"), /Failed to connect|Couldn't connect/);
  });

  test("a fixed-output build does get the network (the control for the test above)", () => {
    assert.equal(readFileSync(hostStorePath(store, out.netfixed!), "utf8"), PROBE_BODY);
    assert.equal(requests, 1, "exactly the fixed-output build reached the server");
  });
});
