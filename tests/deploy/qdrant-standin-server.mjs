/* SPDX-License-Identifier: Apache-2.0 */
// A STAND-IN FOR QDRANT, FOR TESTS ONLY: not Qdrant, never a vector store.
//
// Runs tests/lib/qdrant-standin.mjs (the in-memory subset of Qdrant's REST API that the
// integration tests use, every request checked against Qdrant's OpenAPI contract) as a
// server for the deployment test's containers: Qdrant's port 6333 on every interface,
// and Qdrant's QDRANT__SERVICE__API_KEY. The stand-in itself listens on loopback only,
// so a small TCP relay publishes it. Exits on SIGTERM.
//
// It imposes what the real qdrant/qdrant:*-unprivileged image imposes, so that a compose
// file that would not start the real one does not start this one either:
// - uid 1000 (the image's USER), working directory /qdrant;
// - it must write its storage (QDRANT__STORAGE__STORAGE_PATH, default ./storage), its
//   snapshots (QDRANT__STORAGE__SNAPSHOTS_PATH, default ./snapshots) and the init marker
//   (QDRANT_INIT_FILE_PATH, default ./.qdrant-initialized, which Qdrant writes in its
//   working directory at start): any of them on a read-only root stops the start, as it
//   makes Qdrant panic;
// - and, stricter than Qdrant (which runs open without one), an API key
//   (QDRANT__SERVICE__API_KEY): without one it refuses to start; requests without it get
//   Qdrant's 401 answer.
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { startQdrantStandin } from '../lib/qdrant-standin.mjs';

const port = Number(process.env.QDRANT__SERVICE__HTTP_PORT || 6333);
const apiKey = process.env.QDRANT__SERVICE__API_KEY || null;

function die(msg) {
  console.error(`Panic occurred in file src/main.rs: ${msg}`);
  process.exit(101);
}
if (process.getuid() !== 1000) die(`the unprivileged image runs as uid 1000, not ${process.getuid()}`);
if (!apiKey) die('QDRANT__SERVICE__API_KEY is not set (the deployment test requires an API key)');
const storage = path.resolve(process.env.QDRANT__STORAGE__STORAGE_PATH || 'storage');
const snapshots = path.resolve(process.env.QDRANT__STORAGE__SNAPSHOTS_PATH || 'snapshots');
const initFile = path.resolve(process.env.QDRANT_INIT_FILE_PATH || '.qdrant-initialized');
for (const dir of [storage, snapshots]) {
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, '.standin-write-probe'), 'ok\n');
    fs.unlinkSync(path.join(dir, '.standin-write-probe'));
  } catch (e) {
    die(`Can't create directory or write in ${dir}: ${e.message}`);
  }
}
try {
  fs.writeFileSync(initFile, '');
} catch (e) {
  die(`Failed to create init file indicator ${initFile}: ${e.message}`);
}
// A read-only root everywhere else: the stand-in's own directory must not be writable.
try {
  fs.writeFileSync('/qdrant/.standin-root-probe', '');
  fs.unlinkSync('/qdrant/.standin-root-probe');
  die('the root filesystem is writable (/qdrant); the compose file must set read_only');
} catch (e) {
  if (e.code !== 'EROFS') die(`unexpected error probing the root filesystem: ${e.message}`);
}
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
  console.log(JSON.stringify({ event: 'qdrant_standin.listening', port, standin: standin.port, apiKey: Boolean(apiKey), storage, snapshots, initFile }));
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
