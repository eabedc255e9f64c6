/* SPDX-License-Identifier: Apache-2.0 */
// Static checks of the deployment files (no container started; tests/deploy/run.sh
// starts them for real):
// - infrastructure/.env.prod.template, the compose files and `almanac check-config --list`
//   agree: every ALMANAC_* name is a real setting, every setting reaches the services
//   through the production compose file (or is fixed there), compose defaults equal the
//   binary's, and the template documents every variable the compose file reads;
// - both compose files validate against the Compose specification's JSON schema;
// - `kubectl kustomize` renders each overlay of infrastructure/k8s, and every workload has
//   probes, runs as non-root on a read-only root filesystem, with requests and limits
//   (tests/k8s validates the overlays against the Kubernetes schemas and their rules);
// - no secret literal in the production files; the development file's credentials are
//   all on the production deny-list.
// YAML is read with python3's yaml module (scripts/deps.sh installs python3-yaml) and
// Kubernetes rendered with kubectl (with kustomize v5, as tests/k8s/run.sh needs); a check
// whose tool is missing fails, saying which.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import Ajv from 'ajv';
import { ALMANAC_BIN, REPO_ROOT, requireBinary } from '../lib/almanac.mjs';

const ROOT = REPO_ROOT;
const BIN = ALMANAC_BIN;
const DOCKER = path.join(ROOT, 'infrastructure', 'docker');
const PROD = path.join(DOCKER, 'docker-compose.prod.yml');
const DEV = path.join(DOCKER, 'docker-compose.yml');
const TEMPLATE = path.join(ROOT, 'infrastructure', '.env.prod.template');
const SCHEMA = path.join(ROOT, 'tests', 'contracts', 'compose-spec.json');

const runs = (cmd, args) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
const hasPyYaml = runs('python3', ['-c', 'import yaml']);
const hasKubectl = runs('kubectl', ['version', '--client']);
/** The tools a check needs: a missing one fails the check, naming it. */
function requireTools({ kubectl = false, binary = false } = {}) {
  assert.ok(hasPyYaml, "python3's yaml module is missing: scripts/deps.sh installs python3-yaml");
  if (kubectl) assert.ok(hasKubectl, 'kubectl is missing: tests/k8s/run.sh says which client it needs');
  if (binary) requireBinary();
}

function loadYaml(file, all = false) {
  const code = all
    ? 'import sys,json,yaml; print(json.dumps([d for d in yaml.safe_load_all(sys.stdin) if d]))'
    : 'import sys,json,yaml; print(json.dumps(yaml.safe_load(sys.stdin)))';
  const input = typeof file === 'string' && fs.existsSync(file) ? fs.readFileSync(file) : file;
  return JSON.parse(execFileSync('python3', ['-c', code], { input }).toString());
}

function settings() {
  const md = execFileSync(BIN, ['check-config', '--list', '--format', 'markdown']).toString();
  const out = new Map();
  for (const line of md.split('\n')) {
    const m = line.match(/^\| `(ALMANAC_\w+)` \| (.*?) \| (.*?) \| (.*?) \| (.*?) \|/);
    if (m) out.set(m[1], { def: m[3] === '(none)' ? null : m[3].replace(/`/g, ''), secret: m[5] === 'yes' });
  }
  assert.ok(out.size > 20, 'check-config --list printed the settings');
  return out;
}

const FIXED = ['ALMANAC_ENV', 'ALMANAC_LISTEN', 'ALMANAC_PROBE_LISTEN', 'ALMANAC_DATABASE_URL',
  'ALMANAC_DATABASE_PASSWORD', 'ALMANAC_REDIS_URL', 'ALMANAC_REDIS_PASSWORD', 'ALMANAC_QDRANT_API_KEY',
  'ALMANAC_JWT_SECRET', 'ALMANAC_HEALTHCHECK_URL'];
// Set per service rather than shared: the image's health check URL (each service's probe
// listener) and the worker's job-sized database deadline.
const PER_SERVICE = { api: { ALMANAC_HEALTHCHECK_URL: 'http://127.0.0.1:8001/health' }, worker: { ALMANAC_HEALTHCHECK_URL: 'http://127.0.0.1:8001/health' }, beat: { ALMANAC_HEALTHCHECK_URL: 'http://127.0.0.1:8001/health' } };
const ENV_OVERLAY = path.join(DOCKER, 'docker-compose.prod.env.yml');

test('the .env template, the compose files and check-config --list agree', () => {
  requireTools({ binary: true });
  const list = settings();
  const prod = loadYaml(PROD);
  const env = prod['x-almanac-env'];
  for (const svc of ['api', 'worker', 'beat', 'migrate']) {
    assert.deepEqual(prod.services[svc].environment, { ...env, ...(PER_SERVICE[svc] || {}) }, `${svc} gets the shared settings`);
  }
  // Every setting reaches the services (a secret through its _FILE), and nothing else
  // named ALMANAC_ does.
  for (const name of list.keys()) {
    assert.ok(name in env || `${name}_FILE` in env || name === 'ALMANAC_HEALTHCHECK_URL', `${name} is passed by docker-compose.prod.yml`);
  }
  for (const name of Object.keys(env)) assert.ok(list.has(name.replace(/_FILE$/, '')), `${name} (compose) is a setting`);
  // Secrets come from files by default, and every file is a declared Compose secret.
  for (const name of ['ALMANAC_DATABASE_PASSWORD', 'ALMANAC_REDIS_PASSWORD', 'ALMANAC_QDRANT_API_KEY', 'ALMANAC_JWT_SECRET']) {
    assert.ok(!(name in env), `${name} is not an environment variable of the services`);
    const secret = String(env[`${name}_FILE`]).replace('/run/secrets/', '');
    assert.ok(prod.secrets[secret]?.file, `${name}_FILE names the declared secret ${secret}`);
    for (const svc of ['api', 'worker', 'beat', 'migrate']) assert.ok(prod.services[svc].secrets.includes(secret), `${svc} mounts ${secret}`);
  }
  // Defaults in the compose file are the binary's own.
  for (const [name, value] of Object.entries(env)) {
    const m = String(value).match(/^\$\{(\w+):-(.*)\}$/);
    if (m && m[1] === name && name !== 'ALMANAC_QDRANT_URL' && name !== 'ALMANAC_TRUST_PROXY') {
      assert.equal(m[2], list.get(name).def, `${name}: compose default = binary default`);
    }
  }
  // Every variable the production file reads is documented in the template.
  const text = fs.readFileSync(PROD, 'utf8').replace(/\$\$/g, '');
  const overlay = fs.readFileSync(ENV_OVERLAY, 'utf8');
  const used = new Set([...(text + overlay).matchAll(/\$\{(\w+)/g)].map((m) => m[1]));
  const tpl = fs.readFileSync(TEMPLATE, 'utf8');
  const documented = new Set([...tpl.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]));
  for (const v of used) assert.ok(documented.has(v), `${v} (read by the compose file) is in .env.prod.template`);
  // ... and every setting is documented there, as a variable or as fixed by compose.
  for (const name of list.keys()) {
    assert.ok(documented.has(name) || (FIXED.includes(name) && tpl.includes(name)), `${name} is documented in the template`);
  }
  for (const v of documented) assert.ok(used.has(v) || list.has(v), `${v} (template) is used by the compose file`);
  // Environment mode: compose refuses to start when a secret variable is missing.
  for (const v of ['POSTGRES_PASSWORD', 'REDIS_PASSWORD', 'QDRANT_API_KEY', 'ALMANAC_JWT_SECRET']) {
    assert.match(overlay, new RegExp(`\\$\\{${v}:\\?[^}]*required`), `${v} uses \${VAR:?message}`);
    assert.match(tpl, new RegExp(`^# ${v}=$`, 'm'), `${v} is an empty, commented placeholder in the template`);
    assert.ok(!text.includes(`\${${v}`), `${v} is not read by the base file (secrets are files)`);
  }
});

test('both compose files validate against the Compose specification', () => {
  requireTools();
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const schema = JSON.parse(fs.readFileSync(SCHEMA, 'utf8'));
  delete schema.$schema; // draft-07 under an https id, which ajv does not know by that name
  const validate = ajv.compile(schema);
  for (const file of [PROD, DEV, ENV_OVERLAY]) {
    if (!fs.existsSync(file)) continue;
    const ok = validate(loadYaml(file));
    assert.ok(ok, `${path.basename(file)}: ${ajv.errorsText(validate.errors)}`);
  }
});

test('production compose: limits, reservations, restart, health checks, logging, hardening', () => {
  requireTools();
  const prod = loadYaml(PROD);
  const published = [];
  for (const [name, s] of Object.entries(prod.services)) {
    assert.ok(s.deploy?.resources?.limits?.memory && s.deploy.resources.limits.cpus, `${name}: limits`);
    assert.ok(s.deploy?.resources?.reservations?.memory, `${name}: reservations`);
    assert.ok(s.restart, `${name}: restart policy`);
    assert.equal(s.logging?.driver, 'json-file', `${name}: json-file logging`);
    assert.ok(s.logging.options['max-size'] && s.logging.options['max-file'], `${name}: log rotation`);
    assert.equal(s.read_only, true, `${name}: read_only`);
    assert.deepEqual(s.cap_drop, ['ALL'], `${name}: cap_drop ALL`);
    assert.ok(s.security_opt.includes('no-new-privileges:true'), `${name}: no-new-privileges`);
    assert.equal(s.init, true, `${name}: init`);
    assert.ok(!/latest/.test(s.image), `${name}: image not latest`);
    assert.ok(!(s.volumes || []).some((v) => String(v).startsWith('.') || String(v).startsWith('/')), `${name}: no bind mounts`);
    if (name !== 'migrate') {
      const h = s.healthcheck;
      // The almanac image has no shell: its exec-form HEALTHCHECK is the test (a compose
      // test would run through /bin/sh under podman-compose 1.0.3).
      const imageTest = ['api', 'worker', 'beat'].includes(name);
      assert.ok((imageTest ? !h?.test : h?.test) && h.interval && h.timeout && h.retries && h.start_period, `${name}: full health check`);
    }
    if (s.ports) published.push(name);
  }
  assert.deepEqual(published, ['frontend'], 'only the frontend publishes a port');
  for (const svc of ['api', 'worker', 'beat']) {
    const d = prod.services[svc].depends_on;
    assert.equal(d.migrate.condition, 'service_completed_successfully');
    for (const dep of ['postgres', 'redis', 'qdrant']) assert.equal(d[dep].condition, 'service_healthy');
  }
  assert.equal(prod.services.frontend.depends_on.api.condition, 'service_healthy');
  assert.equal(prod.networks.backend.internal, true);
  for (const dep of ['postgres', 'redis', 'qdrant']) assert.deepEqual(prod.services[dep].networks, ['backend']);
  // The api's probe timeout covers an uncached /ready (ALMANAC_READY_TIMEOUT_MS + 200 ms).
  assert.match(prod.services.api.healthcheck.timeout, /^[3-9]s$/);
});

test('no secret literals; development credentials are on the production deny-list', () => {
  const k8sDir = path.join(ROOT, 'infrastructure', 'k8s');
  const k8sFiles = fs.readdirSync(k8sDir, { recursive: true }).map((f) => path.join(k8sDir, f)).filter((f) => fs.statSync(f).isFile());
  const prodText = [PROD, TEMPLATE, ...k8sFiles]
    .map((f) => fs.readFileSync(f, 'utf8'))
    .join('\n');
  assert.doesNotMatch(prodText, /almanac-dev|change-me-in-production|sk-dev-master-key/);
  assert.doesNotMatch(prodText, /(PASSWORD|SECRET|API_KEY)\s*[:=]\s*["']?[A-Za-z0-9+/]{12,}/, 'no secret value');
  const dev = fs.readFileSync(DEV, 'utf8');
  const creds = new Set([...dev.matchAll(/(?:PASSWORD|SECRET|POSTGRES_USER)\s*:\s*(\S+)/g)].map((m) => m[1]));
  creds.add(dev.match(/--requirepass", "([^"]+)"/)[1]);
  const config = fs.readFileSync(path.join(ROOT, 'src', 'config.c'), 'utf8');
  const denied = config.slice(config.indexOf('denied_values[]'), config.indexOf('};', config.indexOf('denied_values[]')));
  for (const c of creds) assert.ok(denied.includes(`"${c}"`), `${c} (docker-compose.yml) is on the deny-list in src/config.c`);
});

for (const overlay of ['all-in-one', 'production']) test(`kustomize renders overlays/${overlay}; workloads have probes, non-root, read-only root, resources (tests/k8s checks the rest)`, () => {
  requireTools({ kubectl: true });
  const rendered = execFileSync('kubectl', ['kustomize', path.join(ROOT, 'infrastructure', 'k8s', 'overlays', overlay)]).toString();
  const docs = loadYaml(Buffer.from(rendered), true);
  const kinds = docs.map((d) => `${d.kind}/${d.metadata.name.replace(/-[a-z0-9]{10}$/, '')}`);
  for (const k of ['Deployment/api', 'Deployment/worker', 'Deployment/beat', 'Deployment/frontend', 'Service/api', 'Service/frontend', 'ConfigMap/almanac-config', 'HorizontalPodAutoscaler/api', 'HorizontalPodAutoscaler/worker', 'Job/migrate', 'Ingress/almanac']) {
    assert.ok(kinds.includes(k), `${k} rendered`);
  }
  for (const d of docs.filter((x) => x.kind === 'Service')) {
    assert.equal(d.spec.type || 'ClusterIP', 'ClusterIP', `Service ${d.metadata.name}: inside only (the Ingress is the way in)`);
  }
  assert.ok(!docs.some((d) => d.kind === 'Secret'), 'no Secret with values is applied');
  for (const d of docs.filter((x) => x.kind === 'Deployment')) {
    const pod = d.spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true, `${d.metadata.name}: runAsNonRoot`);
    for (const c of [...(pod.initContainers || []), ...pod.containers]) {
      const where = `${d.metadata.name}/${c.name}`;
      assert.equal(c.securityContext.readOnlyRootFilesystem, true, `${where}: read-only root`);
      assert.equal(c.securityContext.allowPrivilegeEscalation, false, `${where}: no privilege escalation`);
      assert.ok(c.resources.requests.memory && c.resources.limits.memory && c.resources.limits.cpu, `${where}: resources`);
    }
    for (const c of pod.containers) {
      assert.ok(c.livenessProbe?.httpGet && c.readinessProbe?.httpGet, `${d.metadata.name}: liveness and readiness probes`);
      if (/\/almanac(:|@)/.test(c.image)) {
        assert.equal(c.livenessProbe.httpGet.path, '/health', `${d.metadata.name}: liveness on /health`);
        assert.equal(c.readinessProbe.httpGet.path, '/ready', `${d.metadata.name}: readiness on /ready`);
        assert.ok(c.readinessProbe.timeoutSeconds >= 3, `${d.metadata.name}: readiness timeout above the /ready deadline`);
      }
    }
  }
});

// The settings each Kubernetes overlay gives the almanac containers are accepted by the
// binary in production mode (with the Secret's keys as files, as the pods read them).
for (const overlay of ['all-in-one', 'production']) test(`overlays/${overlay}: check-config accepts every almanac container's settings`, () => {
  requireTools({ kubectl: true, binary: true });
  const docs = loadYaml(execFileSync('kubectl', ['kustomize', path.join(ROOT, 'infrastructure', 'k8s', 'overlays', overlay)]), true);
  const secretDir = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-k8s-secrets-'));
  try {
    for (const k of ['ALMANAC_DATABASE_PASSWORD', 'ALMANAC_DATABASE_OWNER_PASSWORD', 'ALMANAC_REDIS_PASSWORD', 'ALMANAC_JWT_SECRET', 'ALMANAC_QDRANT_API_KEY'])
      fs.writeFileSync(path.join(secretDir, k), crypto.randomBytes(32).toString('hex') + '\n');
    let checked = 0;
    for (const d of docs.filter((x) => ['Deployment', 'Job'].includes(x.kind))) {
      for (const c of d.spec.template.spec.containers.filter((x) => /\/almanac(:|@)/.test(x.image))) {
        const env = { PATH: process.env.PATH };
        for (const e of c.envFrom || []) Object.assign(env, docs.find((x) => x.kind === 'ConfigMap' && x.metadata.name === e.configMapRef.name).data);
        for (const e of c.env || []) if (e.value !== undefined) env[e.name] = e.value.replace('/run/secrets/almanac/', `${secretDir}/`);
        const r = spawnSync(BIN, ['check-config'], { env, encoding: 'utf8' });
        assert.equal(r.status, 0, `${d.metadata.name}/${c.name}: ${r.stderr}`);
        checked++;
      }
    }
    assert.equal(checked, 4, 'api, worker, beat and the migration Job');
  } finally {
    fs.rmSync(secretDir, { recursive: true, force: true });
  }
});
