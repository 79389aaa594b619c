// Node BullMQ side of queuesim's interoperability tests.
// Usage: node agent.js <command> <json-args>; prints one JSON line with the result.
'use strict';
const { FlowProducer, Queue, Worker, QueueEvents } = require('bullmq');

const [command, rawArgs] = process.argv.slice(2);
const args = JSON.parse(rawArgs || '{}');
const connection = { host: args.host || '127.0.0.1', port: args.port || 6379, db: args.db || 0,
  password: args.password, maxRetriesPerRequest: null };

function done(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function add() {
  const q = new Queue(args.queue, { connection });
  const ids = [];
  for (const j of args.jobs) {
    const job = await q.add(j.name, j.data, j.opts || {});
    ids.push(job.id);
  }
  await q.close();
  done({ ids });
}

// Process jobs until `finished` jobs completed or failed for good. data.failTimes = fail that many attempts;
// data.alwaysFail = fail every attempt; data.progress = report these progress values first.
async function work() {
  const order = [];
  let finished = 0;
  let resolveAll;
  const all = new Promise((r) => { resolveAll = r; });
  const worker = new Worker(args.queue, async (job) => {
    order.push({ id: job.id, name: job.name, attemptsMade: job.attemptsMade, at: Date.now() });
    for (const p of job.data.progress || []) await job.updateProgress(p);
    if (job.data.alwaysFail || job.attemptsMade < (job.data.failTimes || 0)) {
      throw new Error(job.data.reason || `failed attempt ${job.attemptsMade + 1}`);
    }
    return { doubled: (job.data.n || 0) * 2, by: 'node' };
  }, { connection, concurrency: args.concurrency || 1, lockDuration: args.lockDuration || 30000,
       stalledInterval: args.stalledInterval || 30000, autorun: true });
  const finish = () => { finished += 1; if (finished >= args.finished) resolveAll(); };
  worker.on('completed', finish);
  worker.on('failed', (job) => {
    if (job && (job.finishedOn || job.attemptsMade >= (job.opts.attempts || 1))) finish();
  });
  const stalled = [];
  worker.on('stalled', (id) => stalled.push(id));
  const timer = setTimeout(() => resolveAll(), args.timeoutMs || 20000);
  await all;
  clearTimeout(timer);
  await worker.close();
  done({ order, stalled, finished });
}

// Take one job and die holding its lock (a crash): exits without completing it.
async function takeAndDie() {
  const worker = new Worker(args.queue, async (job) => {
    done({ took: job.id });
    process.exit(0);
  }, { connection, lockDuration: args.lockDuration || 500, skipStalledCheck: true });
  setTimeout(() => { done({ took: null }); process.exit(0); }, args.timeoutMs || 10000);
}

async function events() {
  const qe = new QueueEvents(args.queue, { connection, lastEventId: '0' });
  const seen = [];
  const names = ['added', 'waiting', 'active', 'progress', 'completed', 'failed', 'delayed', 'stalled',
    'retries-exhausted', 'removed', 'drained', 'paused', 'resumed', 'deduplicated', 'duplicated'];
  for (const n of names) {
    qe.on(n, (payload) => seen.push({ event: n, ...payload }));
  }
  await qe.waitUntilReady();
  const deadline = Date.now() + (args.timeoutMs || 10000);
  while (Date.now() < deadline) {
    const terminal = seen.filter((e) => e.event === 'completed' || e.event === 'failed').length;
    if (terminal >= args.terminal) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  await qe.close();
  done({ events: seen });
}

async function counts() {
  const q = new Queue(args.queue, { connection });
  const c = await q.getJobCounts();
  const state = {};
  for (const id of args.ids || []) {
    const job = await q.getJob(id);
    state[id] = job ? { state: await job.getState(), returnvalue: job.returnvalue,
      failedReason: job.failedReason, attemptsMade: job.attemptsMade, stalledCounter: job.stalledCounter,
      progress: job.progress } : null;
  }
  await q.close();
  done({ counts: c, jobs: state });
}

// Run a list of queue operations (the differential script).
async function script() {
  const q = new Queue(args.queue, { connection });
  const out = [];
  for (const op of args.ops) {
    if (op.op === 'add') out.push((await q.add(op.name, op.data, op.opts || {})).id);
    else if (op.op === 'pause') await q.pause();
    else if (op.op === 'resume') await q.resume();
    else if (op.op === 'promote') await (await q.getJob(op.id)).promote();
    else if (op.op === 'remove') out.push(await q.remove(op.id));
    else if (op.op === 'changePriority') await (await q.getJob(op.id)).changePriority({ priority: op.priority });
    else if (op.op === 'updateProgress') await (await q.getJob(op.id)).updateProgress(op.progress);
    else if (op.op === 'log') await (await q.getJob(op.id)).log(op.line);
    else if (op.op === 'process') {
      // take the next job with a manual worker and complete or fail it
      const w = new Worker(args.queue, null, { connection });
      const token = 'node-token';
      const job = await w.getNextJob(token);
      if (job) {
        if (op.fail) await job.moveToFailed(new Error(op.fail), token, false);
        else await job.moveToCompleted(op.result === undefined ? null : op.result, token, false);
      }
      out.push(job ? job.id : null);
      await w.close();
    } else throw new Error(`unknown op ${op.op}`);
  }
  await q.close();
  done({ out });
}

// Build a flow (args.flow: {name, queue, opts, children}), complete the jobs named in args.complete (each
// with a manual worker on its queue, which must fetch exactly that job), then remove args.remove =
// [{queue, id, removeChildren}] and report what the removals returned.
async function flowRemove() {
  const flow = new FlowProducer({ connection });
  await flow.add(args.flow);
  await flow.close();
  for (const c of args.complete || []) {
    const w = new Worker(c.queue, null, { connection });
    const job = await w.getNextJob('node-token');
    if (!job || job.id !== c.id) throw new Error(`expected ${c.id}, fetched ${job && job.id}`);
    await job.moveToCompleted(c.result === undefined ? null : c.result, 'node-token', false);
    await w.close();
  }
  const out = [];
  for (const r of args.remove) {
    const q = new Queue(r.queue, { connection });
    out.push(await q.remove(r.id, { removeChildren: r.removeChildren !== false }));
    await q.close();
  }
  done({ out });
}

const commands = { add, work, takeAndDie, events, counts, script, flowRemove };
commands[command]().catch((err) => { process.stderr.write(String(err && err.stack || err)); process.exit(1); });
