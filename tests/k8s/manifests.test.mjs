/* SPDX-License-Identifier: Apache-2.0 */
// Every overlay of infrastructure/k8s, alone and with every optional component, renders
// with `kubectl kustomize`, validates strictly against the Kubernetes schemas and meets
// the deployment rules (manifests.mjs). Each check is also shown to fail on a manifest
// that breaks its rule, so a check that cannot fail does not pass for a rule.
//
//   tests/k8s/run.sh            (installs this folder's npm packages, then runs this)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { render, parseYaml, schemaErrors, lintErrors, imageProblem, imagePins, OVERLAYS, COMPONENTS, REPO } from './manifests.mjs';

const clone = (x) => structuredClone(x);
const find = (objs, kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);

test('the overlays are production and all-in-one; the components are there', () => {
  assert.deepEqual(OVERLAYS, ['all-in-one', 'production']);
  assert.deepEqual(COMPONENTS, ['backup', 'cert-manager', 'keda-worker', 'llm-key', 'servicemonitor']);
});

for (const overlay of OVERLAYS) {
  for (const comps of [[], ...COMPONENTS.map((c) => [c]), COMPONENTS]) {
    const name = `${overlay}${comps.length ? ` + ${comps.join(' + ')}` : ''}`;
    test(`${name}: renders, validates strictly, meets the rules`, async () => {
      const objs = render(overlay, comps);
      assert.ok(objs.length > 20, `only ${objs.length} objects`);
      assert.deepEqual(await schemaErrors(objs), []);
      assert.deepEqual(lintErrors(objs, imagePins(overlay, comps)), []);
    });
  }
}

test('the components do what they say', () => {
  const keda = render('production', ['keda-worker']);
  assert.ok(find(keda, 'ScaledObject', 'worker'));
  assert.equal(find(keda, 'HorizontalPodAutoscaler', 'worker'), undefined, 'the CPU HPA is replaced');
  const sm = render('production', ['servicemonitor']);
  assert.equal(sm.filter((o) => o.kind === 'ServiceMonitor').length, 2);
  const env = (objs, name) => find(objs, 'Deployment', name).spec.template.spec.containers[0].env.map((e) => e.name);
  const llm = render('all-in-one', ['llm-key']);
  assert.ok(env(llm, 'api').includes('ALMANAC_LLM_API_KEY_FILE'), 'the api reads the LLM key');
  for (const name of ['worker', 'beat']) assert.ok(!env(llm, name).includes('ALMANAC_LLM_API_KEY_FILE'), `${name} does not`);
  assert.ok(!env(render('all-in-one'), 'api').includes('ALMANAC_LLM_API_KEY_FILE'), 'not without the component');
  const prod = render('production');
  assert.equal(find(prod, 'Ingress', 'almanac').metadata.annotations['cert-manager.io/cluster-issuer'], 'letsencrypt');
});

test('the overlays differ where they should: data stores, TLS to managed services', () => {
  const aio = render('all-in-one');
  const prod = render('production');
  assert.deepEqual(aio.filter((o) => o.kind === 'StatefulSet').map((o) => o.metadata.name).sort(), ['postgres', 'qdrant', 'redis']);
  assert.equal(prod.filter((o) => o.kind === 'StatefulSet').length, 0);
  const cfg = (objs) => objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('almanac-config-')).data;
  const url = new URL(cfg(prod).ALMANAC_DATABASE_URL);
  assert.equal(url.searchParams.get('sslmode'), 'verify-full');
  assert.equal(url.searchParams.get('sslrootcert'), '/run/secrets/almanac-ca/ca.crt');
  assert.match(cfg(prod).ALMANAC_QDRANT_URL, /^https:/);
  const redisUrl = new URL(cfg(prod).ALMANAC_REDIS_URL);
  assert.equal(redisUrl.protocol, 'rediss:');
  assert.equal(redisUrl.username, 'almanac', 'an ACL user');
  assert.equal(redisUrl.searchParams.get('cacert'), '/run/secrets/almanac-ca/ca.crt');
  const api = find(prod, 'Deployment', 'api');
  assert.ok(api.spec.template.spec.containers[0].volumeMounts.some((m) => m.mountPath === '/run/secrets/almanac-ca'));
  // Redis in the all-in-one overlay: append-only, noeviction, password from the Secret file.
  const redis = find(aio, 'StatefulSet', 'redis').spec.template.spec.containers[0].args[0];
  assert.match(redis, /--appendonly yes/);
  assert.match(redis, /--maxmemory-policy noeviction/);
  assert.match(redis, /requirepass/);
  assert.doesNotMatch(redis, /--requirepass/, 'the password is never in argv');
});

test("an overlay's image pins reach every image: `kustomize edit set image` in the overlay upgrades", () => {
  for (const overlay of OVERLAYS) {
    const objs = render(overlay, ['backup'], (k) => {
      for (const i of k.get('images').items) i.set('newTag', `${i.get('newTag')}-next`);
    });
    const images = objs.filter((o) => ['Deployment', 'StatefulSet', 'Job', 'CronJob'].includes(o.kind)).flatMap((o) => {
      const t = o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template;
      return [...(t.spec.initContainers || []), ...t.spec.containers].map((c) => c.image);
    });
    assert.ok(images.length >= 6);
    for (const image of images) assert.match(image, /-next$/, `${overlay}: ${image} kept its old tag`);
  }
});

test('a settings change renames the ConfigMap, so the pods that read it roll', () => {
  const objs = render('all-in-one');
  const names = (o) => o.filter((x) => x.kind === 'ConfigMap').map((x) => x.metadata.name).sort();
  const prod = render('production');
  assert.notDeepEqual(names(objs), names(prod), 'merged settings give another hash');
});

// ------------------------------------------------------------ the checks can fail

test('the schema check rejects unknown fields, wrong types and missing required fields', async () => {
  const base = render('all-in-one');
  const broken = (f) => {
    const objs = clone(base);
    f(objs);
    return objs;
  };
  const cases = [
    [(o) => (find(o, 'Deployment', 'api').spec.template.spec.containers[0].livenessProbes = {}), /unknown field/],
    [(o) => (find(o, 'Deployment', 'api').spec.template.spec.containers[0].ports[0].containerPort = 'http'), /integer|number/],
    [(o) => delete find(o, 'Deployment', 'worker').spec.selector, /selector/],
    [(o) => (find(o, 'PodDisruptionBudget', 'api').spec.unhealthyPodEvictionPolicy = 'Sometimes'), /unhealthyPodEvictionPolicy|allowed/],
    [(o) => (find(o, 'NetworkPolicy', 'default-deny').spec.policyType = ['Ingress']), /unknown field/],
  ];
  for (const [f, re] of cases) {
    const errs = await schemaErrors(broken(f));
    assert.ok(errs.some((e) => re.test(e)), `${f}: ${JSON.stringify(errs)}`);
  }
});

test('the rules reject each kind of breach', () => {
  const base = render('all-in-one', ['backup']);
  const pins = imagePins('all-in-one', ['backup']);
  const backup = (o) => find(o, 'CronJob', 'backup').spec.jobTemplate.spec.template;
  const backupEnv = (o, i) => (i === 'vectors' ? backup(o).spec.initContainers[0] : backup(o).spec.containers[0]).env;
  const cases = [
    ['static replicas under an HPA', (o) => (find(o, 'Deployment', 'worker').spec.replicas = 1), /sets replicas/],
    ['api HPA at 1', (o) => (find(o, 'HorizontalPodAutoscaler', 'api').spec.minReplicas = 1), /minReplicas/],
    ['no scale-down behaviour', (o) => delete find(o, 'HorizontalPodAutoscaler', 'frontend').spec.behavior, /scale-down/],
    ['PDB without AlwaysAllow', (o) => delete find(o, 'PodDisruptionBudget', 'worker').spec.unhealthyPodEvictionPolicy, /AlwaysAllow/],
    ['worker without PDB', (o) => o.splice(o.indexOf(find(o, 'PodDisruptionBudget', 'worker')), 1), /worker: 0 PodDisruptionBudgets/],
    ['default ServiceAccount', (o) => delete find(o, 'Deployment', 'beat').spec.template.spec.serviceAccountName, /default ServiceAccount/],
    ['token automount', (o) => (find(o, 'ServiceAccount', 'api').automountServiceAccountToken = true), /automounts/],
    ['no ephemeral-storage limit', (o) => delete find(o, 'StatefulSet', 'redis').spec.template.spec.containers[0].resources.limits['ephemeral-storage'], /limits.ephemeral-storage/],
    ['privilege escalation', (o) => (find(o, 'StatefulSet', 'qdrant').spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = true), /allowPrivilegeEscalation/],
    ['root', (o) => (find(o, 'StatefulSet', 'postgres').spec.template.spec.securityContext.runAsNonRoot = false), /runAsNonRoot/],
    ['unqualified image', (o) => (find(o, 'Deployment', 'api').spec.template.spec.containers[0].image = 'almanac:0.1.0'), /fully qualified/],
    ['bare api name', (o) => (find(o, 'Deployment', 'frontend').spec.template.spec.containers[0].env.find((e) => e.name === 'ALMANAC_API_UPSTREAM').value = 'api:8000'), /fully qualified service name/],
    ['no preStop', (o) => delete find(o, 'Deployment', 'frontend').spec.template.spec.containers[0].lifecycle, /preStop/],
    ['one beat', (o) => (find(o, 'Deployment', 'beat').spec.replicas = 1), /beat/],
    ['short worker grace', (o) => (find(o, 'Deployment', 'worker').spec.template.spec.terminationGracePeriodSeconds = 30), /grace period/],
    ['migrating init container', (o) => (find(o, 'Deployment', 'api').spec.template.spec.initContainers = [clone(find(o, 'Job', 'migrate').spec.template.spec.containers[0])]), /init container/],
    ['migration as the application role', (o) => {
      const m = o.find((x) => x.kind === 'ConfigMap' && x.metadata.name.startsWith('almanac-migrate-'));
      m.data.ALMANAC_DATABASE_URL = o.find((x) => x.kind === 'ConfigMap' && x.metadata.name.startsWith('almanac-config-')).data.ALMANAC_DATABASE_URL;
    }, /application role/],
    ['no default deny', (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'default-deny')), 1), /default-deny/],
    ['api open to every pod', (o) => find(o, 'NetworkPolicy', 'api-ingress').spec.ingress.push({ from: [{ podSelector: {} }] }), /reach the api/],
    ['LoadBalancer', (o) => (find(o, 'Service', 'frontend').spec.type = 'LoadBalancer'), /LoadBalancer/],
    ['Ingress without TLS', (o) => delete find(o, 'Ingress', 'almanac').spec.tls, /TLS/],
    ['static ConfigMap name', (o) => (find(o, 'Deployment', 'api').spec.template.spec.containers[0].envFrom[0].configMapRef.name = 'almanac-config'), /Deployment\/api: ConfigMap almanac-config does not exist in the render/],
    ['a ConfigMap without the hash', (o) => {
      o.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'plain', namespace: 'almanac' }, data: {} });
      find(o, 'Deployment', 'api').spec.template.spec.containers[0].envFrom.push({ configMapRef: { name: 'plain' } });
    }, /Deployment\/api: ConfigMap plain is not a generated one/],
    ['StatefulSet without headless Service', (o) => (find(o, 'Service', 'redis').spec.clusterIP = '10.0.0.9'), /headless/],
    ['a rendered Secret', (o) => o.push({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x' }, data: {} }), /Secret is rendered/],
    ['no topology spread', (o) => delete find(o, 'Deployment', 'api').spec.template.spec.topologySpreadConstraints, /topology/],
    ['almanac pods without the Qdrant key', (o) => {
      const env = find(o, 'Deployment', 'worker').spec.template.spec.containers[0].env;
      env.splice(env.findIndex((e) => e.name === 'ALMANAC_QDRANT_API_KEY_FILE'), 1);
    }, /worker: does not send the Qdrant API key/],
    ['Qdrant without its key', (o) => {
      const c = find(o, 'StatefulSet', 'qdrant').spec.template.spec.containers[0];
      delete c.command;
      delete c.args;
    }, /StatefulSet\/qdrant: Qdrant runs without/],
    ['Qdrant with a literal key', (o) => {
      const c = find(o, 'StatefulSet', 'qdrant').spec.template.spec.containers[0];
      delete c.args;
      c.env.push({ name: 'QDRANT__SERVICE__API_KEY', value: 'abc' });
    }, /StatefulSet\/qdrant: Qdrant runs without/],
    ['an LLM key file outside the Secret', (o) => find(o, 'Deployment', 'api').spec.template.spec.containers[0].env.push({ name: 'ALMANAC_LLM_API_KEY_FILE', value: '/etc/llm-key' }), /ALMANAC_LLM_API_KEY_FILE \/etc\/llm-key is not the Secret's/],
    ['no readiness probe', (o) => delete find(o, 'StatefulSet', 'qdrant').spec.template.spec.containers[0].readinessProbe, /readinessProbe/],
    // What the backup CronJob got wrong before components/backup (the fixture test below).
    ['a ConfigMap by its generator name', (o) => (backup(o).spec.initContainers[0].envFrom[0].configMapRef.name = 'almanac-config'), /CronJob\/backup: ConfigMap almanac-config does not exist in the render/],
    ['a ConfigMap key reference by its generator name', (o) => (backupEnv(o).find((e) => e.name === 'ALMANAC_BACKUP_DATABASE_URL').valueFrom.configMapKeyRef.name = 'almanac-config'), /CronJob\/backup: ConfigMap almanac-config does not exist/],
    ['a ServiceAccount that is not there', (o) => o.splice(o.indexOf(find(o, 'ServiceAccount', 'backup')), 1), /CronJob\/backup: ServiceAccount backup does not exist in the render/],
    ['a Secret nobody creates', (o) => (backupEnv(o).find((e) => e.name === 'PGPASSWORD').valueFrom.secretKeyRef.name = 'almanac-secret'), /Secret almanac-secret does not exist in the render and is none the operator creates/],
    ['a Secret key it does not have', (o) => (backupEnv(o).find((e) => e.name === 'PGPASSWORD').valueFrom.secretKeyRef.key = 'ALMANAC_DB_PASSWORD'), /CronJob\/backup: Secret almanac-secrets has no key ALMANAC_DB_PASSWORD/],
    ['a _FILE of no Secret key', (o) => (backupEnv(o, 'vectors').find((e) => e.name === 'ALMANAC_JWT_SECRET_FILE').value = '/run/secrets/almanac/ALMANAC_JWT'), /container vectors: ALMANAC_JWT_SECRET_FILE names \/run\/secrets\/almanac\/ALMANAC_JWT, no key/],
    ['a volume claim that is not there', (o) => o.splice(o.indexOf(find(o, 'PersistentVolumeClaim', 'almanac-backups')), 1), /PersistentVolumeClaim almanac-backups does not exist/],
    ['a data client without the label', (o) => delete backup(o).metadata.labels['almanac.io/data-client'], /CronJob\/backup: talks to the data stores without the almanac.io\/data-client label/],
    ['a data client no egress lets out', (o) => o.splice(o.indexOf(find(o, 'NetworkPolicy', 'data-clients-egress')), 1), /Deployment\/api: no NetworkPolicy lets it reach PostgreSQL/],
    ['the snapshot without the Qdrant key', (o) => {
      const env = backupEnv(o, 'vectors');
      env.splice(env.findIndex((e) => e.name === 'ALMANAC_QDRANT_API_KEY_FILE'), 1);
    }, /CronJob\/backup container vectors: does not send the Qdrant API key/],
    ['an image the overlay does not rewrite', (o) => (backup(o).spec.initContainers[0].image = 'almanac'), /container vectors: image almanac is not one the overlay pins/],
    ['a literal image beside the pins', (o) => (backup(o).spec.containers[0].image = 'docker.io/library/postgres:17'), /container backup: image docker.io\/library\/postgres:17 is not one the overlay pins/],
    ['no ephemeral-storage request', (o) => delete backup(o).spec.containers[0].resources.requests['ephemeral-storage'], /CronJob\/backup container backup: no requests.ephemeral-storage/],
    ['the default ServiceAccount', (o) => delete backup(o).spec.serviceAccountName, /CronJob\/backup: uses the default ServiceAccount/],
    ['a writable root', (o) => (backup(o).spec.containers[0].securityContext.readOnlyRootFilesystem = false), /CronJob\/backup container backup: root filesystem is writable/],
    // Memory: at least the working set measured (the Compose reservations).
    ['api under its working set', (o) => (find(o, 'Deployment', 'api').spec.template.spec.containers[0].resources.requests.memory = '64Mi'), /Deployment\/api container api: requests.memory 64Mi is below the measured working set the Compose file reserves \(128m\)/],
    ['postgres under its working set', (o) => (find(o, 'StatefulSet', 'postgres').spec.template.spec.containers[0].resources.requests.memory = '256Mi'), /postgres: requests.memory 256Mi is below .* \(768m\)/],
    ['a worker limit without headroom', (o) => (find(o, 'Deployment', 'worker').spec.template.spec.containers[0].resources.limits.memory = '512Mi'), /worker: limits.memory 512Mi is below the Compose limit \(2g\)/],
  ];
  for (const [what, f, re] of cases) {
    const objs = clone(base);
    f(objs);
    const errs = lintErrors(objs, pins);
    assert.ok(errs.some((e) => re.test(e)), `${what}: ${JSON.stringify(errs)}`);
  }
});

test('the scrapes reach the probe listener, and the NetworkPolicies let them', () => {
  const base = render('production', ['servicemonitor']);
  const pins = imagePins('production', ['servicemonitor']);
  const cases = [
    ['api scraped on its public port', (o) => (find(o, 'ServiceMonitor', 'almanac-api').spec.endpoints[0].port = 'http'), /not its probe listener/],
    ['a port the Service does not name', (o) => (find(o, 'ServiceMonitor', 'almanac-probes').spec.endpoints[0].port = 'metrics'), /no port named metrics/],
    ['the worker Service to another port', (o) => (find(o, 'Service', 'worker-metrics').spec.ports[0].targetPort = 9090), /worker on 9090/],
    ['monitoring shut out of the probe ports', (o) => (find(o, 'NetworkPolicy', 'probe-ports-monitoring').spec.ingress[0].ports[0].port = 9090), /no NetworkPolicy lets the monitoring namespace reach Deployment\/api on 8001/],
    ['the probe listener moved', (o) => {
      o.find((x) => x.kind === 'ConfigMap' && x.metadata.name.startsWith('almanac-config-')).data.ALMANAC_PROBE_LISTEN = '0.0.0.0:8002';
    }, /not its probe listener \(8002\)/],
  ];
  for (const [what, f, re] of cases) {
    const objs = clone(base);
    f(objs);
    const errs = lintErrors(objs, pins);
    assert.ok(errs.some((e) => re.test(e)), `${what}: ${JSON.stringify(errs)}`);
  }
});

test('image names: registry, repository, tag or digest', () => {
  assert.equal(imageProblem('docker.io/library/redis:7.2.8-bookworm'), null);
  assert.equal(imageProblem('registry.example.com/almanac/almanac@sha256:' + 'a'.repeat(64)), null);
  assert.equal(imageProblem('localhost:5000/almanac:1'), null);
  assert.match(imageProblem('redis:7'), /fully qualified/);
  assert.match(imageProblem('docker.io/library/redis'), /neither tag nor digest/);
  assert.match(imageProblem('docker.io/library/redis:latest'), /latest/);
});

test('the backup CronJob of before components/backup breaks a rule for each of its defects', () => {
  // As its header told: `kubectl -n almanac apply -f` next to an overlay.
  const old = parseYaml(fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'backup-cronjob.pre-component.yaml'), 'utf8'));
  for (const overlay of OVERLAYS) {
    const objs = [...render(overlay), ...old.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: 'almanac' } }))];
    const errs = lintErrors(objs, imagePins(overlay));
    for (const re of [
      /CronJob\/backup: ConfigMap almanac-config does not exist in the render/,
      /CronJob\/backup: ConfigMap almanac-backup-scripts does not exist in the render/,
      /CronJob\/backup: talks to the data stores without the almanac.io\/data-client label/,
      /CronJob\/backup container vectors: does not send the Qdrant API key/,
      /CronJob\/backup container vectors: image almanac is not one the overlay pins/,
      /CronJob\/backup: uses the default ServiceAccount/,
      /CronJob\/backup container vectors: no requests.ephemeral-storage/,
      /CronJob\/backup container backup: no limits.ephemeral-storage/,
    ])
      assert.ok(errs.some((e) => re.test(e)), `${overlay}: ${re} not in ${JSON.stringify(errs, null, 1)}`);
  }
});

test('components/backup: the scripts of the release, the database of the overlay', () => {
  const scripts = path.join(REPO, 'infrastructure', 'backup');
  for (const overlay of OVERLAYS) {
    const objs = render(overlay, ['backup']);
    const cj = find(objs, 'CronJob', 'backup');
    const ps = cj.spec.jobTemplate.spec.template.spec;
    // The scripts ConfigMap holds the scripts as they are in the tree.
    const cm = find(objs, 'ConfigMap', ps.volumes.find((v) => v.name === 'scripts').configMap.name);
    for (const f of ['almanac-backup.sh', 'lib.sh']) assert.equal(cm.data[f], fs.readFileSync(path.join(scripts, f), 'utf8'), `${overlay}: ${f}`);
    const c = ps.containers[0];
    assert.deepEqual(c.command.slice(0, 2), ['bash', '/scripts/almanac-backup.sh']);
    assert.equal(c.env.find((e) => e.name === 'ALMANAC_BACKUP_MODE').value, 'prepared');
    // pg_dump connects where the api does: the script turns the ConfigMap's URL into
    // libpq's variables, and every file the URL names is mounted in the container.
    const ref = c.env.find((e) => e.name === 'ALMANAC_BACKUP_DATABASE_URL').valueFrom.configMapKeyRef;
    const url = find(objs, 'ConfigMap', ref.name).data[ref.key];
    assert.equal(url, find(objs, 'ConfigMap', podCfg(objs, 'api')).data.ALMANAC_DATABASE_URL, `${overlay}: the api's database`);
    const env = Object.fromEntries(
      execFileSync('bash', ['-c', '. "$0"; env | grep ^PG', path.join(scripts, 'lib.sh')], {
        env: { PATH: process.env.PATH, ALMANAC_BACKUP_MODE: 'local', ALMANAC_BACKUP_DATABASE_URL: url },
        encoding: 'utf8',
      }).trim().split('\n').map((l) => l.split(/=(.*)/s).slice(0, 2)),
    );
    const u = new URL(url);
    assert.deepEqual([env.PGHOST, env.PGPORT, env.PGUSER, env.PGDATABASE], [u.hostname, u.port, u.username, u.pathname.slice(1)]);
    assert.equal(c.env.find((e) => e.name === 'PGPASSWORD').valueFrom.secretKeyRef.key, u.username === 'almanac' ? 'ALMANAC_DATABASE_PASSWORD' : 'ALMANAC_DATABASE_OWNER_PASSWORD');
    for (const x of [ps.initContainers[0], c])
      if (env.PGSSLROOTCERT)
        assert.ok(x.volumeMounts.some((m) => env.PGSSLROOTCERT.startsWith(`${m.mountPath}/`)), `${overlay}: ${x.name} mounts ${env.PGSSLROOTCERT}`);
  }
});

/** The almanac-config ConfigMap a Deployment reads. */
function podCfg(objs, name) {
  return find(objs, 'Deployment', name).spec.template.spec.containers[0].envFrom[0].configMapRef.name;
}

test("docs/kubernetes.md's resource table is what the manifests set", () => {
  const doc = fs.readFileSync(path.join(REPO, 'docs', 'kubernetes.md'), 'utf8');
  const table = /<!-- resources:[^>]*-->([\s\S]*?)<!-- \/resources -->/.exec(doc)?.[1];
  assert.ok(table, 'the table between the resources markers');
  const rows = new Map();
  for (const line of table.split('\n')) {
    const m = /^\| `([a-z-]+)`[^|]* \| ([^|]+) \| ([^|]+) \|/.exec(line);
    if (m) rows.set(m[1], [m[2].trim(), m[3].trim()]);
  }
  const objs = render('all-in-one', ['backup']);
  const containers = objs
    .filter((o) => ['Deployment', 'StatefulSet', 'Job', 'CronJob'].includes(o.kind))
    .flatMap((o) => {
      const t = o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template;
      return [...(t.spec.initContainers || []), ...t.spec.containers];
    });
  assert.deepEqual([...rows.keys()].sort(), containers.map((c) => c.name).sort(), 'one row per container');
  const fmt = (r) => ['cpu', 'memory', 'ephemeral-storage'].map((k) => String(r[k])).join(', ');
  for (const c of containers)
    assert.deepEqual(rows.get(c.name), [fmt(c.resources.requests), fmt(c.resources.limits)], c.name);
});
