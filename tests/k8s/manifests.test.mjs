/* SPDX-License-Identifier: Apache-2.0 */
// Every overlay of infrastructure/k8s, alone and with every optional component, renders
// with `kubectl kustomize`, validates strictly against the Kubernetes schemas and meets
// the deployment rules (manifests.mjs). Each check is also shown to fail on a manifest
// that breaks its rule, so a check that cannot fail does not pass for a rule.
//
//   tests/k8s/run.sh            (installs this folder's npm packages, then runs this)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render, schemaErrors, lintErrors, imageProblem, OVERLAYS, COMPONENTS } from './manifests.mjs';

const clone = (x) => structuredClone(x);
const find = (objs, kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);

test('the overlays are production and all-in-one; the components are there', () => {
  assert.deepEqual(OVERLAYS, ['all-in-one', 'production']);
  assert.deepEqual(COMPONENTS, ['cert-manager', 'keda-worker', 'llm-key', 'servicemonitor']);
});

for (const overlay of OVERLAYS) {
  for (const comps of [[], ...COMPONENTS.map((c) => [c]), COMPONENTS]) {
    const name = `${overlay}${comps.length ? ` + ${comps.join(' + ')}` : ''}`;
    test(`${name}: renders, validates strictly, meets the rules`, async () => {
      const objs = render(overlay, comps);
      assert.ok(objs.length > 20, `only ${objs.length} objects`);
      assert.deepEqual(await schemaErrors(objs), []);
      assert.deepEqual(lintErrors(objs), []);
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
  const base = render('all-in-one');
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
    ['static ConfigMap name', (o) => (find(o, 'Deployment', 'api').spec.template.spec.containers[0].envFrom[0].configMapRef.name = 'almanac-config'), /generated/],
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
  ];
  for (const [what, f, re] of cases) {
    const objs = clone(base);
    f(objs);
    const errs = lintErrors(objs);
    assert.ok(errs.some((e) => re.test(e)), `${what}: ${JSON.stringify(errs)}`);
  }
});

test('the scrapes reach the probe listener, and the NetworkPolicies let them', () => {
  const base = render('production', ['servicemonitor']);
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
    const errs = lintErrors(objs);
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
