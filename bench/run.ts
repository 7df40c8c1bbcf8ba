// `npm run bench`: runs every benchmark and prints its figures beside its goal. Benchmarks never
// assert: a machine under other load gives other numbers, so read them in context.
import { describeLoop, webhookAckBenchmark } from './webhook-ack.ts';
import { endToEndLatencyBenchmark, fullPullBenchmark, fullPushBenchmark, importBenchmark, printImport, printLatency, printThroughput } from './sync-throughput.ts';
import { driftedOpPullBenchmark, fullOpPullBenchmark, printOpPull } from './op-pull.ts';
import { driftedPushOperationBenchmark, fullPushOperationBenchmark, printPush } from './op-push.ts';

const fmt = (n: unknown) => (typeof n === 'number' ? n.toFixed(2) : String(n));

const ackRuns = [
  ['', 0, 0],
  [', its last 10 s of a 15 s stream (steady state)', 0, 5],
  [', during a full sweep of 20,000 contacts', 20_000, 0],
] as const;
for (const [title, pullContacts, warmupSeconds] of ackRuns) {
  const ack = await webhookAckBenchmark({ pullContacts, warmupSeconds });
  console.log(`webhook acknowledgement${title}, events about contacts both sides hold (goal: p99 <= 5 ms at 1,000/s, nothing lost)`);
  if (ack.warmup) console.log(`  the stream's first ${warmupSeconds} s (not measured below): p99 ${fmt(ack.warmup.p99)}, by second ${ack.warmup.p99BySecond.map((x) => x.toFixed(1)).join(', ')}`);
  console.log(`  sent ${ack.sent} at ${fmt(ack.achievedRate)}/s, statuses ${JSON.stringify(ack.statuses)}`);
  console.log(`  latency ms: p50 ${fmt(ack.p50)}  p90 ${fmt(ack.p90)}  p99 ${fmt(ack.p99)}  max ${fmt(ack.max)}; p99 by second ${ack.p99BySecond.map((x) => x.toFixed(1)).join(', ')}`);
  console.log(`  the same load on a peer that does no work: p50 ${fmt(ack.peer.p50)}  p90 ${fmt(ack.peer.p90)}  p99 ${fmt(ack.peer.p99)}  max ${fmt(ack.peer.max)}`);
  console.log(`  the generator sent late by (p99) ${fmt(ack.senderLateP99)} ms against Tandem, ${fmt(ack.peer.senderLateP99)} ms against the peer`);
  console.log(`  acknowledged ${ack.acked}, stored ${ack.stored}, lost ${ack.lost}; Tandem CPU per event ${fmt(ack.cpuPerEventUs)} µs, of which the thread that answers them ${fmt(ack.mainCpuPerEventUs)} µs`);
  console.log(`  CPU µs per event by thread: ${Object.entries(ack.threadCpuPerEventUs).map(([name, us]) => `${name} ${us.toFixed(0)}`).join(', ')}`);
  console.log(describeLoop(ack.loop));
  if (ack.sweep) console.log(`  the sweep: ${ack.sweep.imported} of ${ack.sweep.contacts} contacts in Tandem at the end of the load, ${ack.sweep.ms === undefined ? 'not finished' : `done in ${fmt(ack.sweep.ms)} ms`}`);
}

// Sequential: each starts its own emulator and Tandem, and they would compete for the same cores.
printThroughput('full pull (goal: >= 0.9 of the rate-limit floor, 0 429s)', await fullPullBenchmark());
printThroughput('full push (goal: >= 0.9 of the rate-limit floor, 0 429s)', await fullPushBenchmark());
printLatency(await endToEndLatencyBenchmark());
printImport(await importBenchmark());
printOpPull(await fullOpPullBenchmark());
printOpPull(await driftedOpPullBenchmark());
printPush(await fullPushOperationBenchmark(), '0 429s; requests = search pages + 1 create per contact');
printPush(await driftedPushOperationBenchmark(), '<= 150 requests for 10,000 with 1% drift');
