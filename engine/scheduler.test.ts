// The job pool (engine/scheduler.ts): slots by priority, handed out once a turn's requests are in.
import assert from "node:assert/strict";
import { test } from "node:test";
import { JobPool } from "./scheduler.js";

const turn = () => new Promise((r) => setImmediate(r));

/** A pool of one slot held by job "a" (priority 3) until finish() is called; `order` the jobs as they run. */
async function heldByA(): Promise<{ pool: JobPool; order: string[]; finish: () => void; a: Promise<void> }> {
  const pool = new JobPool(1);
  const order: string[] = [];
  let finish!: () => void;
  const a = pool.run(3, () => new Promise<void>((r) => (finish = () => { order.push("a"); r(); })));
  await turn();
  return { pool, order, finish, a };
}

test("a slot given back goes to the best request of the same turn, not to whoever waited longest", async () => {
  const { pool, order, finish, a } = await heldByA();
  // independent work, waiting for the slot
  const w = pool.run(1, async () => { order.push("w"); });
  await turn();
  // a's end makes its dependent ready, which asks for a slot right away (its priority is higher)
  finish();
  await a;
  const b = pool.run(2, async () => { order.push("b"); });
  await Promise.all([w, b]);
  assert.deepEqual(order, ["a", "b", "w"]);
});

test("with nothing better asked for, the waiting job gets the slot given back", async () => {
  const { pool, order, finish, a } = await heldByA();
  const w = pool.run(1, async () => { order.push("w"); });
  finish();
  await Promise.all([a, w]);
  assert.deepEqual(order, ["a", "w"]);
});

test("the first slots go to the longest chains of a burst of requests, and never more than the slots at once", async () => {
  const pool = new JobPool(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const job = (prio: number) => pool.run(prio, async () => {
    started.push(prio);
    most = Math.max(most, ++running);
    await turn();
    running--;
  });
  await Promise.all([1, 5, 2, 4, 3].map(job));
  assert.deepEqual(started.slice(0, 2), [5, 4]);
  assert.equal(most, 2);
  assert.deepEqual([...started].sort(), [1, 2, 3, 4, 5]);
});
