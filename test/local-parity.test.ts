import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Template } from 'aws-cdk-lib/assertions';
import { ROOT, template } from './helpers';

// Protects: the local runner (order-local) creates its emulated resources with the same
// settings as the deployed stack. Both read cdk.json's context; this compares what the Rust
// side plans (`order-local plan`) with the synthesized template, value by value.

function localPlan(): any {
  const bin = process.env.ORDER_LOCAL_BIN ?? path.join(ROOT, 'target', 'debug', 'order-local');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: build it first with \`cargo build -p order-local\` (make test does)`);
  }
  const run = spawnSync(bin, ['plan', '--cdk-json', path.join(ROOT, 'cdk.json')], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`order-local plan failed: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

const plan = localPlan();
const t: Template = template();
const all = (type: string): any[] => Object.values(t.findResources(type));
const queueWithRedrive = all('AWS::SQS::Queue').find((q) => q.Properties.RedrivePolicy);
const fn = (service: string) =>
  all('AWS::Lambda::Function').find((f) => f.Properties.Environment.Variables.POWERTOOLS_SERVICE_NAME === service).Properties;
const alarm = (metric: string) => all('AWS::CloudWatch::Alarm').find((a) => a.Properties.MetricName === metric).Properties;

test('order queue: visibility timeout, retention, maxReceiveCount', () => {
  expect({
    visibilityTimeoutSeconds: queueWithRedrive.Properties.VisibilityTimeout,
    messageRetentionSeconds: queueWithRedrive.Properties.MessageRetentionPeriod,
    maxReceiveCount: queueWithRedrive.Properties.RedrivePolicy.maxReceiveCount,
  }).toEqual(plan.orderQueue);
});

test('dead-letter queue retention', () => {
  const dlqId = queueWithRedrive.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
  const dlq = t.findResources('AWS::SQS::Queue')[dlqId].Properties;
  expect({ messageRetentionSeconds: dlq.MessageRetentionPeriod, visibilityTimeoutSeconds: dlq.VisibilityTimeout }).toEqual({
    messageRetentionSeconds: plan.deadLetterQueue.messageRetentionSeconds,
    visibilityTimeoutSeconds: plan.deadLetterQueue.visibilityTimeoutSeconds,
  });
});

test('subscription raw delivery', () => {
  expect(all('AWS::SNS::Subscription')[0].Properties.RawMessageDelivery).toBe(plan.subscriptionRawMessageDelivery);
});

test('event source mapping', () => {
  const esm = all('AWS::Lambda::EventSourceMapping')[0].Properties;
  expect({
    batchSize: esm.BatchSize,
    maximumBatchingWindowSeconds: esm.MaximumBatchingWindowInSeconds,
    maximumConcurrency: esm.ScalingConfig.MaximumConcurrency,
    reportBatchItemFailures: esm.FunctionResponseTypes.includes('ReportBatchItemFailures'),
  }).toEqual(plan.eventSourceMapping);
});

test.each([
  ['order-consumer', 'consumer'],
  ['dlq-alarm', 'dlqAlarmFunction'],
])('%s: memory, timeout and the environment the local runner gives the handler', (service, key) => {
  const props = fn(service);
  const planned = plan[key];
  expect({ memoryMb: props.MemorySize, timeoutSeconds: props.Timeout }).toEqual({
    memoryMb: planned.memoryMb,
    timeoutSeconds: planned.timeoutSeconds,
  });
  for (const [name, value] of Object.entries(planned.environment)) {
    expect([name, props.Environment.Variables[name]]).toEqual([name, value]);
  }
});

test.each([
  ['ApproximateNumberOfMessagesVisible', 'dlqDepthAlarm'],
  ['ApproximateAgeOfOldestMessage', 'queueAgeAlarm'],
])('alarm on %s', (metric, key) => {
  const a = alarm(metric);
  expect({
    namespace: a.Namespace,
    metricName: a.MetricName,
    statistic: a.Statistic,
    periodSeconds: a.Period,
    evaluationPeriods: a.EvaluationPeriods,
    threshold: a.Threshold,
    comparisonOperator: a.ComparisonOperator,
    treatMissingData: a.TreatMissingData,
  }).toEqual(plan[key]);
});
