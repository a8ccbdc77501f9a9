// A small application written for Redis, run unmodified against quorum by
// crates/cli/tests/node_clients.rs with ioredis and with node-redis, each
// with its default settings: a lock with a deadline, counters through a
// pipeline, a transaction, a hash, SCAN. Prints "ok" or throws.
import assert from "node:assert/strict";

const [, , library, port] = process.argv;
const modules = process.env.NODE_CLIENTS_DIR + "/node_modules/";

async function connect() {
  if (library === "ioredis") {
    const { default: Redis } = await import(modules + "ioredis/built/index.js");
    const r = new Redis({ port: Number(port), host: "127.0.0.1" });
    return {
      r,
      set: (k, v, ...opts) => r.set(k, v, ...opts),
      pipeline: () => r.pipeline(),
      multi: () => r.multi(),
      results: (rs) => rs.map(([err, v]) => { if (err) throw err; return v; }),
      scan: async (match) => {
        const keys = [];
        for await (const page of r.scanStream({ match, count: 4 })) keys.push(...page);
        return keys;
      },
      hgetall: (k) => r.hgetall(k),
      close: () => r.quit(),
    };
  }
  const { createClient } = await import(modules + "redis/dist/index.js");
  const r = createClient({ url: `redis://127.0.0.1:${port}` });
  r.on("error", (e) => { throw e; });
  await r.connect();
  return {
    r,
    set: (k, v, ...opts) => {
      const o = {};
      for (let i = 0; i < opts.length; i++) {
        if (opts[i] === "NX") o.NX = true;
        else if (opts[i] === "PX") o.PX = Number(opts[++i]);
        else if (opts[i] === "EX") o.EX = Number(opts[++i]);
      }
      return r.set(k, v, o);
    },
    pipeline: () => r.multi(),
    multi: () => r.multi(),
    results: (rs) => rs,
    scan: async (match) => {
      const keys = [];
      for await (const page of r.scanIterator({ MATCH: match, COUNT: 4 })) keys.push(...[page].flat());
      return keys;
    },
    hgetall: (k) => r.hGetAll(k),
    close: () => r.quit(),
  };
}

const c = await connect();
const r = c.r;
const exec = async (batch, transaction) =>
  library === "ioredis" ? c.results(await batch.exec()) : transaction ? batch.exec() : batch.execAsPipeline();

// A lock with a deadline: taken once, expires, taken again.
assert.equal(await c.set("lock", "me", "NX", "PX", "300"), "OK");
assert.equal(await c.set("lock", "you", "NX", "PX", "300"), null);
const deadline = Date.now() + 5000;
while ((await r.exists("lock")) && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 50));
assert.equal(await c.set("lock", "you", "NX", "EX", "10"), "OK", "the expired lock could not be taken");
const ttl = await r.ttl("lock");
assert.ok(ttl >= 9 && ttl <= 10, `TTL ${ttl}`);

// Counters through a pipeline (not a transaction).
const p = c.pipeline();
for (let i = 0; i < 50; i++) p.incr("counter");
const counts = (await exec(p, false)).map(Number);
assert.deepEqual(counts, Array.from({ length: 50 }, (_, i) => i + 1));
assert.equal(Number(await r.incr("counter")), 51);

// A transaction: one log entry.
const t = c.multi();
t.set("a", "1");
t.incr("a");
t.incr("hits");
t.expire("hits", 60);
const done = await exec(t, true);
assert.deepEqual(done.slice(0, 3).map(String), ["OK", "2", "1"]);
assert.ok(done[3] === 1 || done[3] === true, `EXPIRE answered ${done[3]}`);
assert.equal(await r.get("a"), "2");
assert.ok((await r.ttl("hits")) >= 59);

// A hash.
if (library === "ioredis") {
  assert.equal(await r.hset("user:1", { name: "ada", visits: 1 }), 2);
  assert.equal(await r.hincrby("user:1", "visits", 2), 3);
} else {
  assert.equal(await r.hSet("user:1", { name: "ada", visits: 1 }), 2);
  assert.equal(await r.hIncrBy("user:1", "visits", 2), 3);
}
assert.deepEqual({ ...(await c.hgetall("user:1")) }, { name: "ada", visits: "3" });

// SCAN through every page.
for (let i = 0; i < 30; i++) await r.set(`scan:${i}`, String(i));
const keys = (await c.scan("scan:*")).sort();
assert.deepEqual(keys, Array.from({ length: 30 }, (_, i) => `scan:${i}`).sort());

await c.close();
console.log("ok");
