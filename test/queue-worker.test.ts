import { Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import { QueueWorker } from '../infra/constructs/queue-worker';
import { CARGO_MANIFEST } from '../infra/pipeline-stack';
import { testApp } from './helpers';

// Protects: a stage is one construct. Built alone, with a filter policy, it brings its queue,
// DLQ, function, mapping, subscription and alarms, with the secure defaults, and nothing else.
const settings = {
  memoryMb: 512, timeoutSeconds: 20, batchSize: 5, batchingWindowSeconds: 2, maxConcurrency: 3,
  recordConcurrency: 4, maxReceiveCount: 4, queueAgeAlarmSeconds: 120,
};

function stage(retainDeadLetters?: boolean): Template {
  const app = testApp({ 'aws:cdk:bundling-stacks': [] });
  const stack = new Stack(app, 'Test');
  const topic = new sns.Topic(stack, 'Events');
  new QueueWorker(stack, 'Stage', {
    manifestPath: CARGO_MANIFEST,
    binaryName: 'order-consumer',
    description: 'a stage under test',
    settings,
    key: new kms.Key(stack, 'Key'),
    logRetention: 7,
    retainDeadLetters,
    subscription: { topic, filterPolicy: { eventType: sns.SubscriptionFilter.stringFilter({ allowlist: ['OrderAccepted'] }) } },
  });
  return Template.fromStack(stack);
}

test('a stage: queue + DLQ with redrive, derived visibility timeout, mapping, subscription with its filter, and alarms', () => {
  const t = stage();
  t.resourceCountIs('AWS::SQS::Queue', 3);
  t.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 6 * 20 + 2, RedrivePolicy: Match.objectLike({ maxReceiveCount: 4 }) });
  t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
    BatchSize: 5, MaximumBatchingWindowInSeconds: 2, FunctionResponseTypes: ['ReportBatchItemFailures'], ScalingConfig: { MaximumConcurrency: 3 },
  });
  t.hasResourceProperties('AWS::SNS::Subscription', {
    RawMessageDelivery: true, FilterPolicy: { eventType: ['OrderAccepted'] }, RedrivePolicy: Match.anyValue(),
  });
  t.hasResourceProperties('AWS::Lambda::Function', {
    MemorySize: 512, Timeout: 20,
    Environment: { Variables: Match.objectLike({ MAX_RECEIVE_COUNT: '4', RECORD_CONCURRENCY: '4', START_MARGIN_MS: '3000' }) },
  });
  const metrics = Object.values(t.findResources('AWS::CloudWatch::Alarm'))
    .map((a: any) => a.Properties.MetricName ?? a.Properties.Metrics.find((m: any) => m.Expression).Expression)
    .sort();
  expect(metrics).toEqual(['ApproximateAgeOfOldestMessage', 'Errors', 'visible + inflight', 'visible + inflight']);
});

test('dead letters are retained by default, and destroyed only when asked', () => {
  const policies = (t: Template) =>
    Object.values(t.findResources('AWS::SQS::Queue')).filter((q: any) => !q.Properties.RedrivePolicy).map((q: any) => q.DeletionPolicy);
  expect(policies(stage())).toEqual(['Retain', 'Retain']);
  expect(policies(stage(false))).toEqual(['Delete', 'Delete']);
});
