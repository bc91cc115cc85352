// What a realize visits: the roots and the inputs of what is not in the store yet.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Node } from "./evaluate.js";
import { neededNodes, type PlanState } from "./plan.js";

const node = (name: string, deps: Node[] = [], fixed = false) => ({ name, hash: name, deps, drv: { fixed: fixed ? { sha256: "0" } : undefined } }) as unknown as Node;

describe("neededNodes", () => {
  test("the inputs of a fixed output in the store are not needed; any other node's are", () => {
    const deb = node("deb", [], true);
    const tarball = node("tarball", [deb], true); // in the store
    const cc = node("cc");
    const kernel = node("kernel", [tarball, cc]); // to build
    const image = node("image", [kernel]);
    const states: Record<string, PlanState> = { deb: "fetch", tarball: "cached", cc: "cached", kernel: "build", image: "unknown" };
    const p = new Map([deb, tarball, cc, kernel, image].map((n) => [n, { state: states[n.name]! }]));
    assert.deepEqual(neededNodes([deb, tarball, cc, kernel, image], [image], p).map((n) => n.name), ["tarball", "cc", "kernel", "image"]);
    // everything in the store: cached nodes are still visited (their inputs resolve them), the
    // fixed tarball stops the walk
    const allCached = new Map([deb, tarball, cc, kernel, image].map((n) => [n, { state: "cached" as PlanState }]));
    assert.deepEqual(neededNodes([deb, tarball, cc, kernel, image], [image], allCached).map((n) => n.name), ["tarball", "cc", "kernel", "image"]);
  });
});
