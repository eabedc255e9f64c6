/* SPDX-License-Identifier: Apache-2.0 */
// Renders Almanac's Kubernetes overlays with `kubectl kustomize` and checks what they
// render: strictly against the Kubernetes API schemas, then against the deployment rules
// of infrastructure/k8s (docs/kubernetes.md). The checks return lists of problems, so the
// tests can show that each one fails on a manifest that breaks its rule.
//
// Schemas, both from npm, nothing fetched at run time:
// - kubernetes-models (and its KEDA and prometheus-operator models for the CRDs): types,
//   formats, enums and required fields, compiled from the Kubernetes OpenAPI;
// - @kubernetes/client-node's generated models: the complete field list of every object,
//   for the strict part (an unknown or misspelled field is an error, as in
//   `kubectl apply --validate=strict`).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments, parseDocument } from 'yaml';
// Only the generated models: the client itself needs a newer Node.
import * as k8s from '@kubernetes/client-node/dist/gen/models/all.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const K8S = path.join(REPO, 'infrastructure', 'k8s');
export const OVERLAYS = fs.readdirSync(path.join(K8S, 'overlays')).sort();
export const COMPONENTS = fs.readdirSync(path.join(K8S, 'components')).sort();

/**
 * `kubectl kustomize` of an overlay as a list of objects; with components, as an operator
 * adds them (`kustomize edit add component`): listed in the overlay's own kustomization,
 * so that its namespace, images and patches apply to what they add. That edit is made on
 * a copy of infrastructure/ (k8s/ and the backup scripts a component generates from),
 * as is edit(document), when given, on that kustomization.yaml (a yaml Document).
 */
export function render(overlay, components = [], edit = null) {
  let dir = path.join(K8S, 'overlays', overlay);
  let tmp = null;
  if (components.length || edit) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'almanac-kustomize-'));
    for (const sub of ['k8s', 'backup'])
      fs.cpSync(path.join(REPO, 'infrastructure', sub), path.join(tmp, sub), { recursive: true });
    dir = path.join(tmp, 'k8s', 'overlays', overlay);
    const file = path.join(dir, 'kustomization.yaml');
    const k = parseDocument(fs.readFileSync(file, 'utf8'));
    if (!k.has('components')) k.set('components', k.createNode([]));
    for (const c of components) k.addIn(['components'], `../../components/${c}`);
    if (edit) edit(k);
    fs.writeFileSync(file, k.toString());
  }
  try {
    const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return parseYaml(out);
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export function parseYaml(text) {
  const docs = parseAllDocuments(text);
  const objs = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`YAML: ${d.errors[0].message}`);
    const o = d.toJS();
    if (o) objs.push(o);
  }
  return objs;
}

const id = (o) => `${o.kind}/${o.metadata?.name}`;

// ------------------------------------------------------------------ schema checks

const modelModules = {
  'keda.sh/v1alpha1': '@kubernetes-models/keda/keda.sh/v1alpha1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

async function kmModel(apiVersion, kind) {
  let mod = modelModules[apiVersion];
  if (!mod) mod = `kubernetes-models/${apiVersion}`; // "v1", "apps/v1", ...
  try {
    return (await import(`${mod}/${kind}`))[kind];
  } catch {
    return null;
  }
}

/** client-node's model class of a built-in kind: V1Deployment, V2HorizontalPodAutoscaler... */
function cnModel(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  return k8s[`${version[0].toUpperCase()}${version.slice(1)}${kind}`] || null;
}

const PRIMITIVE = { string: 'string', number: 'number', boolean: 'boolean', Date: 'string' };

/** Unknown fields of value against client-node's type name; pushes "path: ..." lines. */
function strictWalk(value, type, where, errs) {
  if (value === null || value === undefined || type === 'any' || type === 'object') return;
  if (type === 'IntOrString') {
    if (typeof value !== 'string' && !Number.isInteger(value)) errs.push(`${where}: must be an integer or a string`);
    return;
  }
  if (PRIMITIVE[type]) {
    if (typeof value !== PRIMITIVE[type]) errs.push(`${where}: must be a ${type}`);
    return;
  }
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (!Array.isArray(value)) return errs.push(`${where}: must be a list`);
    value.forEach((v, i) => strictWalk(v, m[1], `${where}[${i}]`, errs));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof value !== 'object' || Array.isArray(value)) return errs.push(`${where}: must be a map`);
    for (const [k, v] of Object.entries(value)) strictWalk(v, m[1], `${where}.${k}`, errs);
    return;
  }
  const cls = k8s[type];
  if (!cls?.getAttributeTypeMap) return errs.push(`${where}: no schema for type ${type}`);
  if (typeof value !== 'object' || Array.isArray(value)) return errs.push(`${where}: must be an object (${type})`);
  const attrs = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value)) {
    if (!attrs.has(k)) errs.push(`${where}.${k}: unknown field (${type})`);
    else strictWalk(v, attrs.get(k), `${where}.${k}`, errs);
  }
}

/** Schema problems of the rendered objects: [] when all are valid. */
export async function schemaErrors(objs) {
  const errs = [];
  for (const o of objs) {
    if (!o.apiVersion || !o.kind) {
      errs.push(`an object without apiVersion/kind: ${JSON.stringify(o).slice(0, 80)}`);
      continue;
    }
    const Model = await kmModel(o.apiVersion, o.kind);
    if (!Model) {
      errs.push(`${id(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (e) {
      errs.push(`${id(o)}: ${e.message}`);
    }
    const cn = cnModel(o.apiVersion, o.kind);
    if (cn) strictWalk(o, cn.name, id(o), errs);
    else if (!modelModules[o.apiVersion]) errs.push(`${id(o)}: no strict schema for ${o.apiVersion} ${o.kind}`);
  }
  return errs;
}

// ------------------------------------------------------------------ deployment rules

const WORKLOADS = ['Deployment', 'StatefulSet', 'Job', 'CronJob'];
const podTemplate = (o) => (o.kind === 'CronJob' ? o.spec.jobTemplate.spec.template : o.spec.template);
const podSpec = (o) => podTemplate(o).spec;
const podLabels = (o) => podTemplate(o).metadata?.labels || {};
const containersOf = (o) => [...(podSpec(o).initContainers || []), ...podSpec(o).containers];
const matches = (selector, labels) =>
  Object.entries(selector?.matchLabels || {}).every(([k, v]) => labels[k] === v) &&
  (selector?.matchExpressions || []).every((e) =>
    e.operator === 'In' ? e.values.includes(labels[e.key]) : e.operator === 'Exists' ? e.key in labels : true,
  );

/** A fully qualified image: registry host, repository, and a tag or a digest (never latest). */
export function imageProblem(image) {
  const [first, ...rest] = image.split('/');
  if (!rest.length || !(first.includes('.') || first.includes(':') || first === 'localhost'))
    return `image ${image} is not fully qualified (no registry host)`;
  const last = image.slice(image.lastIndexOf('/') + 1);
  if (!last.includes(':') && !image.includes('@sha256:')) return `image ${image} has neither tag nor digest`;
  if (/:latest(@|$)/.test(image)) return `image ${image} uses latest`;
  return null;
}

function restrictedProblems(o) {
  const errs = [];
  const ps = podSpec(o);
  const psc = ps.securityContext || {};
  if (psc.runAsNonRoot !== true) errs.push(`${id(o)}: pod securityContext.runAsNonRoot is not true`);
  if (psc.runAsUser === 0) errs.push(`${id(o)}: runs as uid 0`);
  if (psc.seccompProfile?.type !== 'RuntimeDefault') errs.push(`${id(o)}: no RuntimeDefault seccomp profile`);
  for (const f of ['hostNetwork', 'hostPID', 'hostIPC']) if (ps[f]) errs.push(`${id(o)}: ${f}`);
  for (const v of ps.volumes || []) if (v.hostPath) errs.push(`${id(o)}: hostPath volume ${v.name}`);
  for (const c of containersOf(o)) {
    const sc = c.securityContext || {};
    const where = `${id(o)} container ${c.name}`;
    if (sc.allowPrivilegeEscalation !== false) errs.push(`${where}: allowPrivilegeEscalation is not false`);
    if (sc.privileged) errs.push(`${where}: privileged`);
    if (!(sc.capabilities?.drop || []).includes('ALL')) errs.push(`${where}: does not drop ALL capabilities`);
    if ((sc.capabilities?.add || []).some((a) => a !== 'NET_BIND_SERVICE')) errs.push(`${where}: adds capabilities`);
    if (sc.readOnlyRootFilesystem !== true) errs.push(`${where}: root filesystem is writable`);
    if (sc.runAsUser === 0) errs.push(`${where}: runs as uid 0`);
  }
  return errs;
}

function resourceProblems(o) {
  const errs = [];
  for (const c of containersOf(o)) {
    for (const kind of ['requests', 'limits'])
      for (const r of ['cpu', 'memory', 'ephemeral-storage'])
        if (!c.resources?.[kind]?.[r]) errs.push(`${id(o)} container ${c.name}: no ${kind}.${r}`);
    const p = imageProblem(c.image || '');
    if (p) errs.push(`${id(o)} container ${c.name}: ${p}`);
  }
  return errs;
}

/**
 * The deployment rules; [] when the rendered overlay meets them all. pins: the images
 * the overlay pins (imagePins of the overlay and components rendered).
 */
export function lintErrors(objs, pins = null) {
  const errs = [];
  const of = (kind) => objs.filter((o) => o.kind === kind);
  const byName = (kind, name) => objs.find((o) => o.kind === kind && o.metadata.name === name);
  const workloads = objs.filter((o) => WORKLOADS.includes(o.kind));
  const longRunning = workloads.filter((o) => o.kind !== 'Job' && o.kind !== 'CronJob');

  const ns = of('Namespace');
  if (ns.length !== 1 || ns[0].metadata.labels?.['pod-security.kubernetes.io/enforce'] !== 'restricted')
    errs.push('the namespace does not enforce the restricted Pod Security Standard');
  if (of('Secret').length) errs.push('a Secret is rendered: secrets are created from files, not from the manifests');

  for (const o of workloads) {
    errs.push(...restrictedProblems(o), ...resourceProblems(o));
    const ps = podSpec(o);
    const sa = ps.serviceAccountName;
    if (!sa || sa === 'default') errs.push(`${id(o)}: uses the default ServiceAccount`);
    else if (!byName('ServiceAccount', sa)) errs.push(`${id(o)}: ServiceAccount ${sa} does not exist in the render`);
    else if (byName('ServiceAccount', sa).automountServiceAccountToken !== false)
      errs.push(`${id(o)}: ServiceAccount ${sa} automounts its token`);
    if (ps.automountServiceAccountToken !== false) errs.push(`${id(o)}: the pod automounts a token`);
    for (const c of ps.initContainers || [])
      if ((c.args || []).includes('migrate')) errs.push(`${id(o)}: migrates in an init container`);
    for (const v of ps.volumes || [])
      if (v.secret && v.secret.optional !== false)
        errs.push(`${id(o)}: Secret volume ${v.name} without optional: false`);
    // Generated ConfigMaps (name-hash): a change rolls the pods.
    for (const name of refsOf(o).configMaps)
      if (!byName('ConfigMap', name)) errs.push(`${id(o)}: ConfigMap ${name} does not exist in the render`);
      else if (!/-[a-z0-9]{10}$/.test(name)) errs.push(`${id(o)}: ConfigMap ${name} is not a generated one of this render`);
    errs.push(...secretRefProblems(o, byName), ...dataClientProblems(o, objs), ...imagePinProblems(o, pins));
    for (const claim of refsOf(o).claims)
      if (!byName('PersistentVolumeClaim', claim)) errs.push(`${id(o)}: PersistentVolumeClaim ${claim} does not exist in the render`);
  }
  errs.push(...memoryFloorProblems(workloads));

  for (const o of longRunning) {
    const ps = podSpec(o);
    for (const c of ps.containers)
      for (const p of ['livenessProbe', 'readinessProbe'])
        if (!c[p]) errs.push(`${id(o)} container ${c.name}: no ${p}`);
    const pdbs = of('PodDisruptionBudget').filter((p) => matches(p.spec.selector, podLabels(o)));
    if (pdbs.length !== 1) errs.push(`${id(o)}: ${pdbs.length} PodDisruptionBudgets select it (want 1)`);
    for (const p of pdbs)
      if (p.spec.unhealthyPodEvictionPolicy !== 'AlwaysAllow')
        errs.push(`PodDisruptionBudget/${p.metadata.name}: unhealthyPodEvictionPolicy is not AlwaysAllow`);
    if (o.kind === 'Deployment' && !(ps.topologySpreadConstraints || []).length)
      errs.push(`${id(o)}: no topology spread constraints`);
    const ingress = of('NetworkPolicy').filter(
      (n) => matches(n.spec.podSelector, podLabels(o)) && (n.spec.policyTypes || []).includes('Ingress'),
    );
    if (!ingress.length) errs.push(`${id(o)}: no NetworkPolicy selects it for ingress`);
  }

  // Autoscaled Deployments carry no replicas; api and frontend keep two, scale down slowly.
  const hpaTargets = new Map();
  for (const h of of('HorizontalPodAutoscaler')) hpaTargets.set(h.spec.scaleTargetRef.name, h);
  for (const s of of('ScaledObject')) hpaTargets.set(s.spec.scaleTargetRef.name, s);
  for (const d of of('Deployment')) {
    const h = hpaTargets.get(d.metadata.name);
    if (h && d.spec.replicas !== undefined) errs.push(`${id(d)}: sets replicas although ${id(h)} scales it`);
  }
  for (const name of ['api', 'frontend', 'worker'])
    if (!hpaTargets.has(name)) errs.push(`Deployment/${name}: no autoscaler`);
  if (of('HorizontalPodAutoscaler').filter((h) => h.spec.scaleTargetRef.name === 'worker').length +
      of('ScaledObject').length > 1)
    errs.push('Deployment/worker: scaled by both an HPA and KEDA');
  for (const name of ['api', 'frontend']) {
    const h = of('HorizontalPodAutoscaler').find((x) => x.spec.scaleTargetRef.name === name);
    if (h && !(h.spec.minReplicas >= 2)) errs.push(`${id(h)}: minReplicas under 2`);
    if (h && !h.spec.behavior?.scaleDown) errs.push(`${id(h)}: no scale-down behaviour`);
  }

  // The beat: leader and hot standby. The worker: grace period covers the job deadline.
  const beat = byName('Deployment', 'beat');
  if (!beat || beat.spec.replicas !== 2 || beat.spec.strategy?.type === 'Recreate')
    errs.push('Deployment/beat: not two replicas rolling');
  const worker = byName('Deployment', 'worker');
  const cfg = of('ConfigMap').find((c) => c.metadata.name.startsWith('almanac-config-'));
  if (worker && cfg) {
    const jobS = Number(cfg.data.ALMANAC_JOB_TIMEOUT_MS || 300000) / 1000;
    const env = Object.fromEntries(podSpec(worker).containers[0].env.map((e) => [e.name, e.value]));
    const drainS = Number(env.ALMANAC_SHUTDOWN_TIMEOUT_MS ?? cfg.data.ALMANAC_SHUTDOWN_TIMEOUT_MS) / 1000;
    if (drainS < jobS) errs.push(`Deployment/worker: drains ${drainS} s, less than the ${jobS} s job deadline`);
    if (podSpec(worker).terminationGracePeriodSeconds < drainS + Number(cfg.data.ALMANAC_SHUTDOWN_DELAY_MS || 0) / 1000)
      errs.push('Deployment/worker: grace period shorter than its shutdown delay plus drain');
  }

  // The frontend: the api by a fully qualified name, preStop drain.
  const fe = byName('Deployment', 'frontend');
  if (fe) {
    const c = podSpec(fe).containers[0];
    const env = Object.fromEntries((c.env || []).map((e) => [e.name, e.value]));
    if (!/^api\.\$\(POD_NAMESPACE\)\.svc\.|^api\.[a-z0-9-]+\.svc\./.test(env.ALMANAC_API_UPSTREAM || ''))
      errs.push(`Deployment/frontend: ALMANAC_API_UPSTREAM ${env.ALMANAC_API_UPSTREAM} is not a fully qualified service name`);
    if ((c.env || []).find((e) => e.name === 'POD_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath !== 'metadata.namespace')
      errs.push('Deployment/frontend: POD_NAMESPACE is not the pod\'s namespace');
    if (!c.lifecycle?.preStop) errs.push('Deployment/frontend: no preStop');
  }

  // Migrations: one Job, as the owner role.
  const jobs = of('Job').filter((j) => podSpec(j).containers.some((c) => (c.args || []).includes('migrate')));
  if (jobs.length !== 1) errs.push(`${jobs.length} migration Jobs (want 1)`);
  for (const j of jobs) {
    const refs = podSpec(j).containers[0].envFrom.map((e) => e.configMapRef?.name);
    const mig = refs.map((n) => byName('ConfigMap', n)).find((c) => c?.metadata.name.startsWith('almanac-migrate-'));
    if (!mig || refs.indexOf(mig.metadata.name) !== refs.length - 1)
      errs.push(`${id(j)}: does not take its database URL from almanac-migrate (last envFrom)`);
    else if (cfg && mig.data.ALMANAC_DATABASE_URL === cfg.data.ALMANAC_DATABASE_URL)
      errs.push(`${id(j)}: migrates with the application role's URL`);
  }

  // Network: default deny, the api reachable from the frontend and monitoring only.
  const deny = of('NetworkPolicy').find(
    (n) => Object.keys(n.spec.podSelector || {}).length === 0 && !n.spec.ingress && !n.spec.egress &&
      ['Ingress', 'Egress'].every((t) => (n.spec.policyTypes || []).includes(t)),
  );
  if (!deny) errs.push('no default-deny NetworkPolicy');
  const apiLabels = { 'app.kubernetes.io/name': 'api' };
  for (const n of of('NetworkPolicy').filter((x) => matches(x.spec.podSelector, apiLabels) && x.spec.ingress))
    for (const rule of n.spec.ingress)
      for (const peer of rule.from || [{}]) {
        const ok =
          (peer.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'frontend' && !peer.namespaceSelector) ||
          (peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring' && !peer.podSelector);
        if (!ok) errs.push(`NetworkPolicy/${n.metadata.name}: lets ${JSON.stringify(peer)} reach the api`);
      }

  // The way in: an Ingress with TLS, no LoadBalancer Service.
  const ing = of('Ingress');
  if (!ing.length || ing.some((i) => !(i.spec.tls || []).length)) errs.push('no Ingress with TLS');
  for (const s of of('Service')) if (s.spec.type === 'LoadBalancer') errs.push(`${id(s)}: a LoadBalancer Service`);

  errs.push(...qdrantKeyProblems(objs), ...metricsProblems(objs, cfg));

  // Data stores in the cluster: headless Services under the names the ConfigMap uses.
  for (const st of of('StatefulSet')) {
    const svc = byName('Service', st.spec.serviceName);
    if (!svc || svc.spec.clusterIP !== 'None') errs.push(`${id(st)}: no headless Service ${st.spec.serviceName}`);
    if (!(st.spec.volumeClaimTemplates || []).length) errs.push(`${id(st)}: no volume claim`);
  }
  if (of('StatefulSet').length && cfg) {
    for (const key of ['ALMANAC_DATABASE_URL', 'ALMANAC_REDIS_URL', 'ALMANAC_QDRANT_URL']) {
      const host = new URL(cfg.data[key]).hostname;
      if (!of('StatefulSet').some((s) => s.spec.serviceName === host)) errs.push(`${key} names ${host}, not a StatefulSet's Service`);
    }
  }
  return errs;
}

// ------------------------------------------------------------------ references

/** The ConfigMaps, Secrets (name and key) and claims a workload's pods use. */
function refsOf(o) {
  const ps = podSpec(o);
  const configMaps = [];
  const secrets = [];
  const claims = [];
  for (const c of containersOf(o)) {
    for (const e of c.envFrom || []) {
      if (e.configMapRef) configMaps.push(e.configMapRef.name);
      if (e.secretRef) secrets.push({ name: e.secretRef.name });
    }
    for (const e of c.env || []) {
      if (e.valueFrom?.configMapKeyRef) configMaps.push(e.valueFrom.configMapKeyRef.name);
      if (e.valueFrom?.secretKeyRef) secrets.push(e.valueFrom.secretKeyRef);
    }
  }
  for (const v of ps.volumes || []) {
    if (v.configMap) configMaps.push(v.configMap.name);
    if (v.secret) secrets.push(...(v.secret.items || [{}]).map((i) => ({ name: v.secret.secretName, key: i.key })));
    if (v.persistentVolumeClaim) claims.push(v.persistentVolumeClaim.claimName);
    for (const src of v.projected?.sources || []) {
      if (src.configMap) configMaps.push(src.configMap.name);
      if (src.secret) secrets.push(...(src.secret.items || [{}]).map((i) => ({ name: src.secret.name, key: i.key })));
    }
  }
  return { configMaps: [...new Set(configMaps)], secrets, claims };
}

/**
 * The Secrets no kustomization renders, which the operator creates (docs/kubernetes.md),
 * with their keys: almanac-secrets' are those of base/secret.template.yaml, plus the
 * optional keys of components/llm-key and of an embeddings endpoint.
 */
export const OPERATOR_SECRETS = (() => {
  const template = parseYaml(fs.readFileSync(path.join(K8S, 'base', 'secret.template.yaml'), 'utf8'))[0];
  return new Map([
    [template.metadata.name, [...Object.keys(template.stringData), 'ALMANAC_LLM_API_KEY', 'ALMANAC_EMBEDDINGS_API_KEY']],
    ['almanac-ca', ['ca.crt']],
    ['almanac-tls', ['tls.crt', 'tls.key']],
  ]);
})();

/** Every Secret a workload uses is rendered or one the operator creates, by a key it has. */
function secretRefProblems(o, byName) {
  const errs = [];
  const ps = podSpec(o);
  for (const { name, key } of refsOf(o).secrets) {
    if (byName('Secret', name)) continue;
    const keys = OPERATOR_SECRETS.get(name);
    if (!keys) errs.push(`${id(o)}: Secret ${name} does not exist in the render and is none the operator creates`);
    else if (key && !keys.includes(key)) errs.push(`${id(o)}: Secret ${name} has no key ${key}`);
  }
  // ALMANAC_*_FILE pointing into the mounted almanac-secrets: a key it has.
  for (const c of containersOf(o))
    for (const m of c.volumeMounts || []) {
      const v = (ps.volumes || []).find((x) => x.name === m.name);
      const keys = OPERATOR_SECRETS.get(v?.secret?.secretName);
      if (!keys || v.secret.items) continue;
      for (const e of c.env || [])
        if (/_FILE$/.test(e.name) && e.value?.startsWith(`${m.mountPath}/`) && !keys.includes(e.value.slice(m.mountPath.length + 1)))
          errs.push(`${id(o)} container ${c.name}: ${e.name} names ${e.value}, no key of Secret ${v.secret.secretName}`);
    }
  return errs;
}

const DATA_CLIENT = 'almanac.io/data-client';
const DATA_URLS = ['ALMANAC_DATABASE_URL', 'ALMANAC_REDIS_URL', 'ALMANAC_QDRANT_URL'];

/**
 * A pod that talks to the data stores (it reads their addresses from a ConfigMap, or
 * runs the PostgreSQL tools: PGHOST, PGPASSWORD) carries the data-client label that
 * their NetworkPolicies select, and an egress policy lets it reach PostgreSQL.
 */
function dataClientProblems(o, objs) {
  const cm = (name) => objs.find((x) => x.kind === 'ConfigMap' && x.metadata.name === name);
  const talks = containersOf(o).some(
    (c) =>
      (c.envFrom || []).some((e) => e.configMapRef && DATA_URLS.some((k) => k in (cm(e.configMapRef.name)?.data || {}))) ||
      (c.env || []).some((e) => DATA_URLS.includes(e.valueFrom?.configMapKeyRef?.key) || /^PG(HOST|PASSWORD|PASSFILE)$/.test(e.name)),
  );
  if (!talks) return [];
  const labels = podLabels(o);
  if (labels[DATA_CLIENT] !== 'true')
    return [`${id(o)}: talks to the data stores without the ${DATA_CLIENT} label their NetworkPolicies select`];
  const egress = objs.filter(
    (n) => n.kind === 'NetworkPolicy' && (n.spec.policyTypes || []).includes('Egress') && matches(n.spec.podSelector, labels),
  );
  if (!egress.some((n) => (n.spec.egress || []).some((r) => !r.ports || r.ports.some((p) => p.port === 5432))))
    return [`${id(o)}: no NetworkPolicy lets it reach PostgreSQL (5432)`];
  return [];
}

/**
 * The images an overlay pins (`images:` of its kustomization.yaml, and of the
 * components added), as kustomize writes them: name:tag, name@digest.
 */
export function imagePins(overlay, components = []) {
  const pins = new Set();
  for (const dir of [path.join(K8S, 'overlays', overlay), ...components.map((c) => path.join(K8S, 'components', c))]) {
    const k = parseYaml(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'))[0];
    for (const i of k.images || []) {
      const name = i.newName || i.name;
      if (i.digest) pins.add(`${name}@${i.digest}`).add(`${name}:${i.newTag}@${i.digest}`);
      else pins.add(i.newTag ? `${name}:${i.newTag}` : name);
    }
  }
  return pins;
}

/** Every image is one the overlay pins: kustomize rewrote it, so `kustomize edit set image` reaches it. */
function imagePinProblems(o, pins) {
  if (!pins) return [`${id(o)}: no image pins given to check its images against`];
  return containersOf(o)
    .filter((c) => !pins.has(c.image))
    .map((c) => `${id(o)} container ${c.name}: image ${c.image} is not one the overlay pins (images:), so kustomize did not rewrite it`);
}

const BYTES = { '': 1, k: 1e3, M: 1e6, G: 1e9, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
/** A Kubernetes quantity (64Mi, 1Gi, 500M) in bytes, or NaN. */
export function k8sBytes(q) {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G)?$/.exec(String(q));
  return m ? Number(m[1]) * BYTES[m[2] || ''] : NaN;
}
/** A Compose memory size (768m, 2g: powers of 1024) in bytes, or NaN. */
function composeBytes(q) {
  const m = /^(\d+(?:\.\d+)?)([bkmg])?$/i.exec(String(q));
  return m ? Number(m[1]) * 1024 ** ' kmg'.indexOf((m[2] || ' ').toLowerCase().replace('b', ' ')) : NaN;
}

/**
 * The memory floors: the Compose file's reservations are the working sets measured
 * under load (bench/deploy-resources.sh, docs/deployment-runbook.md), its limits the
 * headroom above them. A container named after a Compose service requests at least that
 * reservation and may use at least that limit.
 */
export const COMPOSE_MEMORY = (() => {
  const file = path.join(REPO, 'infrastructure', 'docker', 'docker-compose.prod.yml');
  const compose = parseYaml(fs.readFileSync(file, 'utf8'))[0];
  return new Map(
    Object.entries(compose.services).map(([name, svc]) => [
      name,
      { reservation: svc.deploy.resources.reservations.memory, limit: svc.deploy.resources.limits.memory },
    ]),
  );
})();

function memoryFloorProblems(workloads) {
  const errs = [];
  for (const o of workloads)
    for (const c of containersOf(o)) {
      const floor = COMPOSE_MEMORY.get(c.name);
      if (!floor) continue;
      const req = c.resources?.requests?.memory;
      const lim = c.resources?.limits?.memory;
      if (!(k8sBytes(req) >= composeBytes(floor.reservation)))
        errs.push(`${id(o)} container ${c.name}: requests.memory ${req} is below the measured working set the Compose file reserves (${floor.reservation})`);
      if (!(k8sBytes(lim) >= composeBytes(floor.limit)))
        errs.push(`${id(o)} container ${c.name}: limits.memory ${lim} is below the Compose limit (${floor.limit})`);
    }
  return errs;
}

const QKEY = 'ALMANAC_QDRANT_API_KEY';
const SECRET = 'almanac-secrets';

/** The file path at which container c of pod spec ps sees key of the Secret, or null. */
function secretFilePath(ps, c, key) {
  for (const m of c.volumeMounts || []) {
    const v = (ps.volumes || []).find((x) => x.name === m.name);
    if (v?.secret?.secretName !== SECRET) continue;
    const items = v.secret.items;
    if (!items) return `${m.mountPath}/${key}`;
    const it = items.find((i) => i.key === key);
    if (it) return `${m.mountPath}/${it.path}`;
  }
  return null;
}

/**
 * Qdrant gets an API key in every overlay: every container of the almanac image (api,
 * worker, beat, migrate, the backup's snapshot) reads the Secret's key through ALMANAC_QDRANT_API_KEY_FILE, and a Qdrant of the overlay
 * requires that same key (QDRANT__SERVICE__API_KEY from the Secret, never a literal).
 */
function qdrantKeyProblems(objs) {
  const errs = [];
  // The almanac image, by its repository's last name (almanac, REGISTRY/almanac:TAG@...).
  const isAlmanac = (image) => /(^|\/)almanac(:[^/@]*)?(@sha256:[0-9a-f]+)?$/.test(image || '');
  const runs = objs
    .filter((o) => WORKLOADS.includes(o.kind))
    .flatMap((o) => containersOf(o).filter((c) => isAlmanac(c.image)).map((c) => [o, c]));
  for (const [o, c] of runs) {
    const ps = podSpec(o);
    const who = c.name === o.metadata.name ? id(o) : `${id(o)} container ${c.name}`;
    const env = (c.env || []).find((e) => e.name === `${QKEY}_FILE`);
    const file = secretFilePath(ps, c, QKEY);
    if (!env) errs.push(`${who}: does not send the Qdrant API key (no ${QKEY}_FILE)`);
    else if (!file || env.value !== file) errs.push(`${who}: ${QKEY}_FILE ${env.value} is not the Secret's ${QKEY} as mounted (${file})`);
    // The optional keys (components/llm-key, an overlay's embeddings key): the Secret's key
    // of that name, as mounted.
    for (const e of c.env || []) {
      const m = /^(ALMANAC_(?:LLM|EMBEDDINGS)_API_KEY)_FILE$/.exec(e.name);
      if (!m) continue;
      const f = secretFilePath(ps, c, m[1]);
      if (e.value !== f) errs.push(`${who}: ${e.name} ${e.value} is not the Secret's ${m[1]} as mounted (${f})`);
    }
  }
  for (const st of objs.filter((o) => o.kind === 'StatefulSet' && o.metadata.name === 'qdrant')) {
    const ps = podSpec(st);
    const c = ps.containers[0];
    const env = (c.env || []).find((e) => e.name === 'QDRANT__SERVICE__API_KEY');
    const ref = env?.valueFrom?.secretKeyRef;
    const file = secretFilePath(ps, c, QKEY);
    const script = [...(c.command || []), ...(c.args || [])].join('\n');
    const fromEnv = ref?.name === SECRET && ref?.key === QKEY && ref?.optional !== true;
    const fromFile = !env && file && script.includes(file) && /export QDRANT__SERVICE__API_KEY=/.test(script);
    if (!fromEnv && !fromFile) errs.push(`${id(st)}: Qdrant runs without the Secret's ${QKEY} as its QDRANT__SERVICE__API_KEY`);
  }
  return errs;
}

/** The port number a Service port's targetPort names on the pods of workload o, or null. */
function containerPortOf(o, targetPort) {
  if (Number.isInteger(targetPort)) return targetPort;
  for (const c of podSpec(o).containers) for (const p of c.ports || []) if (p.name === targetPort) return p.containerPort;
  return null;
}

/**
 * Every ServiceMonitor endpoint scrapes a named Service port that leads to the probe
 * listener (ALMANAC_PROBE_LISTEN) of the pods behind it, and a NetworkPolicy lets the
 * monitoring namespace reach that port on those pods.
 */
function metricsProblems(objs, cfg) {
  const errs = [];
  const probePort = cfg?.data?.ALMANAC_PROBE_LISTEN ? Number(cfg.data.ALMANAC_PROBE_LISTEN.split(':').pop()) : null;
  const workloads = objs.filter((o) => o.kind === 'Deployment');
  const policies = objs.filter((n) => n.kind === 'NetworkPolicy' && (n.spec.policyTypes || []).includes('Ingress'));
  const monitoringMay = (labels, port) =>
    policies.some((n) => matches(n.spec.podSelector, labels) && (n.spec.ingress || []).some((r) =>
      (r.from || []).some((f) => f.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring' && !f.podSelector) &&
      (!r.ports || r.ports.some((p) => p.port === port))));
  for (const sm of objs.filter((o) => o.kind === 'ServiceMonitor')) {
    const svcs = objs.filter((s) => s.kind === 'Service' && matches(sm.spec.selector, s.metadata.labels || {}));
    if (!svcs.length) errs.push(`ServiceMonitor/${sm.metadata.name}: selects no Service`);
    for (const ep of sm.spec.endpoints || [])
      for (const svc of svcs) {
        const sp = (svc.spec.ports || []).find((p) => p.name === ep.port);
        if (!sp) {
          errs.push(`ServiceMonitor/${sm.metadata.name}: ${id(svc)} has no port named ${ep.port}`);
          continue;
        }
        const pods = workloads.filter((w) => matches({ matchLabels: svc.spec.selector }, podLabels(w)));
        if (!pods.length) errs.push(`ServiceMonitor/${sm.metadata.name}: ${id(svc)} selects no pods`);
        for (const w of pods) {
          const port = containerPortOf(w, sp.targetPort ?? sp.port);
          if (port === null || port !== probePort)
            errs.push(`ServiceMonitor/${sm.metadata.name}: ${id(svc)} port ${ep.port} reaches ${id(w)} on ${port}, not its probe listener (${probePort})`);
          else if (!monitoringMay(podLabels(w), port))
            errs.push(`ServiceMonitor/${sm.metadata.name}: no NetworkPolicy lets the monitoring namespace reach ${id(w)} on ${port}`);
        }
      }
  }
  return errs;
}
