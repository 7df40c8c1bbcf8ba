// The peer that bench/webhook-ack.ts measures beside Tandem: a node:http server that reads each
// request's body and answers a small JSON, nothing else. The same load generator against it, on the
// same machine in the same run, shows what latency the machine, Node's HTTP stack and the generator
// account for before Tandem does any work. Prints its URL once it listens.
import http from 'node:http';

const answer = Buffer.from(JSON.stringify({ received: true, duplicate: false }));
const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': answer.length });
    res.end(answer);
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${address.port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
