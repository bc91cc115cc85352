// kiln why-depends on fixtures/hello: greeting references hello at run time (it records hello's
// path), hello does not reference libgreet (a static library, linked in), but builds from it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { cleanup, copyFixture, kiln, kilnJson, tempDir } from "./test-helpers/kiln.js";

describe("kiln why-depends", { timeout: 120_000 }, () => {
  let cwd: string;
  let store: string;

  before(async () => {
    cwd = copyFixture("hello");
    store = tempDir("store");
    await kilnJson(["realize", "--no-link", "greeting"], { cwd, store });
  });
  after(cleanup);

  test("runtime: the chain of references from greeting to hello", async () => {
    const r = await kiln(["why-depends", "--json", "greeting", "hello"], { cwd, store });
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { depends: boolean; chain: string[] };
    assert.equal(out.depends, true);
    assert.equal(out.chain.length, 2);
    assert.match(out.chain[0]!, /-greeting$/);
    assert.match(out.chain[1]!, /-hello$/);
  });

  test("runtime: no chain to a static library that was linked in; exit 1 and a hint", async () => {
    const r = await kiln(["why-depends", "greeting", "libgreet"], { cwd, store });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /does not depend on libgreet at run time \(try --build/);
  });

  test("--build: greeting -> hello -> libgreet through derivation inputs", async () => {
    const r = await kiln(["why-depends", "--build", "greeting", "libgreet"], { cwd, store });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "greeting\n└── hello\n    └── libgreet\n");
  });
});
