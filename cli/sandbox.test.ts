// The build sandbox, probed from inside (fixtures/sandbox): what a build can see and reach, and
// the fixed environment it runs in. The probes write what they find to $out. They build on the
// fixtures' seed, except the one that probes the host-tools escape.
import assert from "node:assert/strict";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cleanup, copyFixture, eventsOf, hostStorePath, kiln, kilnJson, tempDir, type Ev } from "./test-helpers/kiln.js";
import { SEED_PATH } from "../engine/builders/sandbox.js";

const PROBE_BODY = "kiln sandbox network probe\n";

describe("the build sandbox", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;
  let server: Server;
  let requests = 0;
  let marker: string;
  let built: Ev[];
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
    const r = await kilnJson(["realize", "--no-link", "probe", "hostProbe", "netprobe", "netfixed"], { cwd, store, umask: "077" });
    built = r.events;
    for (const e of [...eventsOf(r.events, "built"), ...eventsOf(r.events, "cached")]) out[e.node!.name] = e.paths!.out!;
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
    assert.equal(read("probe", "PATH"), `${SEED_PATH}\n`);
    assert.equal(read("host-probe", "PATH"), "/kiln/host/bin\n", "the host-tools escape: the declared tools alone");
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
    assert.ok(out["seed-busybox"], "the seed is part of the run");
    // the seed tree is an input too (it is the build's /usr); its unpacked packages are not
    assert.deepEqual(listing, [out["probe-dep"], out["seed-busybox"], out.probe].sort());
    assert.ok(readdirSync(join(store, "store")).some((p) => p.endsWith("-unrelated")), "unrelated is in the host store");
    assert.equal(read("probe", "dep"), "dep\n");
  });

  test("a build on the seed sees none of the host's tools, headers or package database", () => {
    assert.equal(read("probe", "host-only"), ["/usr/bin/curl", "/usr/bin/python3", "/usr/bin/gcc", "/usr/bin/dpkg", "/usr/include/stdio.h", "/etc/debian_version", "/var/lib/dpkg"].map((p) => `hidden ${p}\n`).join(""));
  });

  test("with host tools, undeclared ones cannot be run by name (curl, python3, gcc)", () => {
    assert.equal(read("host-probe", "tools"), "no curl\ncannot run curl\nno python3\ncannot run python3\nno gcc\ncannot run gcc\n");
  });

  test("show-derivation names each host tool a build uses as impure; a build on the seed has none", async () => {
    const hostDrv = eventsOf(built, "built", "host-probe")[0]!.node!.drv;
    const [host, byHash, pure] = await Promise.all([
      kiln(["show-derivation", "hostProbe"], { cwd, store }),
      kiln(["show-derivation", hostDrv], { cwd, store }),
      kiln(["show-derivation", "probe"], { cwd, store }),
    ]);
    for (const r of [host, byHash]) {
      assert.equal(r.code, 0, r.stderr);
      const [shown] = Object.values(JSON.parse(r.stdout) as Record<string, { impure?: string[] }>);
      assert.equal(shown!.impure?.length, 2, r.stdout);
      assert.match(shown!.impure![0]!, /^host tool pkg:coreutils: \d+ commands of the host's package coreutils \S+$/);
      assert.match(shown!.impure![1]!, /^host tool sh: \/usr\/bin\/sh \(dash \S+\)$/);
      assert.match(r.stderr, /^impure: host-probe uses the host, outside its inputs:\n  host tool pkg:coreutils: .*\n  host tool sh: \/usr\/bin\/sh/);
    }
    assert.equal(pure.code, 0, pure.stderr);
    assert.equal(Object.values(JSON.parse(pure.stdout) as Record<string, { impure?: string[] }>)[0]!.impure, undefined);
    assert.equal(pure.stderr, "");
  });

  test("a normal build has no network: only loopback, and the test's server is unreachable", () => {
    const netdev = read("probe", "netdev");
    const ifaces = netdev.split("\n").slice(2).filter(Boolean).map((l) => l.trim().split(":")[0]);
    assert.deepEqual(ifaces, ["lo"]);
    assert.match(read("netprobe", "result"), /^unreachable \d+\n$/);
    assert.match(read("netprobe", "wget-err"), /can't connect to remote host/);
  });

  test("a fixed-output build does get the network (the control for the test above)", () => {
    assert.equal(readFileSync(hostStorePath(store, out.netfixed!), "utf8"), PROBE_BODY);
    assert.equal(requests, 1, "exactly the fixed-output build reached the server");
  });
});
