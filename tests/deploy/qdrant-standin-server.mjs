// A STAND-IN FOR QDRANT, FOR TESTS ONLY: not Qdrant, never a vector store.
//
// Runs tests/lib/qdrant-standin.mjs (the in-memory subset of Qdrant's REST API that the
// integration tests use, every request checked against Qdrant's OpenAPI contract) as a
// server for the deployment test's containers: Qdrant's port 6333 on every interface,
// and Qdrant's QDRANT__SERVICE__API_KEY. The stand-in itself listens on loopback only,
// so a small TCP relay publishes it. Exits on SIGTERM.
import net from 'node:net';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';

const port = Number(process.env.QDRANT__SERVICE__HTTP_PORT || 6333);
const apiKey = process.env.QDRANT__SERVICE__API_KEY || null;
const standin = await startQdrantStandin({ apiKey, port: port + 10000 });

const relay = net.createServer((client) => {
  const upstream = net.connect(standin.port, '127.0.0.1');
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
});
relay.listen(port, '0.0.0.0', () => {
  console.log(JSON.stringify({ event: 'qdrant_standin.listening', port, standin: standin.port, apiKey: Boolean(apiKey) }));
});
// Keeps the process alive (the stand-in unrefs its own sockets).
const keepAlive = setInterval(() => {}, 1 << 30);
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, async () => {
    clearInterval(keepAlive);
    relay.close();
    await standin.close();
    process.exit(0);
  });
}
