// The Helm chart deploy/helm/wrinklefree: `helm lint --strict` and `helm template` are clean with the
// defaults and with every optional part on, and every rendered object is a valid Kubernetes object:
//   - the schema checks of kubernetes-models (types, formats, required fields), run on each object;
//   - unknown fields refused: each object is type-checked by TypeScript as an object literal of its
//     kubernetes-models interface (KEDA's and prometheus-operator's for their kinds; the
//     InferencePool's v1 API, which no package has, is written below from its reference), where any
//     field the API does not have is an excess-property error.
// And what the chart promises: maxUnavailable 0, probes on /health and /livez, the grace period from
// the drain, CPU request = threads, the picker's metric flags set to our names.
// Skipped, saying so, where helm is missing (deploy/get-helm.sh puts it in .tools/bin; .ci/run runs it).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import ts from 'typescript';
import { ROOT } from './podman.js';

const CHART = join(ROOT, 'deploy', 'helm', 'wrinklefree');
const localHelm = join(ROOT, '.tools', 'bin', 'helm');
const helmBin = existsSync(localHelm) ? localHelm : spawnSync('sh', ['-c', 'command -v helm']).stdout?.toString().trim() || null;
const skip = helmBin ? false : 'helm not found (run deploy/get-helm.sh, which .ci/run does)';
if (skip) console.log(`# skipped: ${skip}`);

const SHA = 'ab'.repeat(32);
/** Every optional part on (KEDA; the HPA in the second set, as both together are refused). */
const ALL_ON: Record<string, string> = {
  'model.source': 'download',
  'model.file': 'model.gguf',
  'model.download.url': 'https://models.example/model.gguf',
  'model.download.sha256': SHA,
  'apiKey.enabled': 'true',
  'apiKey.value': 'sk-1',
  'autoscaling.keda.enabled': 'true',
  'serviceMonitor.enabled': 'true',
  'inferencePool.enabled': 'true',
  'server.metricsVllm': 'true',
  'server.ctxSize': '4096',
  'preStop.action': 'exec',
};
const ALL_ON_HPA: Record<string, string> = {
  ...ALL_ON,
  'autoscaling.keda.enabled': 'false',
  'autoscaling.hpa.enabled': 'true',
  'model.source': 'pvc',
  'model.pvc.claimName': 'models',
  'apiKey.value': '',
  'apiKey.existingSecret': 'my-key',
};

function helm(args: string[]): { code: number; out: string } {
  const r = spawnSync(helmBin!, args, { encoding: 'utf8' });
  return { code: r.status ?? 1, out: (r.stdout ?? '') + (r.stderr ?? '') };
}
/** --set-string keeps "true" a string; booleans and numbers need --set */
const setTyped = (values: Record<string, string>) => Object.entries(values).flatMap(([k, v]) => [/^(true|false|\d+)$/.test(v) ? '--set' : '--set-string', `${k}=${v}`]);

function render(values: Record<string, string>): any[] {
  const r = helm(['template', 'rel', CHART, '--namespace', 'ai', ...setTyped(values)]);
  assert.equal(r.code, 0, r.out);
  return parseAllDocuments(r.out).map((d) => d.toJS()).filter((o) => o);
}

// the interface of each kind, from kubernetes-models (and the InferencePool's, written below)
const TYPES: Record<string, { module: string; name: string }> = {
  'apps/v1/Deployment': { module: 'kubernetes-models/apps/v1/Deployment', name: 'IDeployment' },
  'v1/Service': { module: 'kubernetes-models/v1/Service', name: 'IService' },
  'v1/Secret': { module: 'kubernetes-models/v1/Secret', name: 'ISecret' },
  'v1/ServiceAccount': { module: 'kubernetes-models/v1/ServiceAccount', name: 'IServiceAccount' },
  'policy/v1/PodDisruptionBudget': { module: 'kubernetes-models/policy/v1/PodDisruptionBudget', name: 'IPodDisruptionBudget' },
  'autoscaling/v2/HorizontalPodAutoscaler': { module: 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler', name: 'IHorizontalPodAutoscaler' },
  'rbac.authorization.k8s.io/v1/Role': { module: 'kubernetes-models/rbac.authorization.k8s.io/v1/Role', name: 'IRole' },
  'rbac.authorization.k8s.io/v1/RoleBinding': { module: 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding', name: 'IRoleBinding' },
  'keda.sh/v1alpha1/ScaledObject': { module: '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject', name: 'IScaledObject' },
  'monitoring.coreos.com/v1/ServiceMonitor': { module: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor', name: 'IServiceMonitor' },
};

// inference.networking.k8s.io/v1 InferencePool, from the Gateway API Inference Extension's API reference
const INFERENCE_POOL_TYPES = `
import type { IIoK8sApimachineryPkgApisMetaV1ObjectMeta as ObjectMeta } from '@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta';
interface InferencePoolPort { number: number }
interface IInferencePool {
  apiVersion: 'inference.networking.k8s.io/v1';
  kind: 'InferencePool';
  metadata?: ObjectMeta;
  spec: {
    selector: { matchLabels: Record<string, string> };
    targetPorts: [InferencePoolPort];
    endpointPickerRef: { group?: string; kind?: string; name: string; port?: InferencePoolPort; failureMode?: 'FailOpen' | 'FailClose' };
  };
}
`;

const keyOf = (o: any) => `${o.apiVersion}/${o.kind}`;

/** TypeScript's verdict on the objects as literals of their interfaces: the error messages, [] if clean. */
function typeCheck(objects: any[]): string[] {
  const dir = join(ROOT, 'dist', `chart-check-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const lines: string[] = [INFERENCE_POOL_TYPES];
  const used = new Set<string>();
  objects.forEach((o, i) => {
    const key = keyOf(o);
    if (key === 'inference.networking.k8s.io/v1/InferencePool') {
      lines.push(`export const o${i}: IInferencePool = ${JSON.stringify(o)};`);
      return;
    }
    const t = TYPES[key];
    if (!t) throw new Error(`no schema for ${key}: add it to TYPES`);
    if (!used.has(key)) lines.push(`import type { ${t.name} as T${used.size} } from '${t.module}';`);
    used.add(key);
    lines.push(`export const o${i}: T${[...used].indexOf(key)} = ${JSON.stringify(o)};`);
  });
  const file = join(dir, 'objects.mts');
  writeFileSync(file, lines.join('\n'));
  try {
    const program = ts.createProgram([file], {
      strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [], skipLibCheck: true,
    });
    return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** kubernetes-models' own schema check of each object (formats, patterns, required fields). */
async function schemaCheck(objects: any[]): Promise<void> {
  for (const o of objects) {
    const key = keyOf(o);
    if (key === 'inference.networking.k8s.io/v1/InferencePool') continue;
    const t = TYPES[key]!;
    const mod = await import(t.module);
    const Model = mod[t.name.slice(1)];
    assert.ok(Model, `${t.module} exports no ${t.name.slice(1)}`);
    assert.doesNotThrow(() => new Model(o).validate(), `${key} ${o.metadata?.name}`);
  }
}

before(() => {
  if (skip) return;
  // the chart's own lint, strict: warnings fail
  for (const values of [{}, ALL_ON, ALL_ON_HPA]) {
    const r = helm(['lint', '--strict', CHART, ...setTyped(values)]);
    assert.equal(r.code, 0, r.out);
    assert.doesNotMatch(r.out, /\[(WARNING|ERROR)\]/, r.out);
  }
});

test('defaults: a Deployment (maxUnavailable 0, probes, grace from the drain, CPU = threads), a Service and a PDB, all valid', { skip }, async () => {
  const objs = render({});
  assert.deepEqual(objs.map(keyOf).sort(), ['apps/v1/Deployment', 'policy/v1/PodDisruptionBudget', 'v1/Service']);
  assert.deepEqual(typeCheck(objs), []);
  await schemaCheck(objs);
  const dep = objs.find((o) => o.kind === 'Deployment');
  assert.equal(dep.spec.strategy.rollingUpdate.maxUnavailable, 0);
  const pod = dep.spec.template.spec;
  const c = pod.containers[0];
  assert.equal(c.readinessProbe.httpGet.path, '/health');
  assert.equal(c.livenessProbe.httpGet.path, '/livez');
  assert.equal(c.startupProbe.httpGet.path, '/health');
  assert.equal(c.startupProbe.failureThreshold * c.startupProbe.periodSeconds, 300);
  assert.equal(c.lifecycle.preStop.sleep.seconds, 10);
  assert.equal(pod.terminationGracePeriodSeconds, 10 + 30 + 5);
  const arg = (flag: string) => c.args[c.args.indexOf(flag) + 1];
  assert.equal(arg('--threads'), '2');
  assert.equal(arg('--drain-timeout'), '30');
  assert.equal(c.resources.requests.cpu, '2');
  assert.equal(c.securityContext.readOnlyRootFilesystem, true);
  assert.equal(pod.securityContext.runAsUser, 10001);
  assert.ok(!c.args.includes('--model-path'), 'the demo model needs no path');
});

test('every option on (KEDA, ServiceMonitor, InferencePool + picker, download init container, API key Secret): all valid', { skip }, async () => {
  const objs = render(ALL_ON);
  const kinds = objs.map(keyOf).sort();
  for (const k of ['keda.sh/v1alpha1/ScaledObject', 'monitoring.coreos.com/v1/ServiceMonitor', 'inference.networking.k8s.io/v1/InferencePool', 'v1/Secret', 'rbac.authorization.k8s.io/v1/Role']) assert.ok(kinds.includes(k), k);
  assert.deepEqual(typeCheck(objs), []);
  await schemaCheck(objs);
  const dep = objs.find((o) => o.kind === 'Deployment' && !o.metadata.name.endsWith('-epp'));
  const init = dep.spec.template.spec.initContainers[0];
  assert.deepEqual(init.command, ['node', '/app/bin/wf.js', 'download', 'https://models.example/model.gguf', '-o', '/models/model.gguf', '--sha256', SHA]);
  const c = dep.spec.template.spec.containers[0];
  assert.ok(c.args.includes('--metrics-vllm'));
  assert.equal(c.args[c.args.indexOf('--model-path') + 1], '/models/model.gguf');
  assert.equal(c.env[0].name, 'WF_API_KEY');
  assert.ok(!('replicas' in dep.spec), 'the autoscaler owns the replica count');
  const so = objs.find((o) => o.kind === 'ScaledObject');
  assert.equal(so.spec.triggers[0].metadata.query, 'sum(wf_requests_queued{namespace="ai",pod=~"rel-wrinklefree-.*"})');
  const epp = objs.find((o) => o.kind === 'Deployment' && o.metadata.name.endsWith('-epp')).spec.template.spec.containers[0];
  const flag = (f: string) => epp.args[epp.args.indexOf(f) + 1];
  assert.equal(flag('--total-queued-requests-metric'), 'wf_requests_queued');
  assert.equal(flag('--total-running-requests-metric'), 'wf_requests_processing');
  assert.equal(flag('--kv-cache-usage-percentage-metric'), 'wf_kv_cache_usage_ratio');
  const pool = objs.find((o) => o.kind === 'InferencePool');
  assert.deepEqual(pool.spec.selector.matchLabels, dep.spec.selector.matchLabels);
  assert.equal(objs.find((o) => o.kind === 'ServiceMonitor').spec.endpoints[0].authorization.credentials.name, 'rel-wrinklefree-api-key');

  const hpaObjs = render(ALL_ON_HPA);
  assert.deepEqual(typeCheck(hpaObjs), []);
  await schemaCheck(hpaObjs);
  const hpa = hpaObjs.find((o) => o.kind === 'HorizontalPodAutoscaler');
  assert.equal(hpa.spec.metrics[0].pods.metric.name, 'wf_requests_queued');
  assert.ok(!hpaObjs.some((o) => o.kind === 'Secret'), 'an existing Secret is used, not made');
});

test('the checks can fail: an unknown field, a wrong type and bad values are refused', { skip }, async () => {
  const objs = render({});
  const dep = structuredClone(objs.find((o) => o.kind === 'Deployment'));
  dep.spec.template.spec.containers[0].readinessProbe.httpGett = { path: '/health' };
  assert.match(typeCheck([dep]).join('\n'), /httpGett/);
  const svc = structuredClone(objs.find((o) => o.kind === 'Service'));
  svc.spec.ports[0].port = 'eighty';
  assert.notDeepEqual(typeCheck([svc]), []);
  const pool = { apiVersion: 'inference.networking.k8s.io/v1', kind: 'InferencePool', spec: { selector: { matchLabels: { a: 'b' } }, targetPortNumber: 8000, endpointPickerRef: { name: 'x' } } };
  assert.match(typeCheck([pool]).join('\n'), /targetPortNumber/);
  // the chart refuses contradictory or incomplete values with a message
  for (const [values, message] of [
    [{ 'model.source': 'download' }, /model.download.url/],
    [{ 'model.source': 'pvc' }, /model.pvc.claimName/],
    [{ 'model.source': 's3' }, /model.source must be demo, pvc or download/],
    [{ 'autoscaling.hpa.enabled': 'true', 'autoscaling.keda.enabled': 'true' }, /not both/],
    [{ 'apiKey.enabled': 'true' }, /apiKey.existingSecret or apiKey.value/],
  ] as [Record<string, string>, RegExp][]) {
    const r = helm(['template', 'rel', CHART, ...setTyped(values)]);
    assert.notEqual(r.code, 0, JSON.stringify(values));
    assert.match(r.out, message);
  }
});
