// kiln verify --repair in-process: a stray is registered again only with a whole closure.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { LocalStore } from "./local-store.js";
import { removeTree } from "./paths.js";
import { verifyStore } from "./verify.js";

const roots: string[] = [];
after(() => roots.forEach(removeTree));

function storeWithChain(): { s: LocalStore; dep: string; user: string } {
  const r = mkdtempSync(join(tmpdir(), "kiln-verify-"));
  roots.push(r);
  const s = LocalStore.open(r);
  const out = (content: string) => {
    const o = join(s.scratchDir("test"), "out");
    mkdirSync(o);
    writeFileSync(join(o, "f"), content);
    return o;
  };
  const dep = s.addOutput({ scratch: out("dep"), name: "dep", candidates: [] }, () => {}).path;
  const user = s.addOutput({ scratch: out(`uses /kiln/store/${dep}/f`), name: "user", candidates: [dep] }, () => {}).path;
  return { s, dep, user };
}

describe("verify --repair", () => {
  test("a path whose reference is gone from disk is forgotten and stays a stray, naming what it lacks", () => {
    const { s, dep, user } = storeWithChain();
    try {
      assert.deepEqual([...s.closure([user as never])].sort(), [dep, user].sort());
      removeTree(s.hostPath(dep as never));
      const r = verifyStore(s, { repair: true, now: Date.now() });
      assert.deepEqual(r.missing, [dep]);
      assert.deepEqual(r.repair!.invalidated.sort(), [dep, user].sort(), "what refers to the missing path goes with it");
      assert.deepEqual(r.repair!.registered, [], "user is not registered again without dep");
      assert.equal(s.isValid(user as never), false);
      assert.deepEqual(r.strays.map((x) => [x.path, x.why]), [[user, `it refers to ${dep}, which is not in the store`]]);
    } finally {
      s.close();
    }
  });

  test("a path forgotten with a missing reference is registered again once the reference is back", () => {
    const { s, dep, user } = storeWithChain();
    try {
      // the store loses dep, then gets the same tree back as a stray
      removeTree(s.hostPath(dep as never));
      verifyStore(s, { repair: true, now: Date.now() });
      mkdirSync(s.hostPath(dep as never));
      writeFileSync(join(s.hostPath(dep as never), "f"), "dep");
      const r = verifyStore(s, { repair: true, now: Date.now() });
      assert.deepEqual(r.repair!.registered, [dep, user].sort());
      assert.deepEqual([...s.closure([user as never])].sort(), [dep, user].sort(), "with its reference");
    } finally {
      s.close();
    }
  });
});
