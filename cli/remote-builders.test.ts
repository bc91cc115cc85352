// Remote builders over SSH, against a real OpenSSH server the test starts on 127.0.0.1, running as
// a user of its own (made for the test), with its own key and its own store. The builds of
// fixtures/hello go there and come back with the digests a local build gives; a builder that
// cannot be reached sends the builds home.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { getuid } from "node:process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CLI, REPO, buildStarts, cleanup, copyFixture, eventsOf, kilnJson, tempDir, storeDigests, withoutSeed } from "./test-helpers/kiln.js";
import { ensureUser, freePort, startSshd, userCanRead, type Sshd } from "./test-helpers/servers.js";

after(cleanup);


// sshd runs as a user made for the test: that takes root (as CI and the development machines are)
describe("remote builders over SSH", { skip: getuid?.() !== 0 ? "needs root to make the builder's user" : false }, () => {
  let sshd: Sshd;
  let project: string;
  let builderUrl: string;
  before(async () => {
    // the builder's own user runs kiln from this checkout: it must be able to read it (a checkout
    // under a private home cannot be); then the builder logs in as root, still with its own
    // sshd, keys and store
    ensureUser("kiln-test-builder");
    const user = userCanRead("kiln-test-builder", [CLI, join(REPO, "node_modules", "better-sqlite3", "package.json")]) ? "kiln-test-builder" : "root";
    if (user === "root") process.stderr.write(`note: kiln-test-builder cannot read ${REPO}; the SSH builder logs in as root\n`);
    sshd = await startSshd(tempDir("sshd"), user);
    project = copyFixture("hello");
    const q = new URLSearchParams({ system: "x86_64-linux", jobs: "2", key: sshd.clientKey, "host-key": sshd.hostKey, store: join(sshd.home, "store"), kiln: CLI });
    builderUrl = `${sshd.url}?${q}`;
  });
  after(async () => sshd?.stop());

  test("builds run on the SSH builder, in its own store, and give the digests of a local build", async () => {
    const local = tempDir("store-local");
    await kilnJson(["realize", "greeting", "--no-link"], { cwd: project, store: local });
    const store = tempDir("store-remote-client");
    const r = await kilnJson(["realize", "greeting", "--no-link", "--builders", builderUrl], { cwd: project, store });
    assert.equal(buildStarts(withoutSeed(r.events)).length, 3);
    const where = eventsOf(withoutSeed(r.events), "dispatched").map((e) => `${e.node!.name}@${e.machine as string}`).sort();
    assert.deepEqual(where, ["greeting", "hello", "libgreet"].map((n) => `${n}@ssh://${sshd.user}@127.0.0.1:${sshd.port}`));
    const mine = storeDigests(store);
    assert.deepEqual(mine, storeDigests(local), "the same paths with the same content as a local build");
    // the builder's store got the inputs it needed (the sources, libgreet for hello), not the outputs
    const theirs = [...storeDigests(join(sshd.home, "store")).keys()].map((p) => p.slice(33)).sort();
    assert.ok(theirs.includes("main.c") && theirs.includes("libgreet"), theirs.join(", "));
    assert.ok(!theirs.includes("greeting"), "outputs are registered where they are used");
  });

  test("a builder that cannot be reached sends the builds home (builders from a machines file named in kiln.conf)", async () => {
    const dead = builderUrl.replace(`:${sshd.port}`, `:${await freePort()}`);
    const conf = tempDir("conf");
    writeFileSync(join(conf, "machines"), `# the team's builders\n${dead}\n`);
    writeFileSync(join(conf, "kiln.conf"), "builders = @machines\n");
    const store = tempDir("store-fallback");
    const r = await kilnJson(["realize", "greeting", "--no-link"], { cwd: project, store, env: { KILN_CONFIG: join(conf, "kiln.conf") } });
    assert.equal(buildStarts(withoutSeed(r.events)).length, 3);
    const last = new Map(eventsOf(withoutSeed(r.events), "dispatched").map((e) => [e.node!.name, e.machine as string]));
    assert.deepEqual([...last.values()], ["local", "local", "local"]);
    const logs = eventsOf(r.events, "log").map((e) => e.line as string).join("\n");
    assert.match(logs, /builder ssh:\/\/[a-z-]+@127\.0\.0\.1:\d+: builder-serve missing exited with 255: ssh: connect to host 127\.0\.0\.1 port \d+: Connection refused; building elsewhere/);
  });

  test("a builder whose connection drops during the build sends it home, and the build succeeds", async () => {
    // kiln there, except that the build exchange ends as a dropped SSH connection does (255)
    const wrapper = join(sshd.home, "kiln-drops");
    writeFileSync(wrapper, `#!/bin/sh\ncase "$*" in *" build") echo "connection reset" >&2; exit 255;; esac\nexec ${CLI} "$@"\n`, { mode: 0o755 });
    const url = builderUrl.replace(`kiln=${encodeURIComponent(CLI)}`, `kiln=${encodeURIComponent(wrapper)}`);
    assert.notEqual(url, builderUrl);
    const store = tempDir("store-drop");
    const r = await kilnJson(["realize", "greeting", "--no-link", "--builders", url], { cwd: project, store });
    const libgreet = eventsOf(r.events, "dispatched", "libgreet").map((e) => e.machine as string);
    assert.deepEqual(libgreet, [`ssh://${sshd.user}@127.0.0.1:${sshd.port}`, "local"], "tried there, then built here");
    assert.match(eventsOf(r.events, "log", "libgreet").map((e) => e.line as string).join("\n"), /builder-serve build exited with 255.*building elsewhere/);
    assert.equal(eventsOf(withoutSeed(r.events), "built").length, 3);
  });

  test("a bad builder URL is a usage error", async () => {
    const r = await kilnJson(["realize", "greeting", "--builders", "ssh://host?jobs=zero"], { cwd: project, store: tempDir("store-bad") }, 2);
    assert.match(r.stderr, /builder ssh:\/\/host\?jobs=zero: jobs=zero is not a positive whole number/);
  });
});
