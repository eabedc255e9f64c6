/* SPDX-License-Identifier: Apache-2.0 */
// Smoke run of the rendered all-in-one overlay with `podman kube play` (podman 4.3):
// the manifests as `kubectl kustomize` renders them, adapted only where podman cannot run
// what Kubernetes would (each adaptation below names the gap it answers), then the
// system used through the frontend (sign in, upload, search, an answer with the LLM key of
// components/llm-key, uploads at the limit), Qdrant's API key, the services' database
// role, the beat's leader and standby (the leader frozen, the standby takes over), the
// security contexts inside every container, one run of components/backup's CronJob (its
// backup on the claim, checked), and the frontend's preStop drain.
//
// Adaptations, and why (see /work/shared/guides/containers-here.md):
//  A1 images: the locally built ones (tests/deploy/build-images.sh; no registry here).
//     PostgreSQL and Redis are look-alikes from Debian packages, Qdrant is the contract
//     stand-in (tests/lib/qdrant-standin.mjs, checked against Qdrant's OpenAPI), which
//     refuses what the real -unprivileged image would not run with (another uid, a
//     writable root, its init marker on the root) and a missing API key.
//  A2 Job -> Pod with restartPolicy OnFailure; CronJob -> one Pod of its job template;
//     StatefulSet -> Deployment plus one PersistentVolumeClaim per claim template: kube
//     play 4.3 runs none of these kinds.
//  A3 Services, Ingress, HPAs, PDBs, NetworkPolicies, ServiceAccounts, the Namespace are
//     not run by podman and left out. In their place: static pod addresses on a network
//     of this test, hostAliases for the Service names (what cluster DNS answers for
//     getaddrinfo), and a DNS stub on the host answering the frontend's nginx for the
//     fully qualified api name (what CoreDNS answers; the stub knows FQDNs only, no
//     search domains, as nginx's resolver does not use them).
//  A4 $(VAR) references and fieldRef metadata.namespace in env: the test puts in the
//     values Kubernetes computes (podman 4.3 leaves them unexpanded).
//  A5 containerPort and the probes: removed. podman publishes every containerPort on the
//     host at 0.0.0.0 (fixed ports collide with other tests); readiness and startup
//     probes are ignored and liveness needs systemd. The test polls /ready itself.
//  A6 emptyDir: renamed per pod, since podman turns each into a named volume shared by
//     every pod using the same name (and medium: Memory is no tmpfs there).
//  A7 the Secret: made first with `podman secret create` from the Secret object as JSON
//     (podman needs it before the pods, and its secretKeyRef reads JSON), with values
//     from the base64 alphabet, since podman writes the data text into files undecoded.
//     podman 4.3 reads a secret for secretKeyRef env as a flat JSON map of base64 values
//     instead, so one secret cannot serve both: env refers to a second one made that way
//     with the same values. Both carry SMOKE_ID in their names (podman secrets are global).
//  A8 the PostgreSQL look-alike does not run /docker-entrypoint-initdb.d as the official
//     image does on first start: the test runs the same two scripts (from the rendered
//     ConfigMap) in the container, before the migration pod starts. Only this needs an
//     order; Kubernetes itself needs none.
//  A9 the preStop hook: run by the test with podman exec, as the kubelet would (podman
//     runs no hooks). The beat's two replicas get no static address (one --ip is per pod; nobody
//     connects to the beat).
//  A11 the LLM endpoint for answers (with components/llm-key, the api reading the
//     Secret's ALMANAC_LLM_API_KEY): tests/lib/fakechat.mjs on the host, relayed from the
//     network's gateway and named `llm` by a host alias (a single-label name, to which
//     Almanac sends a key over http, as to an in-cluster LiteLLM Service); its URL is put
//     into the ConfigMap, whose shipped ALMANAC_LLM_URL is empty.
//  A10 pod, volume and secret names carry SMOKE_ID (default "i14"): podman's names are
//     global on this shared machine.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { render } from './manifests.mjs';
import { startFakeChat } from '../lib/fakechat.mjs';

const TAG = process.env.DEPLOY_TAG || 'i14';
// Podman names are global on a shared machine (A10): SMOKE_ID sets their prefix.
const ID = process.env.SMOKE_ID || 'i14';
const NET = process.env.SMOKE_NETWORK || `almanac-${ID}-k8s`;
const SUBNET = process.env.SMOKE_SUBNET || '10.89.214';
const GW = `${SUBNET}.1`;
const IMAGES = {
  'registry.example.com/almanac/almanac': `localhost/almanac:${TAG}`,
  'registry.example.com/almanac/almanac-frontend': `localhost/almanac-frontend:${TAG}`,
  'docker.io/library/postgres': `localhost/almanac-test/postgres:${TAG}`,
  'docker.io/library/redis': `localhost/almanac-test/redis:${TAG}`,
  'docker.io/qdrant/qdrant': `localhost/almanac-test/qdrant-standin:${TAG}`,
};
const IPS = { postgres: 10, redis: 11, qdrant: 12, migrate: 13, api: 20, worker: 21, beat: 22, frontend: 30 };
const NAMESPACE = 'almanac';
const API_FQDN = `api.${NAMESPACE}.svc.cluster.local`;
const work = fs.mkdtempSync(path.join(os.tmpdir(), `almanac-${ID}-smoke-`));
const played = [];
let chat = null;
let relay = null;
let failures = 0;
let passes = 0;
const t0 = Date.now();

const log = (m) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(3)} s] ${m}`);
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (ok) passes++;
  else failures++;
};
const podman = (...args) => execFileSync('podman', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ the DNS stub (A3)
const dnsAsked = new Set();
function dnsStub(records) {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (q, rinfo) => {
    let off = 12;
    const labels = [];
    while (q[off]) {
      labels.push(q.subarray(off + 1, off + 1 + q[off]).toString());
      off += q[off] + 1;
    }
    const qEnd = off + 5;
    const name = labels.join('.').toLowerCase();
    const qtype = q.readUInt16BE(off + 1);
    dnsAsked.add(name);
    const ip = records[name];
    const head = Buffer.from(q.subarray(0, 12));
    head.writeUInt16BE(ip ? 0x8180 : 0x8183, 2); // answer, or NXDOMAIN
    head.writeUInt16BE(ip && qtype === 1 ? 1 : 0, 6);
    head.writeUInt32BE(0, 8);
    const parts = [head, q.subarray(12, qEnd)];
    if (ip && qtype === 1) {
      const a = Buffer.alloc(16);
      a.writeUInt16BE(0xc00c, 0);
      a.writeUInt16BE(1, 2);
      a.writeUInt16BE(1, 4);
      a.writeUInt32BE(5, 6);
      a.writeUInt16BE(4, 10);
      ip.split('.').forEach((b, i) => (a[12 + i] = Number(b)));
      parts.push(a);
    }
    sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  });
  return new Promise((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(5353, GW, () => resolve(sock));
  });
}

// ------------------------------------------------------------------ adaptation
function adapt(objs, secrets) {
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const hostAliases = [
    { ip: `${SUBNET}.${IPS.postgres}`, hostnames: ['postgres'] },
    { ip: `${SUBNET}.${IPS.redis}`, hostnames: ['redis'] },
    { ip: `${SUBNET}.${IPS.qdrant}`, hostnames: ['qdrant'] },
    { ip: `${SUBNET}.${IPS.api}`, hostnames: [API_FQDN] },
    { ip: GW, hostnames: ['llm'] }, // the LLM endpoint's stand-in on the host (A11)
  ];
  const configMaps = byKind('ConfigMap');
  const pods = []; // [name, kube objects]
  const fixPod = (name, spec) => {
    spec.hostAliases = hostAliases;
    for (const v of spec.volumes || []) {
      if (v.secret?.secretName === 'almanac-secrets') v.secret.secretName = `almanac-${ID}-secrets`; // A7
      if (v.emptyDir) {
        const old = v.name;
        v.name = `almanac-${ID}-${name}-${old}`; // A6
        v.emptyDir = {};
        for (const c of [...(spec.initContainers || []), ...spec.containers])
          for (const m of c.volumeMounts || []) if (m.name === old) m.name = v.name;
      }
    }
    for (const c of [...(spec.initContainers || []), ...spec.containers]) {
      c.image = IMAGES[c.image.replace(/[:@].*$/, '')] || c.image; // A1
      delete c.ports; // A5
      delete c.livenessProbe;
      delete c.readinessProbe;
      delete c.startupProbe;
      const env = {};
      for (const e of c.envFrom || [])
        Object.assign(env, configMaps.find((m) => m.metadata.name === e.configMapRef?.name)?.data || {});
      for (const e of c.env || []) {
        if (e.valueFrom?.secretKeyRef?.name === 'almanac-secrets') e.valueFrom.secretKeyRef.name = `almanac-${ID}-secrets-env`; // A7
        if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') {
          delete e.valueFrom; // A4
          e.value = NAMESPACE;
        }
        if (typeof e.value === 'string') e.value = e.value.replace(/\$\((\w+)\)/g, (_, v) => env[v] ?? `$(${v})`);
        env[e.name] = e.value;
      }
      if (name === 'frontend') c.env.push({ name: 'ALMANAC_NGINX_RESOLVER', value: `${GW}:5353` }); // A3
    }
  };
  for (const d of byKind('Deployment')) {
    fixPod(d.metadata.name, d.spec.template.spec);
    pods.push([d.metadata.name, [{ ...d, metadata: { ...d.metadata, name: `${ID}-${d.metadata.name}` } }]]);
  }
  for (const s of byKind('StatefulSet')) { // A2
    const name = s.metadata.name;
    const pvcs = (s.spec.volumeClaimTemplates || []).map((t) => ({
      apiVersion: 'v1', kind: 'PersistentVolumeClaim',
      metadata: { name: `almanac-${ID}-${name}-${t.metadata.name}` },
      spec: t.spec,
    }));
    s.spec.template.spec.volumes = [
      ...(s.spec.template.spec.volumes || []),
      ...(s.spec.volumeClaimTemplates || []).map((t, i) => ({ name: t.metadata.name, persistentVolumeClaim: { claimName: pvcs[i].metadata.name } })),
    ];
    fixPod(name, s.spec.template.spec);
    pods.push([name, [...pvcs, { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { ...s.metadata, name: `${ID}-${name}` },
      spec: { replicas: 1, selector: s.spec.selector, template: s.spec.template } }]]);
  }
  for (const j of byKind('Job')) { // A2
    const spec = j.spec.template.spec;
    fixPod(j.metadata.name, spec);
    spec.restartPolicy = 'OnFailure';
    pods.push([j.metadata.name, [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: `${ID}-${j.metadata.name}`, labels: j.spec.template.metadata.labels }, spec }]]);
  }
  // A2 CronJob -> one Pod of its job template, played when the test asks for a run (as
  // `kubectl create job --from=cronjob/...` does); its claims become podman volumes of
  // this run.
  for (const cj of byKind('CronJob')) {
    const tpl = cj.spec.jobTemplate.spec.template;
    const claims = [];
    for (const v of tpl.spec.volumes || []) {
      if (!v.persistentVolumeClaim) continue;
      const pvc = objs.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === v.persistentVolumeClaim.claimName);
      const name = `almanac-${ID}-${cj.metadata.name}-${pvc.metadata.name}`;
      claims.push({ ...pvc, metadata: { ...pvc.metadata, name } });
      v.persistentVolumeClaim.claimName = name;
    }
    fixPod(cj.metadata.name, tpl.spec);
    pods.push([cj.metadata.name, [...claims, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `${ID}-${cj.metadata.name}`, labels: tpl.metadata.labels }, spec: tpl.spec }]]);
  }
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'almanac-secrets' }, type: 'Opaque', data: secrets }; // A7
  return { pods: new Map(pods), configMaps, secret };
}

// ------------------------------------------------------------------ running
// ConfigMaps go to podman in the file of each pod that uses them, not alone.
let cmFile = null;
let allConfigMaps = [];
const configMapsOf = (objs) => {
  const text = JSON.stringify(objs);
  return allConfigMaps.filter((m) => text.includes(`"${m.metadata.name}"`));
};

function play(name, objs, ip) {
  const file = path.join(work, `${name}.yaml`);
  fs.writeFileSync(file, [...(cmFile ? configMapsOf(objs) : []), ...objs].map((o) => stringify(o)).join('---\n'));
  const args = ['kube', 'play', '--network', NET, ...(ip ? ['--ip', ip] : []), file];
  const r = spawnSync('podman', args, { encoding: 'utf8' });
  if (r.status !== 0) {
    // Who holds which address on the network, for an address conflict.
    const who = spawnSync('podman', ['ps', '-a', '--filter', `network=${NET}`, '--format', '{{.ID}} {{.Names}} {{.Status}} {{.Networks}}'], { encoding: 'utf8' });
    const ips = spawnSync('podman', ['network', 'inspect', NET], { encoding: 'utf8' });
    throw new Error(`podman kube play ${name}: ${r.stderr}\ncontainers on ${NET}:\n${who.stdout}\n${ips.stdout.slice(0, 2000)}`);
  }
  played.push(file);
}

function container(name, c = name) {
  const out = podman('ps', '-a', '--format', '{{.Names}}');
  return out.split('\n').find((n) => n.startsWith(`${ID}-${name}-`) && n.endsWith(`-${c}`));
}

async function until(what, fn, ms) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e.message;
    }
    await sleep(1000);
  }
  throw new Error(`${what}: not within ${ms / 1000} s (last: ${last})`);
}

async function http(method, url, { body, headers = {} } = {}) {
  const r = await fetch(url, { method, body, headers, signal: AbortSignal.timeout(15000) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, json, text };
}

function teardown() {
  for (const f of played.reverse()) spawnSync('podman', ['kube', 'down', f], { stdio: 'ignore' });
  for (const v of podman('volume', 'ls', '--format', '{{.Name}}').split('\n'))
    if (v.startsWith(`almanac-${ID}-`))
      spawnSync('podman', ['volume', 'rm', '-f', v], { stdio: 'ignore' });
  spawnSync('podman', ['secret', 'rm', `almanac-${ID}-secrets`, `almanac-${ID}-secrets-env`], { stdio: 'ignore' });
  spawnSync('podman', ['network', 'rm', '-f', NET], { stdio: 'ignore' });
  fs.rmSync(work, { recursive: true, force: true });
}

async function main() {
  teardown(); // leftovers of an interrupted run
  fs.mkdirSync(work, { recursive: true });
  // Static pod addresses (IPS) lie below .128; podman hands out the addresses of pods
  // without one (the beat) from the upper half only, so none can take a static one first.
  podman('network', 'create', '--subnet', `${SUBNET}.0/24`, '--gateway', GW, '--ip-range', `${SUBNET}.128/25`, NET);
  const hex = () => crypto.randomBytes(32).toString('hex'); // 64 characters of the base64 alphabet (A7)
  const secrets = {
    ALMANAC_DATABASE_PASSWORD: hex(), ALMANAC_DATABASE_OWNER_PASSWORD: hex(), ALMANAC_REDIS_PASSWORD: hex(),
    ALMANAC_JWT_SECRET: hex(), ALMANAC_QDRANT_API_KEY: hex(), ALMANAC_LLM_API_KEY: hex(),
  };
  const { pods, configMaps, secret } = adapt(render('all-in-one', ['llm-key', 'backup']), secrets);
  log(`rendered all-in-one: ${[...pods.keys()].join(', ')}`);

  // The gateway address exists once the bridge does: start the data stores first.
  const secretFile = path.join(work, 'secret.json');
  fs.writeFileSync(secretFile, JSON.stringify(secret), { mode: 0o600 });
  podman('secret', 'create', `almanac-${ID}-secrets`, secretFile);
  const envFile = path.join(work, 'secret-env.json');
  fs.writeFileSync(envFile, JSON.stringify(Object.fromEntries(Object.entries(secrets).map(([k, v]) => [k, Buffer.from(v).toString('base64')]))), { mode: 0o600 });
  podman('secret', 'create', `almanac-${ID}-secrets-env`, envFile);
  cmFile = true;
  allConfigMaps = configMaps;
  for (const n of ['postgres', 'redis', 'qdrant']) play(n, pods.get(n), `${SUBNET}.${IPS[n]}`);
  const dns = await dnsStub({ [API_FQDN]: `${SUBNET}.${IPS.api}` });
  // A11: the LLM endpoint, before the api starts.
  chat = await startFakeChat();
  relay = net.createServer((client) => {
    const upstream = net.connect(chat.port, '127.0.0.1');
    client.pipe(upstream).pipe(client);
    const close = () => (client.destroy(), upstream.destroy());
    client.on('error', close);
    upstream.on('error', close);
  });
  await new Promise((r) => relay.listen(0, GW, r));
  const cfgMap = configMaps.find((m) => m.metadata.name.startsWith('almanac-config-'));
  cfgMap.data.ALMANAC_LLM_URL = `http://llm:${relay.address().port}/v1`;
  cfgMap.data.ALMANAC_LLM_MODEL = 'fake-chat';

  // A8: the initdb scripts the official image would run on first start.
  const pgc = container('postgres');
  await until('PostgreSQL accepting connections', () =>
    // Over TCP: during its first start the image runs a socket-only server for initdb.
    spawnSync('podman', ['exec', pgc, 'pg_isready', '-q', '-h', '127.0.0.1', '-U', 'almanac_owner', '-d', 'almanac']).status === 0, 90000);
  for (const f of ['10-roles.sh', '20-app-role.sql']) {
    const cmd = f.endsWith('.sh') ? `sh /docker-entrypoint-initdb.d/${f}`
      : `psql -v ON_ERROR_STOP=1 -q -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /docker-entrypoint-initdb.d/${f}`;
    const r = spawnSync('podman', ['exec', '-e', 'PGHOST=/tmp', pgc, 'sh', '-c', cmd], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${f}: ${r.stderr}`);
  }
  log('PostgreSQL up, roles made');

  for (const n of ['migrate', 'api', 'worker', 'beat', 'frontend']) play(n, pods.get(n), n === 'beat' ? null : `${SUBNET}.${IPS[n]}`);
  const mig = container('migrate');
  await until('the migration pod completed', () => {
    const s = podman('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', mig).trim();
    return s === 'exited 0';
  }, 60000);
  log('migration done (owner role)');

  const base = `http://${SUBNET}.${IPS.frontend}:8080`;
  await until('/api/ready 200 through the frontend', async () => (await http('GET', `${base}/api/ready`)).status === 200, 120000);
  log('the frontend reaches a Ready api by its fully qualified name');
  const ready = await http('GET', `${base}/api/ready`);
  check(ready.status === 200, `/api/ready through the frontend: ${ready.text.slice(0, 200)}`);

  // The first administrator, as docs/kubernetes.md makes it: password on stdin.
  const email = 'admin@example.test';
  const password = crypto.randomBytes(12).toString('hex');
  const u = spawnSync('podman', ['exec', '-i', container('api'), 'almanac', 'user', 'create', '--admin', '--email', email],
    { input: `${password}\n`, encoding: 'utf8' });
  check(u.status === 0, `almanac user create --admin in the api container ${u.stderr.trim()}`);

  const login = await http('POST', `${base}/api/v1/auth/login`, { headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email, password }) });
  check(login.status === 200 && login.json?.access_token, `sign in through the frontend: ${login.status}`);
  const auth = { Authorization: `Bearer ${login.json?.access_token}` };
  const kb = await http('POST', `${base}/api/v1/knowledge-bases`, { headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'k8s smoke' }) });
  check(kb.status === 201, `knowledge base created: ${kb.status}`);
  const kbId = kb.json?.id;
  const up = await http('POST', `${base}/api/v1/knowledge-bases/${kbId}/documents?filename=handbook.md`, {
    headers: { ...auth, 'Content-Type': 'text/markdown' },
    body: '# Handbook\n\nEvery ptarmigan on the night shift gets two extra days of leave.\n',
  });
  check(up.status === 202, `upload through the frontend: ${up.status}`);
  await until('the document ready', async () => {
    const r = await http('GET', `${base}/api/v1/knowledge-bases/${kbId}/documents?status=ready&limit=10`, { headers: auth });
    return r.json?.documents?.length === 1;
  }, 90000).then(() => check(true, 'the worker ingested the document'), (e) => check(false, e.message));
  const s = await http('POST', `${base}/api/v1/search`, { headers: { ...auth, 'Content-Type': 'application/json' }, body: JSON.stringify({ query: 'ptarmigan leave', knowledge_base_ids: [kbId] }) });
  check(s.status === 200 && s.json?.results?.[0]?.document_id === up.json?.id && s.json?.degraded === false,
    `search finds it: ${s.status} document ${s.json?.results?.[0]?.document_id} degraded=${s.json?.degraded}`);

  // Answers: the api reads the LLM key from the Secret (components/llm-key) and sends it.
  const ans = await http('POST', `${base}/api/v1/answers`, { headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ question: 'How much leave does a ptarmigan on the night shift get?', knowledge_base_ids: [kbId] }) });
  const sent = chat.requests.map((r) => r.authorization);
  check(ans.status === 200 && /ptarmigan/.test(ans.text), `an answer through the frontend: ${ans.status} ${ans.text.slice(0, 120)}`);
  check(sent.length > 0 && sent.every((a) => a === `Bearer ${secrets.ALMANAC_LLM_API_KEY}`),
    `the api sent the Secret's LLM key (${sent.length} request(s), ${sent.filter((a) => a === `Bearer ${secrets.ALMANAC_LLM_API_KEY}`).length} with it)`);

  // Uploads at the limit through the frontend (as tests/deploy/run.sh does in Compose):
  // one document of exactly ALMANAC_MAX_UPLOAD_BYTES, one a byte over (413 from the api),
  // three concurrent 10 MiB ones; nginx must buffer none of them onto its small /tmp.
  const limit = 20971520; // ALMANAC_MAX_UPLOAD_BYTES, the default the ConfigMap keeps
  const doc = (n, tail = '') => {
    const line = 'Plain paragraph about the osprey limit test and its many words.\n';
    const head = '# Limit\n\n';
    const body = Buffer.from(head + line.repeat(Math.ceil((n - head.length) / line.length))).subarray(0, n - tail.length);
    return Buffer.concat([body, Buffer.from(tail)]);
  };
  const post = async (name, body) => {
    const r = await fetch(`${base}/api/v1/knowledge-bases/${kbId}/documents?filename=${name}`, {
      method: 'POST', body, headers: { ...auth, 'Content-Type': 'text/markdown' }, signal: AbortSignal.timeout(120000) });
    const text = await r.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {}
    return { status: r.status, json, text };
  };
  const atLimit = await post('limit.md', doc(limit));
  check(atLimit.status === 202 && Number(atLimit.json?.size_bytes) === limit,
    `a document of exactly ${limit} bytes uploads through the frontend: ${atLimit.status}, size_bytes ${atLimit.json?.size_bytes}`);
  const over = await post('over.md', doc(limit + 1));
  check(over.status === 413 && over.json?.error !== undefined,
    `one byte over the limit: ${over.status} ${over.text.slice(0, 120)}`);
  const tens = await Promise.all([1, 2, 3].map((i) => post(`ten-${i}.md`, doc(10485760, `\nCopy ${i}.\n`)).catch((e) => ({ status: e.message }))));
  check(tens.every((r) => r.status === 202), `three concurrent 10 MiB uploads through the frontend: ${tens.map((r) => r.status).join(', ')}`);
  const feLog = spawnSync('podman', ['logs', container('frontend')], { encoding: 'utf8' });
  const buffered = `${feLog.stdout}${feLog.stderr}`.split('\n').filter((l) => /No space left|client_body_temp|a client request body is buffered/.test(l));
  check(buffered.length === 0, `nginx buffered no request body to its /tmp (${buffered.length} log lines: ${buffered[0] || ''})`);
  await until('the limit-size and 10 MiB documents ready', async () => {
    const r = await http('GET', `${base}/api/v1/knowledge-bases/${kbId}/documents?status=ready&limit=100`, { headers: auth });
    return r.json?.documents?.length === 5;
  }, 300000).then(() => check(true, 'the worker ingested the limit-size and the three 10 MiB documents (5 ready)'), (e) => check(false, e.message));

  // The nightly backup of components/backup, run once now: its init container saves a
  // Qdrant snapshot with the almanac image, its container runs almanac-backup.sh in
  // prepared mode with pg_dump of the PostgreSQL image, into the backups claim.
  play('backup', pods.get('backup'), null);
  const bk = container('backup', 'backup');
  const bkState = await until('the backup pod finishes', () => {
    const st = podman('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', bk).trim();
    return st.startsWith('exited') ? st : null;
  }, 180000).catch((e) => e.message);
  const bkLog = spawnSync('podman', ['logs', bk], { encoding: 'utf8' });
  const bkLast = `${bkLog.stdout}`.trim().split('\n').pop() || '';
  check(bkState === 'exited 0', `the backup CronJob's pod exits 0 (${bkState}: ${(bkLog.stderr || '').trim().split('\n').pop() || bkLast})`);
  const bkVol = podman('volume', 'inspect', '-f', '{{.Mountpoint}}', `almanac-${ID}-backup-almanac-backups`).trim();
  const bkDir = bkLast.startsWith('/backups/') ? path.join(bkVol, bkLast.slice('/backups/'.length)) : null;
  const bkManifestText = bkDir && fs.existsSync(path.join(bkDir, 'manifest.json')) ? fs.readFileSync(path.join(bkDir, 'manifest.json'), 'utf8') : '';
  const bkManifest = bkManifestText ? JSON.parse(bkManifestText) : {};
  const bkFiles = bkDir && fs.existsSync(bkDir) ? fs.readdirSync(bkDir).sort() : [];
  check(['SHA256SUMS', 'database.dump', 'manifest.json', 'vectors.snapshot'].every((f) => bkFiles.includes(f)),
    `the backup is on its claim: dump, snapshot, manifest and checksums (${bkLast}: ${bkFiles.join(' ')})`);
  check(bkManifest.documents === 5 && bkManifest.chunks > 0 && bkManifest.vectors_points === bkManifest.chunks,
    `the manifest counts the 5 documents and one point per chunk (${bkManifest.documents} documents, ${bkManifest.chunks} chunks, ${bkManifest.vectors_points} points)`);
  check(bkManifestText !== '' && !Object.values(secrets).some((v) => bkManifestText.includes(v)), 'the manifest holds no secret');

  check(dnsAsked.has(API_FQDN), `the frontend's nginx resolved ${API_FQDN} with its own resolver (asked: ${[...dnsAsked].join(', ')})`);
  const roles = spawnSync('podman', ['exec', '-e', 'PGHOST=/tmp', container('postgres'), 'psql', '-At', '-U', 'almanac_owner', '-d', 'almanac', '-c',
    "SELECT string_agg(DISTINCT usename || ':' || application_name, ' ') FROM pg_stat_activity WHERE application_name LIKE 'almanac%'"], { encoding: 'utf8' }).stdout.trim();
  check(roles && roles.split(' ').every((r) => r.startsWith('almanac:')), `the services connect as the application role only (${roles})`);

  // The beat: two replicas, one leader and a hot standby that takes over when the
  // leader stops renewing without releasing the lease (a lost node). The leader is frozen
  // (cgroup freezer, as a partitioned node's process is to the others), not killed: podman
  // restarts a killed container at once, and that new process would race the standby for
  // the expired lease.
  const beats = podman('ps', '--format', '{{.Names}}').split('\n').filter((n) => new RegExp(`^${ID}-beat-pod-\\d+-beat$`).test(n)).sort();
  const leads = (c) => (podman('logs', c) + '').split('\n').filter((l) => l.includes('"event":"beat.leader"')).length;
  check(beats.length === 2, `two beat pods (${beats.join(', ')})`);
  if (beats.length === 2) {
    const leader = await until('a beat leader', () => beats.find((c) => leads(c) > 0), 30000).catch(() => null);
    const standby = beats.find((c) => c !== leader);
    check(leader && leads(standby) === 0, `one leader (${leader}), one standby (${standby})`);
    if (leader) {
      const t1 = Date.now();
      podman('pause', leader);
      const took = await until('the standby takes over', () => leads(standby) > 0, 40000).then(() => Date.now() - t1, () => null);
      podman('unpause', leader);
      check(took !== null && took < 25000, `the standby leads ${took === null ? 'never' : `after ${(took / 1000).toFixed(1)} s`} (lease 15 s: within about 20 s)`);
    }
  }

  // Security contexts in force, inside every container. Seen from the host (the almanac
  // image has no shell to look from inside): PID 1's status, and a write through its
  // root (/proc/PID/root is the container's root mount, read-only or not).
  const rendered = render('all-in-one');
  for (const o of rendered.filter((x) => ['Deployment', 'StatefulSet'].includes(x.kind))) {
    const name = o.metadata.name;
    const c = container(name, o.spec.template.spec.containers[0].name);
    const want = o.spec.template.spec.securityContext.runAsUser;
    const pid = podman('inspect', '-f', '{{.State.Pid}}', c).trim();
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (k) => (st.match(new RegExp(`^${k}:\\s*(.*)$`, 'm')) || [])[1]?.trim();
    check(field('Uid')?.split(/\s+/)[0] === String(want), `${name}: PID 1 runs as uid ${field('Uid')?.split(/\s+/)[0]} (want ${want})`);
    check(field('CapEff') === '0000000000000000', `${name}: no effective capabilities (${field('CapEff')})`);
    check(field('NoNewPrivs') === '1', `${name}: no_new_privs (${field('NoNewPrivs')})`);
    check(field('Seccomp') === '2', `${name}: seccomp filter (${field('Seccomp')})`);
    let wrote;
    try {
      fs.writeFileSync(`/proc/${pid}/root/smoke-probe`, '');
      wrote = 'written';
    } catch (e) {
      wrote = e.code;
    }
    check(wrote === 'EROFS', `${name}: read-only root filesystem (a write to / gives ${wrote})`);
  }

  // Qdrant: the key the services send is required. The stand-in, like the real image,
  // answers 401 without it; and it refuses to start as the real -unprivileged image
  // would fail (A1): the pod without the Secret's key exits 78, the init marker left in
  // the read-only working directory stops the start.
  const qurl = `http://${SUBNET}.${IPS.qdrant}:6333`;
  const noKey = await http('GET', `${qurl}/collections/almanac_chunks`);
  check(noKey.status === 401, `Qdrant without the API key: ${noKey.status}`);
  const withKey = await http('GET', `${qurl}/collections/almanac_chunks`, { headers: { 'api-key': secrets.ALMANAC_QDRANT_API_KEY } });
  check(withKey.status === 200, `Qdrant with the Secret's key: ${withKey.status}`);
  const qlog = spawnSync('podman', ['logs', container('qdrant')], { encoding: 'utf8' }).stdout;
  check(/"initFile":"\/qdrant\/storage\/.qdrant-initialized"/.test(qlog), 'Qdrant writes its init marker in its storage volume');
  const broken = [
    ['badq-nokey', (c) => (c.volumeMounts = c.volumeMounts.filter((m) => m.mountPath !== '/run/secrets/almanac')), /ALMANAC_QDRANT_API_KEY is empty/, '78'],
    ['badq-marker', (c) => (c.env = c.env.filter((e) => e.name !== 'QDRANT_INIT_FILE_PATH')), /init file/, '101'],
  ];
  for (const [bad, breakIt, msg, exit] of broken) {
    const objs = adapt(render('all-in-one'), secrets).pods.get('qdrant');
    const pvc = objs.find((o) => o.kind === 'PersistentVolumeClaim');
    const dep = objs.find((o) => o.kind === 'Deployment');
    pvc.metadata.name = `almanac-${ID}-${bad}-data`;
    dep.metadata.name = `${ID}-${bad}`;
    const ps = dep.spec.template.spec;
    ps.restartPolicy = 'Never';
    ps.volumes.find((v) => v.persistentVolumeClaim).persistentVolumeClaim.claimName = pvc.metadata.name;
    breakIt(ps.containers[0]);
    play(bad, objs, null);
    const c = container(bad, 'qdrant');
    const got = await until(`${bad} exits`, () => {
      const st = podman('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', c).trim();
      return st.startsWith('exited') ? st : null;
    }, 30000).catch((e) => e.message);
    const out = spawnSync('podman', ['logs', c], { encoding: 'utf8' });
    check(got === `exited ${exit}` && msg.test(out.stdout + out.stderr), `Qdrant ${bad}: refused to start (${got}: ${(out.stderr || out.stdout).trim().split('\n').pop()})`);
  }

  // Last, as it takes the frontend down: its preStop hook (run here as the kubelet would,
  // since podman runs no hooks) keeps serving through the endpoint-removal delay, then
  // nginx quits gracefully: an upload in flight completes, and nginx exits 0.
  const fe = container('frontend');
  const hook = rendered.find((o) => o.kind === 'Deployment' && o.metadata.name === 'frontend')
    .spec.template.spec.containers[0].lifecycle.preStop.exec.command;
  const bodyFile = path.join(work, 'slow.md');
  fs.writeFileSync(bodyFile, '# Slow upload\n\n' + 'A line about the graceful quit of the frontend.\n'.repeat(16000));
  const restarts0 = Number(podman('inspect', '-f', '{{.RestartCount}}', fe).trim());
  const upload = spawn('curl', ['-sS', '-m', '60', '--limit-rate', '100k', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST',
    '-H', `Authorization: Bearer ${login.json?.access_token}`, '-H', 'Content-Type: text/markdown', '--data-binary', `@${bodyFile}`,
    `${base}/api/v1/knowledge-bases/${kbId}/documents?filename=slow.md`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let code = '';
  upload.stdout.on('data', (d) => (code += d));
  const uploaded = new Promise((r) => upload.on('exit', r));
  await sleep(1000);
  const tHook = Date.now();
  const hookRun = spawn('podman', ['exec', fe, ...hook], { stdio: 'ignore' });
  await sleep(3000);
  check((await http('GET', `${base}/healthz`)).status === 200, 'the frontend still serves during the preStop delay');
  await uploaded;
  check(code === '202', `the upload in flight when the frontend was told to quit completed: ${code} (${((Date.now() - tHook) / 1000).toFixed(1)} s after the hook began)`);
  await new Promise((r) => hookRun.on('exit', r));
  // podman restarts it at once (restartPolicy Always): its restart count says it exited,
  // its last exit code how.
  const st = await until('the frontend exited', () => {
    const [restarts, exit] = podman('inspect', '-f', '{{.RestartCount}} {{.State.ExitCode}}', fe).trim().split(' ');
    return Number(restarts) > restarts0 ? { status: `exited and restarted`, exit } : null;
  }, 20000).catch((e) => ({ status: e.message, exit: '?' }));
  check(st.exit === '0', `nginx quit gracefully (${st.status}, exit ${st.exit})`);
  dns.close();
}

try {
  await main();
} catch (e) {
  console.log(`FAIL ${e.message}`);
  for (const n of ['migrate', 'api', 'frontend', 'postgres']) {
    const c = (() => { try { return container(n); } catch { return null; } })();
    if (c) console.log(`--- ${c}:\n${spawnSync('podman', ['logs', '--tail', '15', c], { encoding: 'utf8' }).stdout}`);
  }
  failures++;
} finally {
  relay?.close();
  await chat?.close?.();
  if (process.env.SMOKE_KEEP !== '1') teardown();
}
log(failures ? `${failures} check(s) failed` : 'all checks passed');
console.log(`k8s-smoke: ${passes} passed, ${failures} failed`); // the closing line CI reads
process.exit(failures ? 1 : 0);
