import { Match, Template } from 'aws-cdk-lib/assertions';
import { Validations } from 'aws-cdk-lib';
import * as fs from 'fs';
import * as path from 'path';
import { FEATURES_METADATA } from '../infra/constructs/rust-lambda';
import { featuresOf, namesOfKind, workQueueNames } from '../infra/config';
import { constructId } from '../infra/pipeline-stack';
import { Registry } from '../infra/registry';
import { cdkJsonContext, ROOT, template, synthApp } from './helpers';

/** Every function, as the Rust registry names them: "every function has X" tests iterate over these. */
const registry = Registry.load();
const functionNames = registry.functions.map((f) => f.name);
/** The functions with a work queue (and DLQ, subscription, alarms) of their own, from the stage table. */
const workers = workQueueNames();
/** A function's block in cdk.json. */
const blockOf = (name: string): Record<string, number> => (cdkJsonContext().functions as any)[name];

const t: Template = template();
const resources = (type: string) => t.findResources(type);
const only = (type: string) => {
  const found = Object.values(resources(type));
  if (found.length !== 1) throw new Error(`expected one ${type}, found ${found.length}`);
  return found[0];
};
const ref = (type: string, pick: (r: any) => boolean = () => true): string => {
  const match = Object.entries(resources(type)).find(([, r]) => pick(r));
  if (!match) throw new Error(`no ${type} matches`);
  return match[0];
};
const orderQueueId = ref('AWS::SQS::Queue', (r) => r.Properties.RedrivePolicy !== undefined);
const deadLetterQueueId: string =
  resources('AWS::SQS::Queue')[orderQueueId].Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
const consumerId = ref('AWS::Lambda::Function', (r) => r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'order-consumer');
const dlqAlarmFnId = ref('AWS::Lambda::Function', (r) => r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'dlq-alarm');
const fnIdOf = (binary: string) => ref('AWS::Lambda::Function', (r) => r.Metadata?.['OrderPipeline:Binary'] === binary);
/** The queue whose event source mapping feeds the function `binary`. */
const queueIdOf = (binary: string): string => {
  const mapping = Object.values(resources('AWS::Lambda::EventSourceMapping')).find((m: any) => m.Properties.FunctionName.Ref === fnIdOf(binary)) as any;
  if (!mapping) throw new Error(`no event source mapping feeds ${binary}`);
  return mapping.Properties.EventSourceArn['Fn::GetAtt'][0];
};
const opsTopicId = ref('AWS::SNS::Topic', (r) => r.Properties.TracingConfig === undefined);
const orderTopicId = ref('AWS::SNS::Topic', (r) => r.Properties.TracingConfig === 'Active');

describe('snapshot', () => {
  // Protects: any change to the template shows up in review. Asset hashes are masked so a code
  // change alone does not churn it; the assertions below guard what matters even if someone
  // re-records the snapshot.
  test('the synthesized template matches the recorded snapshot', () => {
    const masked = JSON.parse(JSON.stringify(t.toJSON()).replace(/[0-9a-f]{64}/g, 'ASSET_HASH'));
    expect(masked).toMatchSnapshot();
  });
});

describe('messaging', () => {
  test('order queue redrives to the DLQ after maxReceiveCount (3) receives', () => {
    t.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: { 'Fn::GetAtt': [deadLetterQueueId, 'Arn'] }, maxReceiveCount: 3 },
    });
  });

  test('visibility timeout is derived: 6 x consumer timeout + batching window', () => {
    const props = resources('AWS::SQS::Queue')[orderQueueId].Properties;
    expect(props.VisibilityTimeout).toBe(6 * 10 + 1);
    const overridden = template({ 'functions.order-consumer.timeoutSeconds': 20, 'functions.order-consumer.batchingWindowSeconds': 5 });
    overridden.hasResourceProperties('AWS::SQS::Queue', { VisibilityTimeout: 125, RedrivePolicy: Match.anyValue() });
    overridden.hasResourceProperties('AWS::Lambda::Function', { Timeout: 20, Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: 'order-consumer' }) } });
  });

  test('maxReceiveCount comes from context', () => {
    template({ 'functions.order-consumer.maxReceiveCount': 5 }).hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 5 }),
    });
  });

  test('dead-letter and failure queues keep messages 14 days, work queues 4 days', () => {
    const queues = Object.entries(resources('AWS::SQS::Queue'));
    for (const [id, q] of queues) {
      const expected = q.Properties.RedrivePolicy ? 4 * 86400 : 14 * 86400;
      expect([id, q.Properties.MessageRetentionPeriod]).toEqual([id, expected]);
    }
    // Every function with a work queue: its queue, DLQ and subscription DLQ; and each stream's on-failure queue.
    expect(queues).toHaveLength(3 * workers.length + namesOfKind('stream').length);
  });

  // Protects: no queue-fed function loses its DLQ, its redrive after its own maxReceiveCount, or its subscription's redrive queue.
  test.each(workers)('every function with a work queue has a DLQ after its maxReceiveCount and a subscription with its own redrive queue: %s', (name) => {
    const queueId = queueIdOf(name);
    const queue = resources('AWS::SQS::Queue')[queueId];
    expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBe(blockOf(name).maxReceiveCount);
    expect(queue.Properties.VisibilityTimeout).toBe(6 * blockOf(name).timeoutSeconds + blockOf(name).batchingWindowSeconds);
    const dlqId = queue.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    expect(resources('AWS::SQS::Queue')[dlqId].Properties.MessageRetentionPeriod).toBe(14 * 86400);
    const subscription = Object.values(resources('AWS::SNS::Subscription')).find(
      (s: any) => JSON.stringify(s.Properties.Endpoint) === JSON.stringify({ 'Fn::GetAtt': [queueId, 'Arn'] }),
    ) as any;
    expect(subscription.Properties.RawMessageDelivery).toBe(true);
    const redrive = subscription.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    expect([redrive === dlqId, resources('AWS::SQS::Queue')[redrive] !== undefined]).toEqual([false, true]);
  });

  test('every queue and topic is encrypted with a customer-managed key, which rotates', () => {
    const keys = Object.entries(resources('AWS::KMS::Key'));
    expect(keys).toHaveLength(3);
    for (const [, k] of keys) expect(k.Properties.EnableKeyRotation).toBe(true);
    const keyOf = (description: string) => keys.find(([, k]) => k.Properties.Description.includes(description))![0];
    for (const [id, r] of Object.entries(resources('AWS::SQS::Queue'))) {
      expect([id, r.Properties.KmsMasterKeyId]).toEqual([id, { 'Fn::GetAtt': [keyOf('queues'), 'Arn'] }]);
    }
    for (const [id, r] of Object.entries(resources('AWS::SNS::Topic'))) {
      const key = id === opsTopicId ? keyOf('ops topic') : keyOf('topics');
      expect([id, r.Properties.KmsMasterKeyId]).toEqual([id, { 'Fn::GetAtt': [key, 'Arn'] }]);
    }
  });

  // Protects: alarms reach a person. The ops topic's policy replaces SNS's default one, so
  // without an explicit allow CloudWatch's alarm actions are refused; the allow and the key's
  // grant are limited to this account and this stack's alarms.
  test("CloudWatch may publish to the ops topic and use its key, for this stack's alarms only", () => {
    const policy = Object.values(resources('AWS::SNS::TopicPolicy')).find((p: any) =>
      p.Properties.Topics.some((t: any) => t.Ref === opsTopicId),
    ) as any;
    const allow = policy.Properties.PolicyDocument.Statement.find((st: any) => st.Effect === 'Allow');
    expect(allow).toMatchObject({ Principal: { Service: 'cloudwatch.amazonaws.com' }, Action: 'sns:Publish', Resource: { Ref: opsTopicId } });
    const alarmArn = JSON.stringify(allow.Condition.ArnLike['aws:SourceArn']);
    expect(alarmArn).toContain(':alarm:');
    expect(alarmArn).toContain('OrderPipeline-dev-*');
    expect(allow.Condition.StringEquals['aws:SourceAccount']).toEqual({ Ref: 'AWS::AccountId' });
    const keys = resources('AWS::KMS::Key');
    const cloudwatchOn = (description: string) => {
      const key = Object.values(keys).find((k: any) => k.Properties.Description.includes(description)) as any;
      return key.Properties.KeyPolicy.Statement.filter((st: any) => st.Principal?.Service === 'cloudwatch.amazonaws.com');
    };
    const [grant] = cloudwatchOn('ops topic');
    expect(grant.Condition).toEqual(allow.Condition);
    expect(cloudwatchOn('topics')).toEqual([]);
    expect(cloudwatchOn('queues')).toEqual([]);
  });

  test("SNS may use the queue key only for deliveries from the pipeline's own topics", () => {
    const queueKey = Object.values(resources('AWS::KMS::Key')).find((k: any) => k.Properties.Description.includes('queues')) as any;
    const sns = queueKey.Properties.KeyPolicy.Statement.filter((s: any) => s.Principal?.Service === 'sns.amazonaws.com');
    const sources = sns.map((s: any) => s.Condition.ArnEquals['aws:SourceArn'].Ref).sort();
    // The topics that deliver to a queue (the ops and customer-notifications topics deliver to none).
    const topics = [
      ...new Set(
        Object.values(resources('AWS::SNS::Subscription'))
          .filter((s: any) => s.Properties.Protocol === 'sqs')
          .map((s: any) => s.Properties.TopicArn.Ref),
      ),
    ].sort();
    expect(sources).toEqual(topics);
  });

  test('dead-letter queues are retained outside dev (they may hold the only copy of a message), destroyed in dev', () => {
    const deletionPolicies = (tmpl: Template) =>
      Object.entries(tmpl.findResources('AWS::SQS::Queue'))
        .filter(([, q]) => q.Properties.RedrivePolicy === undefined)
        .map(([, q]) => q.DeletionPolicy);
    expect(deletionPolicies(t).every((p) => p === 'Delete')).toBe(true);
    // Each work queue's DLQ and subscription DLQ, and each stream's on-failure queue.
    const deadLetterQueues = 2 * workers.length + namesOfKind('stream').length;
    expect(deletionPolicies(template({ stage: 'prod' }))).toEqual(Array(deadLetterQueues).fill('Retain'));
  });

  test('every queue and topic denies requests without TLS', () => {
    for (const [type, policyType, prop] of [
      ['AWS::SQS::Queue', 'AWS::SQS::QueuePolicy', 'Queues'],
      ['AWS::SNS::Topic', 'AWS::SNS::TopicPolicy', 'Topics'],
    ] as const) {
      for (const id of Object.keys(resources(type))) {
        const policy = Object.values(resources(policyType)).find((p: any) =>
          JSON.stringify(p.Properties[prop]).includes(`"${id}"`),
        ) as any;
        expect(policy).toBeDefined();
        const denies = policy.Properties.PolicyDocument.Statement.filter(
          (s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
        );
        expect([id, denies.length]).toEqual([id, 1]);
      }
    }
  });

  test('order topic: active tracing', () => {
    t.hasResourceProperties('AWS::SNS::Topic', { TracingConfig: 'Active' });
  });

  // Protects: orders come from their publishers only: order-api and the producer roles cdk.json
  // names (orderPublisherRoleArns), no other principal of this account or any other.
  describe('who may publish orders', () => {
    const producers = ['arn:aws:iam::111111111111:role/order-producer', 'arn:aws:iam::222222222222:role/partners/bulk-orders'];
    const orderTopicPolicy = (tmpl: Template) => {
      const topicId = ref('AWS::SNS::Topic', (r) => r.Properties.TracingConfig === 'Active');
      const policies = Object.values(tmpl.findResources('AWS::SNS::TopicPolicy')).filter((p: any) =>
        p.Properties.Topics.some((tp: any) => tp.Ref === topicId),
      ) as any[];
      expect(policies).toHaveLength(1);
      return { topicId, statements: policies[0].Properties.PolicyDocument.Statement as any[] };
    };
    /** The statements on Publish, but the TLS one (every topic's, tested above). */
    const publishStatements = (statements: any[]) =>
      statements.filter((s) => s.Action === 'sns:Publish' && s.Condition?.Bool?.['aws:SecureTransport'] === undefined);
    const apiRole = () => {
      const role = resources('AWS::Lambda::Function')[fnIdOf('order-api')].Properties.Role['Fn::GetAtt'][0];
      return { 'Fn::GetAtt': [role, 'Arn'] };
    };
    const topicKeyProducerGrants = (tmpl: Template) => {
      const key = Object.values(tmpl.findResources('AWS::KMS::Key')).find((k: any) => k.Properties.Description.includes('topics')) as any;
      return key.Properties.KeyPolicy.Statement.filter((s: any) => s.Sid === 'NamedProducerRolesPublishToTopics');
    };

    test('with no roles named, Publish is denied to every principal but the order-api role (of any account)', () => {
      expect(cdkJsonContext().orderPublisherRoleArns).toEqual([]);
      const { topicId, statements } = orderTopicPolicy(t);
      expect(publishStatements(statements)).toEqual([
        {
          Sid: 'PublishByTheOrderPublishersOnly',
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Action: 'sns:Publish',
          Resource: { Ref: topicId },
          Condition: { ArnNotEquals: { 'aws:PrincipalArn': [apiRole()] } },
        },
      ]);
      expect(topicKeyProducerGrants(t)).toEqual([]);
    });

    test('with two roles named, both may publish (topic policy and key, for cross-account roles), everyone else is denied', () => {
      const named = template({ orderPublisherRoleArns: producers });
      const { topicId, statements } = orderTopicPolicy(named);
      const publish = publishStatements(statements);
      expect(publish).toHaveLength(2);
      const deny = publish.find((s) => s.Effect === 'Deny');
      expect(deny).toEqual({
        Sid: 'PublishByTheOrderPublishersOnly',
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 'sns:Publish',
        Resource: { Ref: topicId },
        Condition: { ArnNotEquals: { 'aws:PrincipalArn': [apiRole(), ...producers] } },
      });
      expect(publish.find((s) => s.Effect === 'Allow')).toEqual({
        Sid: 'PublishByTheNamedProducerRoles',
        Effect: 'Allow',
        Principal: { AWS: producers },
        Action: 'sns:Publish',
        Resource: { Ref: topicId },
      });
      // The other topics stay closed to them.
      for (const [id, policy] of Object.entries(named.findResources('AWS::SNS::TopicPolicy'))) {
        if (policy.Properties.Topics.some((tp: any) => tp.Ref === topicId)) continue;
        expect([id, JSON.stringify(policy)]).not.toEqual([id, expect.stringContaining('111111111111')]);
      }
      const [grant] = topicKeyProducerGrants(named);
      expect(grant).toMatchObject({ Effect: 'Allow', Principal: { AWS: producers }, Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: '*' });
      expect(JSON.stringify(grant.Condition.StringLike['kms:EncryptionContext:aws:sns:topicArn'])).toContain(':sns:');
    });
  });

  test('the intake subscription uses raw delivery and has its own redrive queue', () => {
    const sub = Object.values(resources('AWS::SNS::Subscription')).find((s: any) => s.Properties.TopicArn.Ref === orderTopicId) as any;
    expect(sub.Properties.RawMessageDelivery).toBe(true);
    expect(sub.Properties.Endpoint).toEqual({ 'Fn::GetAtt': [orderQueueId, 'Arn'] });
    const redrive = sub.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    expect(redrive).not.toBe(deadLetterQueueId);
    expect(Object.keys(resources('AWS::SQS::Queue'))).toContain(redrive);
  });
});

describe('functions', () => {
  test.each(functionNames)('every function: arm64, provided.al2023, JSON logs, X-Ray, its own memory and timeout: %s', (name) => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Architectures: ['arm64'],
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      MemorySize: blockOf(name).memoryMb,
      Timeout: blockOf(name).timeoutSeconds,
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON' }),
      Environment: { Variables: Match.objectLike({ POWERTOOLS_SERVICE_NAME: name }) },
    });
  });

  test('log groups have bounded retention', () => {
    const groups = Object.values(resources('AWS::Logs::LogGroup'));
    // One per function, and the API's access logs.
    expect(groups).toHaveLength(functionNames.length + 1);
    for (const g of groups) expect(g.Properties.RetentionInDays).toBe(30);
  });

  // Protects: no function logs to a log group of CloudWatch's making (unbounded, never deleted) or shares one.
  test.each(functionNames)('every function logs to a log group of its own with bounded retention: %s', (name) => {
    const group = resources('AWS::Lambda::Function')[fnIdOf(name)].Properties.LoggingConfig.LogGroup.Ref;
    expect(resources('AWS::Logs::LogGroup')[group].Properties.RetentionInDays).toBe(30);
    const others = functionNames.filter((n) => n !== name).map((n) => resources('AWS::Lambda::Function')[fnIdOf(n)].Properties.LoggingConfig.LogGroup.Ref);
    expect(others).not.toContain(group);
  });

  test('event source mapping: batch size, window, ReportBatchItemFailures, maximum concurrency', () => {
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [orderQueueId, 'Arn'] },
      FunctionName: { Ref: consumerId },
      BatchSize: 10,
      MaximumBatchingWindowInSeconds: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 5 },
    });
  });

  test('functions get their settings through the environment', () => {
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'order-consumer',
          MAX_RECEIVE_COUNT: '3',
          RECORD_CONCURRENCY: '10',
          // A quarter of the 10 s timeout, at most 3 s: the worker starts no record after it.
          START_MARGIN_MS: '2500',
          TABLE_NAME: Match.anyValue(),
        }),
      },
    });
    t.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          POWERTOOLS_SERVICE_NAME: 'dlq-alarm',
          DLQ_URL: { Ref: deadLetterQueueId },
          OPS_TOPIC_ARN: { Ref: opsTopicId },
          DLQ_SNAPSHOT_MAX: '100',
        }),
      },
    });
  });
});

describe('least privilege', () => {
  const statements = (fnId: string): any[] => {
    const roleId = resources('AWS::Lambda::Function')[fnId].Properties.Role['Fn::GetAtt'][0];
    const policies = Object.values(resources('AWS::IAM::Policy')).filter((p: any) =>
      p.Properties.Roles.some((r: any) => r.Ref === roleId),
    );
    return policies.flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  };
  const actions = (s: any): string[] => (Array.isArray(s.Action) ? s.Action : [s.Action]);

  test('no role uses an AWS managed policy', () => {
    for (const role of Object.values(resources('AWS::IAM::Role'))) {
      expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    }
  });

  test("Resource * only on actions without resource-level permissions (X-Ray's, the stream's ListStreams)", () => {
    for (const p of Object.values(resources('AWS::IAM::Policy'))) {
      for (const s of (p as any).Properties.PolicyDocument.Statement) {
        for (const a of actions(s)) expect(a).not.toContain('*');
        if (s.Resource === '*') {
          for (const a of actions(s)) {
            expect(['xray:PutTelemetryRecords', 'xray:PutTraceSegments', 'dynamodb:ListStreams']).toContain(a);
          }
        }
      }
    }
  });

  test('order-consumer may write Orders (PutItem, and INSERT for its batched creates) and consume the order queue, nothing else', () => {
    const all = statements(consumerId).flatMap(actions).sort();
    expect(all).toEqual(
      [
        'dynamodb:GetItem', 'dynamodb:PartiQLInsert', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
        'kms:Decrypt',
        'logs:CreateLogStream', 'logs:PutLogEvents',
        'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage',
        'xray:PutTelemetryRecords', 'xray:PutTraceSegments',
      ].sort(),
    );
  });

  test('dlq-alarm may look at the DLQ but not delete from it', () => {
    const all = statements(dlqAlarmFnId).flatMap(actions);
    expect(all).toEqual(expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sns:Publish', 'dynamodb:PutItem']));
    expect(all).not.toContain('sqs:DeleteMessage');
    expect(all).not.toContain('dynamodb:UpdateItem');
    const sqsStatement = statements(dlqAlarmFnId).find((s) => actions(s).includes('sqs:ReceiveMessage'));
    expect(sqsStatement.Resource).toEqual({ 'Fn::GetAtt': [deadLetterQueueId, 'Arn'] });
  });
});

describe('table', () => {
  test('on-demand, keyed by orderId, point-in-time recovery, retained on delete', () => {
    t.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: Match.objectLike({
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: [{ AttributeName: 'orderId', KeyType: 'HASH' }],
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      }),
    });
  });

  test('deletion protection is on outside dev stages', () => {
    t.hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
    template({ stage: 'prod' }).hasResourceProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: true });
  });
});

describe('alarms', () => {
  // Protects: looking at the DLQ (dlq-alarm's snapshot, the console's poll) hides its messages;
  // the alarm counts them in flight too, so it never flips to OK (a false recovery) meanwhile.
  test('DLQ depth >= 1, visible plus in flight: ALARM and OK invoke dlq-alarm and notify the ops topic', () => {
    const targets = [{ Ref: opsTopicId }, { 'Fn::GetAtt': [dlqAlarmFnId, 'Arn'] }];
    const queueName = { 'Fn::GetAtt': [deadLetterQueueId, 'QueueName'] };
    const stat = (metric: string) =>
      Match.objectLike({
        MetricStat: Match.objectLike({
          Metric: { Namespace: 'AWS/SQS', MetricName: metric, Dimensions: [{ Name: 'QueueName', Value: queueName }] },
          Stat: 'Maximum',
        }),
        ReturnData: false,
      });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Metrics: Match.arrayWith([
        Match.objectLike({ Expression: 'visible + inflight', ReturnData: true }),
        stat('ApproximateNumberOfMessagesVisible'),
        stat('ApproximateNumberOfMessagesNotVisible'),
      ]),
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: targets,
      OKActions: targets,
    });
    t.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: { 'Fn::GetAtt': [dlqAlarmFnId, 'Arn'] },
      Principal: 'lambda.alarms.cloudwatch.amazonaws.com',
    });
  });

  // Protects: dlq-alarm failing (dead letters left unexamined, orders left unmarked) pages ops.
  test("dlq-alarm's own errors notify ops", () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: dlqAlarmFnId } }],
      AlarmActions: [{ Ref: opsTopicId }],
    });
  });

  // Protects: dead letters that arrive while the DLQ alarm stays in ALARM (no state change, no
  // alarm action) are still swept and marked FAILED.
  test('a schedule sweeps the DLQ with dlq-alarm between state changes', () => {
    t.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [dlqAlarmFnId, 'Arn'] }, Input: '{"sweep":"scheduled"}' })],
    });
  });

  test('age of the oldest order-queue message notifies ops', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [orderQueueId, 'QueueName'] } }],
      Threshold: 300,
      AlarmActions: [{ Ref: opsTopicId }],
    });
  });

  // Protects: a function failing as a whole pages ops, for every function of the registry.
  test.each(functionNames)('every function has an errors alarm that notifies ops: %s', (name) => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnIdOf(name) } }],
      AlarmActions: [{ Ref: opsTopicId }],
      OKActions: [{ Ref: opsTopicId }],
    });
  });

  // Protects: every queue-fed function's DLQ depth, queue age and undeliverable messages page ops.
  test.each(workers)('every function with a work queue alarms ops on DLQ depth, queue age and undeliverable messages: %s', (name) => {
    const queueId = queueIdOf(name);
    const queue = resources('AWS::SQS::Queue')[queueId];
    const dlqId = queue.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    const subscription = Object.values(resources('AWS::SNS::Subscription')).find(
      (s: any) => JSON.stringify(s.Properties.Endpoint) === JSON.stringify({ 'Fn::GetAtt': [queueId, 'Arn'] }),
    ) as any;
    const undeliverableId = subscription.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    const alarms = Object.values(resources('AWS::CloudWatch::Alarm')).map((a: any) => JSON.stringify(a.Properties));
    const onQueue = (id: string) => alarms.filter((a) => a.includes(`"${id}","QueueName"`) && a.includes(`"Ref":"${opsTopicId}"`));
    expect(onQueue(dlqId).some((a) => a.includes('visible + inflight'))).toBe(true);
    expect(onQueue(undeliverableId).some((a) => a.includes('visible + inflight'))).toBe(true);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      Threshold: blockOf(name).queueAgeAlarmSeconds,
      AlarmActions: [{ Ref: opsTopicId }],
    });
  });

  test('consumer errors notify ops', () => {
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: consumerId } }],
      AlarmActions: [{ Ref: opsTopicId }],
    });
  });

  test('the ops topic takes an email subscription only when alarmEmail is set', () => {
    const protocols = (tmpl: Template) => Object.values(tmpl.findResources('AWS::SNS::Subscription')).map((s: any) => s.Properties.Protocol);
    expect(protocols(t)).not.toContain('email');
    const withEmail = template({ alarmEmail: 'ops@example.com' });
    withEmail.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
  });
});

describe('order API', () => {
  const apiFnId = ref('AWS::Lambda::Function', (r) => r.Metadata?.['OrderPipeline:Binary'] === 'order-api');

  test('three routes on the Rust function, IAM (SigV4) authorization by default', () => {
    const routes = Object.values(resources('AWS::ApiGatewayV2::Route')).map((r: any) => [r.Properties.RouteKey, r.Properties.AuthorizationType]);
    expect(routes.sort()).toEqual([['GET /orders/{orderId}', 'AWS_IAM'], ['POST /orders', 'AWS_IAM'], ['POST /orders/{orderId}/cancel', 'AWS_IAM']]);
    t.hasResourceProperties('AWS::ApiGatewayV2::Integration', {
      IntegrationType: 'AWS_PROXY',
      PayloadFormatVersion: '2.0',
      IntegrationUri: { 'Fn::GetAtt': [apiFnId, 'Arn'] },
    });
    t.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
  });

  test('a JWT authorizer when context gives an issuer and an audience', () => {
    const jwt = template({ apiJwtIssuer: 'https://issuer.example.com/', apiJwtAudience: 'orders,support' });
    jwt.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://issuer.example.com/', Audience: ['orders', 'support'] },
    });
    const routes = Object.values(jwt.findResources('AWS::ApiGatewayV2::Route')).map((r: any) => r.Properties.AuthorizationType);
    expect(routes).toEqual(['JWT', 'JWT', 'JWT']);
    expect(() => template({ apiJwtIssuer: 'https://issuer.example.com/' })).toThrow(/"apiJwtAudience" go together/);
  });

  // Protects (issue 31): with a JWT authorizer every route needs the customer or the admin scope,
  // and order-api is told to act for the token's customer (claim and admin scope from context);
  // with IAM it is told its callers are services.
  test('JWT routes carry the customer and admin scopes and the function reads the caller from the claim', () => {
    const env = (tmpl: Template) => {
      const fns = tmpl.findResources('AWS::Lambda::Function');
      const api = Object.values(fns).find((r: any) => r.Metadata?.['OrderPipeline:Binary'] === 'order-api') as any;
      return api.Properties.Environment.Variables;
    };
    expect(env(t)).toMatchObject({ API_AUTH: 'iam' });
    expect(env(t).API_CUSTOMER_CLAIM).toBeUndefined();
    const jwt = template({ apiJwtIssuer: 'https://issuer.example.com/', apiJwtAudience: 'orders' });
    const scopes = Object.values(jwt.findResources('AWS::ApiGatewayV2::Route')).map((r: any) => r.Properties.AuthorizationScopes);
    expect(scopes).toEqual(Array(3).fill(['orders/customer', 'orders/admin']));
    expect(env(jwt)).toMatchObject({ API_AUTH: 'jwt', API_CUSTOMER_CLAIM: 'sub', API_ADMIN_SCOPE: 'orders/admin' });
    const named = template({
      apiJwtIssuer: 'https://issuer.example.com/', apiJwtAudience: 'orders',
      apiJwtCustomerClaim: 'custom:customer_id', apiJwtCustomerScope: '', apiJwtAdminScope: 'shop/support',
    });
    expect(env(named)).toMatchObject({ API_CUSTOMER_CLAIM: 'custom:customer_id', API_ADMIN_SCOPE: 'shop/support' });
    const unscoped = Object.values(named.findResources('AWS::ApiGatewayV2::Route')).map((r: any) => r.Properties.AuthorizationScopes);
    expect(unscoped).toEqual([undefined, undefined, undefined]);
    expect(() => template({ apiJwtIssuer: 'https://issuer.example.com/', apiJwtAudience: 'orders', apiJwtAdminScope: 'orders admin' }))
      .toThrow(/"apiJwtAdminScope" is invalid/);
  });

  test('the stage throttles with the configured rate and burst and writes JSON access logs with bounded retention', () => {
    const stage = only('AWS::ApiGatewayV2::Stage').Properties;
    expect(stage.StageName).toBe('$default');
    expect(stage.DefaultRouteSettings).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
    const format = JSON.parse(stage.AccessLogSettings.Format);
    expect(Object.keys(format)).toEqual(expect.arrayContaining(['requestId', 'status', 'latencyMs', 'caller']));
    const logGroupId = stage.AccessLogSettings.DestinationArn['Fn::GetAtt'][0];
    expect(resources('AWS::Logs::LogGroup')[logGroupId].Properties.RetentionInDays).toBe(30);
    template({ apiThrottleRate: 7, apiThrottleBurst: 9 }).hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 7, ThrottlingBurstLimit: 9 },
    });
  });

  test('order-api may publish to the order topic, read Orders and write a cancel, nothing else', () => {
    const roleId = resources('AWS::Lambda::Function')[apiFnId].Properties.Role['Fn::GetAtt'][0];
    const statements = Object.values(resources('AWS::IAM::Policy'))
      .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
    const actions = statements.flatMap((s: any) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();
    expect(actions).toEqual(
      ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'kms:Decrypt', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents', 'sns:Publish',
        'xray:PutTelemetryRecords', 'xray:PutTraceSegments'].sort(),
    );
    const publish = statements.find((s: any) => s.Action === 'sns:Publish');
    expect(publish.Resource).toEqual({ Ref: orderTopicId });
    const env = resources('AWS::Lambda::Function')[apiFnId].Properties.Environment.Variables;
    expect(env.ORDER_TOPIC_ARN).toEqual({ Ref: orderTopicId });
  });

  test('the API URL is an output', () => {
    expect(JSON.stringify(t.findOutputs('ApiUrl'))).toContain('execute-api');
  });
});

describe('lifecycle events and inventory', () => {
  const fnId = (binary: string) => ref('AWS::Lambda::Function', (r) => r.Metadata?.['OrderPipeline:Binary'] === binary);
  const statementsOf = (binary: string): any[] => {
    const roleId = resources('AWS::Lambda::Function')[fnId(binary)].Properties.Role['Fn::GetAtt'][0];
    return Object.values(resources('AWS::IAM::Policy'))
      .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  };
  const actionsOf = (binary: string) =>
    statementsOf(binary).flatMap((s: any) => (Array.isArray(s.Action) ? s.Action : [s.Action])).sort();

  test('the Orders stream (new and old images) feeds order-events: partial failures, bisect, bounded retries, an on-failure queue', () => {
    const orders = Object.values(resources('AWS::DynamoDB::Table')).find((r: any) => r.Properties.KeySchema[0].AttributeName === 'orderId') as any;
    expect(orders.Properties.StreamSpecification).toEqual({ StreamViewType: 'NEW_AND_OLD_IMAGES' });
    const failures = ref('AWS::SQS::Queue', (q) => JSON.stringify(resources('AWS::Lambda::EventSourceMapping')).includes(`"${Object.keys(resources('AWS::SQS::Queue')).find((id) => resources('AWS::SQS::Queue')[id] === q)}"`) && !q.Properties.RedrivePolicy && !q.Properties.VisibilityTimeout);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fnId('order-events') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 10,
      StartingPosition: 'TRIM_HORIZON',
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [failures, 'Arn'] } } },
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId('order-events') } }],
      Threshold: 60000,
    });
  });

  // Protects (issue 30, finding 6): no principal but the order-events function may publish lifecycle events.
  test('the order-events topic denies Publish to every principal but the order-events role', () => {
    const topics = Object.entries(resources('AWS::SNS::Topic')).filter(([id]) => id.startsWith('OrderEventsTopic'));
    expect(topics).toHaveLength(1);
    const [topicId] = topics[0];
    const role = resources('AWS::Lambda::Function')[fnIdOf('order-events')].Properties.Role['Fn::GetAtt'][0];
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topicId }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: { AWS: '*' },
            Condition: { ArnNotEquals: { 'aws:PrincipalArn': { 'Fn::GetAtt': [role, 'Arn'] } } },
          }),
        ]),
      },
    });
  });

  // Protects (issue 30): customers hear only from the pipeline's notification stage.
  test('the customer-notifications topic denies Publish to every principal but the notification roles (the stage and its last attempt)', () => {
    const topics = Object.keys(resources('AWS::SNS::Topic')).filter((id) => id.startsWith('CustomerNotificationsTopic'));
    expect(topics).toHaveLength(1);
    const roleOf = (binary: string) => resources('AWS::Lambda::Function')[fnIdOf(binary)].Properties.Role['Fn::GetAtt'][0];
    t.hasResourceProperties('AWS::SNS::TopicPolicy', {
      Topics: [{ Ref: topics[0] }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Condition: {
              ArnNotEquals: { 'aws:PrincipalArn': ['notification', 'notification-dlq'].map((f) => ({ 'Fn::GetAtt': [roleOf(f), 'Arn'] })) },
            },
          }),
        ]),
      },
    });
  });

  test('order-events may publish to its topic and read the stream, nothing else', () => {
    expect(actionsOf('order-events')).toEqual(
      [
        'dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:ListStreams',
        'kms:Decrypt', 'kms:GenerateDataKey', 'logs:CreateLogStream', 'logs:PutLogEvents', 'sns:Publish', 'sqs:SendMessage',
        'xray:PutTelemetryRecords', 'xray:PutTraceSegments',
      ].sort(),
    );
  });

  // Protects (found in review): every stage and dead-letter handler reads the stored order (a consistent GetItem) before
  // it acts, never the event's copy; without GetItem on Orders each of them fails every order on AWS (moto grants all).
  test.each(['inventory', 'inventory-dlq', 'payment', 'payment-dlq', 'notification', 'notification-dlq'])(
    '%s may read and update the Orders table, and no more of it',
    (binary) => {
      const ordersTable = ref('AWS::DynamoDB::Table', (r) => r.Properties.KeySchema[0].AttributeName === 'orderId');
      const onOrders = statementsOf(binary)
        .filter((s: any) => JSON.stringify(s.Resource).includes(ordersTable))
        .flatMap((s: any) => (Array.isArray(s.Action) ? s.Action : [s.Action]))
        .sort();
      expect(onOrders).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
    },
  );

  // Protects: a dead-letter handler's queue is a DLQ, which has none of its own: its worker is told so (MAX_RECEIVE_COUNT
  // none), and never logs that a letter it keeps "moves to the DLQ" (with 1000 it did, each look after ~16 hours).
  test.each(namesOfKind('dead-letter-handler'))('%s is told its queue has no DLQ', (binary) => {
    expect(resources('AWS::Lambda::Function')[fnIdOf(binary)].Properties.Environment.Variables.MAX_RECEIVE_COUNT).toBe('none');
  });

  // Protects (issue 32, stuck orders): the order watch holds each OrderAccepted for the stuck-order age, is told that age
  // (and so is the stuck-order list's handler), only reads the Orders table, and its DLQ (the stuck-order list) pages ops.
  test('the order watch holds each OrderAccepted for stuckAfterMinutes, may only read Orders, and its stuck-order list alarms', () => {
    const seconds = blockOf('order-watch').stuckAfterMinutes * 60;
    expect(resources('AWS::SQS::Queue')[queueIdOf('order-watch')].Properties.DelaySeconds).toBe(seconds);
    const ordersTable = ref('AWS::DynamoDB::Table', (r) => r.Properties.KeySchema[0].AttributeName === 'orderId');
    for (const binary of ['order-watch', 'order-watch-dlq']) {
      expect(resources('AWS::Lambda::Function')[fnIdOf(binary)].Properties.Environment.Variables.STUCK_AFTER_SECONDS).toBe(String(seconds));
      const onOrders = statementsOf(binary)
        .filter((s: any) => JSON.stringify(s.Resource).includes(ordersTable))
        .flatMap((s: any) => (Array.isArray(s.Action) ? s.Action : [s.Action]));
      expect(onOrders).toEqual(['dynamodb:GetItem']);
    }
    t.hasResourceProperties('AWS::SNS::Subscription', { FilterPolicy: { eventType: ['OrderAccepted'] }, Endpoint: { 'Fn::GetAtt': [queueIdOf('order-watch'), 'Arn'] } });
    // The list's handler receives a still-stuck letter every visibility timeout: no alarm on receives (it would flap).
    const arrivals = (stage: string) =>
      Object.keys(resources('AWS::CloudWatch::Alarm')).filter((id) => id.startsWith(`${stage}DeadLettersArrived`));
    expect(arrivals('OrderWatch')).toHaveLength(0);
    expect(arrivals('Inventory')).toHaveLength(1);
    const list = queueIdOf('order-watch-dlq');
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('^Orders are stuck.*order-watch DLQ is the stuck-order list'),
      Threshold: 1,
      AlarmActions: Match.anyValue(),
      Metrics: Match.arrayWith([
        Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [list, 'QueueName'] } }] }) }) }),
      ]),
    });
  });

  test('the inventory stage subscribes to OrderAccepted events only, and may update Inventory and Orders', () => {
    t.hasResourceProperties('AWS::SNS::Subscription', { FilterPolicy: { eventType: ['OrderAccepted'] }, RawMessageDelivery: true });
    const actions = actionsOf('inventory');
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:BatchGetItem', 'dynamodb:UpdateItem']));
    expect(actions).not.toContain('dynamodb:PutItem');
    expect(actions).not.toContain('dynamodb:DeleteItem');
    t.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [{ AttributeName: 'sku', KeyType: 'HASH' }],
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
  });
});

describe('payment and notification', () => {
  const fnId = (binary: string) => ref('AWS::Lambda::Function', (r) => r.Metadata?.['OrderPipeline:Binary'] === binary);
  const fnOf = (tmpl: Template, binary: string): any =>
    Object.values(tmpl.findResources('AWS::Lambda::Function')).find((f: any) => f.Metadata?.['OrderPipeline:Binary'] === binary);
  const actionsOf = (tmpl: Template, binary: string): any[] => {
    const roleId = fnOf(tmpl, binary).Properties.Role['Fn::GetAtt'][0];
    return Object.values(tmpl.findResources('AWS::IAM::Policy'))
      .filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId))
      .flatMap((p: any) => p.Properties.PolicyDocument.Statement);
  };
  const customerTopicId = () => ref('AWS::SNS::Topic', (r) => JSON.stringify(fnOf(t, 'notification').Properties.Environment).includes(`"${Object.keys(resources('AWS::SNS::Topic')).find((id) => resources('AWS::SNS::Topic')[id] === r)}"`));

  // Protects: the payment stage sees only InventoryReserved, backs off on its own queue, and is simulated (and says so) without a provider.
  test('the payment stage subscribes to InventoryReserved, backs off on its own queue, and simulates without a provider', () => {
    t.hasResourceProperties('AWS::SNS::Subscription', { FilterPolicy: { eventType: ['InventoryReserved'] }, RawMessageDelivery: true });
    const payment = fnOf(t, 'payment');
    const env = payment.Properties.Environment.Variables;
    expect(env).toMatchObject({ RETRY_BASE_SECONDS: '10', RETRY_MAX_SECONDS: '300', PAYMENT_MAX_ATTEMPTS: '4', SIMULATED_DECLINE_OVER: '5000' });
    expect(env.PAYMENT_PROVIDER_URL).toBeUndefined();
    expect(payment.Properties.Description).toContain('SIMULATED');
    const queueUrl = env.QUEUE_URL.Ref;
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fnId('payment') },
      EventSourceArn: { 'Fn::GetAtt': [queueUrl, 'Arn'] },
    });
    const actions = actionsOf(t, 'payment').flatMap((s: any) => s.Action);
    expect(actions).not.toContain('secretsmanager:GetSecretValue');
    expect(actions).not.toContain('dynamodb:PutItem');
  });

  // Protects: the API key is read from the named secret only, never passed in the environment.
  test('with a provider, payment reads exactly the named secret and the key is not in its environment', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:payments-AbCdEf';
    const tmpl = template({ paymentProviderUrl: 'https://pay.example.com/v1', paymentSecretArn: arn });
    const env = fnOf(tmpl, 'payment').Properties.Environment.Variables;
    expect(env).toMatchObject({ PAYMENT_PROVIDER_URL: 'https://pay.example.com/v1', PAYMENT_SECRET_ARN: arn, PAYMENT_TIMEOUT_MS: '3000' });
    expect(Object.keys(env).some((k) => /KEY|TOKEN|PASSWORD/.test(k))).toBe(false);
    for (const fn of ['payment', 'payment-dlq']) {
      // payment-dlq asks the provider (a lookup) before it fails an order whose payment was attempted.
      const secretStatements = actionsOf(tmpl, fn).filter((s: any) => JSON.stringify(s.Action).includes('secretsmanager'));
      expect(secretStatements).toEqual([expect.objectContaining({ Action: 'secretsmanager:GetSecretValue', Resource: arn })]);
      expect(fnOf(tmpl, fn).Properties.Environment.Variables).toMatchObject({ PAYMENT_PROVIDER_URL: 'https://pay.example.com/v1' });
    }
    expect(() => template({ paymentProviderUrl: 'https://pay.example.com' })).toThrow(/go together/);
  });

  // Protects (issues 30 and 31): money left for a person to settle pages ops: a payment whose outcome
  // stays unknown (the order RESERVED), a charge for an order that moved on without it, a refund the
  // provider refused; each on the stage that counts it, and no stage alarms on a count it never emits.
  test('unresolved payments, orphaned charges and refused refunds raise alarms to ops', () => {
    for (const [metric, service] of [['PaymentsUnresolved', 'payment'], ['PaymentsOrphaned', 'payment'], ['RefundsRefused', 'refund']]) {
      t.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'OrderPipeline',
        MetricName: metric,
        Dimensions: [{ Name: 'service', Value: service }],
        Threshold: 1,
        AlarmActions: [{ Ref: opsTopicId }],
      });
    }
    const moneyAlarms = Object.values(resources('AWS::CloudWatch::Alarm'))
      .filter((a: any) => a.Properties.Namespace === 'OrderPipeline' && /^(Payments|Refunds)/.test(a.Properties.MetricName))
      .map((a: any) => `${a.Properties.Dimensions[0].Value}:${a.Properties.MetricName}`)
      .sort();
    expect(moneyAlarms).toEqual(['payment:PaymentsOrphaned', 'payment:PaymentsUnresolved', 'refund:RefundsRefused']);
  });

  // Protects: the inventory stage prices in the stack's default currency where neither the order nor the sku names one (issue 30).
  test('the stack default currency goes to the inventory stage with the Inventory table', () => {
    const env = fnOf(template({ defaultCurrency: 'EUR' }), 'inventory').Properties.Environment.Variables;
    expect(env).toMatchObject({ DEFAULT_CURRENCY: 'EUR' });
    expect(env.INVENTORY_TABLE_NAME).toBeDefined();
  });

  // Protects: an event that reaches the inventory or payment DLQ is settled by that stage's handler, and ops still hear of it.
  test.each([
    ['inventory', 'inventory-dlq'],
    ['payment', 'payment-dlq'],
    ['notification', 'notification-dlq'],
  ])('%s\'s DLQ feeds %s, and its arrivals alarm ops even though the handler empties it', (stage, handler) => {
    const stageQueue = resources('AWS::SQS::Queue')[queueIdOf(stage)];
    const dlq: string = stageQueue.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: fnId(handler) },
      EventSourceArn: { 'Fn::GetAtt': [dlq, 'Arn'] },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    t.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'NumberOfMessagesReceived',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlq, 'QueueName'] } }],
      Threshold: 1,
      AlarmActions: [{ Ref: opsTopicId }],
    });
  });

  // Protects: customers hear of every terminal outcome (a cancel's too), on a topic of their own, and notification may publish nowhere else.
  test('notification subscribes to the terminal outcomes and may publish to customer-notifications only', () => {
    t.hasResourceProperties('AWS::SNS::Subscription', {
      FilterPolicy: { eventType: ['PaymentSucceeded', 'OrderRejected', 'PaymentFailed', 'OrderCancelled', 'OrderRefunded'] },
      RawMessageDelivery: true,
    });
    const topic = customerTopicId();
    expect(resources('AWS::SNS::Topic')[topic].Properties.KmsMasterKeyId).toBeDefined();
    const publish = actionsOf(t, 'notification').filter((s: any) => s.Action === 'sns:Publish');
    expect(publish).toEqual([expect.objectContaining({ Resource: { Ref: topic } })]);
    expect(t.findOutputs('CustomerNotificationsTopicArn').CustomerNotificationsTopicArn.Value).toEqual({ Ref: topic });
    const emails = (tmpl: Template) => Object.values(tmpl.findResources('AWS::SNS::Subscription')).filter((s: any) => s.Properties.Protocol === 'email');
    expect(emails(t)).toHaveLength(0);
    expect(emails(template({ notificationEmail: 'shop@example.com' }))).toEqual([
      expect.objectContaining({ Properties: expect.objectContaining({ Endpoint: 'shop@example.com' }) }),
    ]);
  });

  test('maxAttempts must stay below the payment queue maxReceiveCount', () => {
    expect(() => template({ 'functions.payment.maxAttempts': 6 })).toThrow(/maxReceiveCount above it/);
  });
});

describe('dashboard', () => {
  // Protects: operators get one row of graphs per stage, built from the stage's own resources.
  test('one dashboard with a row per stage: received, processed, failed, DLQ depth, age, duration, errors', () => {
    const body = JSON.stringify(only('AWS::CloudWatch::Dashboard').Properties.DashboardBody);
    for (const metric of [
      'NumberOfMessagesReceived', 'NumberOfMessagesDeleted', 'RecordsFailed',
      'ApproximateNumberOfMessagesVisible', 'ApproximateAgeOfOldestMessage', 'Duration', 'Errors',
    ]) {
      expect([metric, body.includes(metric)]).toEqual([metric, true]);
    }
    for (const name of workers) expect(body).toContain(`### ${name}`);
  });
});

describe('outputs', () => {
  test('topic ARN, queue URL, DLQ URL, table name and ops topic ARN are output', () => {
    const outputs = t.findOutputs('*');
    expect(outputs.OrderTopicArn.Value).toEqual({ Ref: orderTopicId });
    expect(outputs.OrderQueueUrl.Value).toEqual({ Ref: orderQueueId });
    expect(outputs.DeadLetterQueueUrl.Value).toEqual({ Ref: deadLetterQueueId });
    expect(outputs.OrdersTableName.Value).toEqual({ Ref: ref('AWS::DynamoDB::Table') });
    expect(outputs.OpsTopicArn.Value).toEqual({ Ref: opsTopicId });
    expect(outputs.DeadLetterQueueArn.Value).toEqual({ 'Fn::GetAtt': [deadLetterQueueId, 'Arn'] });
  });

  // Protects: every name docs/operations.md tells an operator to use is a stack output.
  test('the runbook names are outputs: subscription DLQ and every log group', () => {
    const outputs = t.findOutputs('*');
    const intakeSubscription = Object.values(resources('AWS::SNS::Subscription')).find((s: any) => s.Properties.TopicArn.Ref === orderTopicId) as any;
    const subscriptionDlq = intakeSubscription.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0];
    expect(outputs.SubscriptionDeadLetterQueueUrl.Value).toEqual({ Ref: subscriptionDlq });
    const groups = Object.keys(resources('AWS::Logs::LogGroup'));
    // Each function's log group is the <Binary>LogGroup output (OrderConsumerLogGroup, PaymentDlqLogGroup, ...).
    for (const name of functionNames) {
      const group = resources('AWS::Lambda::Function')[fnIdOf(name)].Properties.LoggingConfig.LogGroup.Ref;
      expect([name, outputs[`${constructId(name)}LogGroup`]?.Value]).toEqual([name, { Ref: group }]);
    }
    const named = [...functionNames.map((n) => `${constructId(n)}LogGroup`), 'ApiAccessLogGroup'].map((o) => outputs[o].Value.Ref);
    expect(named.sort()).toEqual(groups.sort());
    const runbook = fs.readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
    for (const name of runbook.match(/`([A-Z][A-Za-z]+)` output/g) ?? []) {
      const output = name.slice(1, name.indexOf('`', 1));
      expect([output, outputs[output] !== undefined]).toEqual([output, true]);
    }
  });

  test('each Rust function names its binary in the template metadata (the local runner finds its handler by it)', () => {
    const binaries = Object.values(resources('AWS::Lambda::Function')).map((f: any) => f.Metadata['OrderPipeline:Binary']).sort();
    expect(binaries).toEqual([...functionNames].sort());
  });

  // Protects: the local runner wires a function from its OrderPipeline:Features metadata (not by
  // sniffing its environment): every function has the list, it is the stage table's, and it
  // matches what the stack wired (a backoff's variables, the provider's secret).
  test('each function lists its features (OrderPipeline:Features) from the stage table, matching what the stack wired', () => {
    const functions = Object.values(resources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(functionNames.length);
    for (const f of functions) {
      const name = f.Metadata['OrderPipeline:Binary'];
      const features = f.Metadata[FEATURES_METADATA];
      // A dead-letter handler carries its stage's payment-provider feature: it asks the provider.
      const stage = registry.functions.find((g) => g.name === name)?.deadLettersOf;
      const expected = stage ? featuresOf(stage).filter((x) => x === 'payment-provider') : featuresOf(name);
      expect([name, features]).toEqual([name, [...expected]]);
      const env = f.Properties.Environment.Variables;
      expect([name, features.includes('backoff')]).toEqual([name, env.RETRY_BASE_SECONDS !== undefined]);
      expect([name, features.includes('backoff')]).toEqual([name, env.QUEUE_URL !== undefined]);
    }
    expect(featuresOf('payment')).toEqual(['backoff', 'payment-provider']);
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:payments-AbCdEf';
    const withProvider = template({ paymentProviderUrl: 'https://pay.example.com/v1', paymentSecretArn: arn });
    const readsSecret = Object.values(withProvider.findResources('AWS::Lambda::Function'))
      .filter((f: any) => {
        const roleId = f.Properties.Role['Fn::GetAtt'][0];
        return JSON.stringify(
          Object.values(withProvider.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles.some((r: any) => r.Ref === roleId)),
        ).includes('secretsmanager:GetSecretValue');
      })
      .map((f: any) => f.Metadata[FEATURES_METADATA]);
    expect(readsSecret).toEqual(Array(4).fill(expect.arrayContaining(['payment-provider'])));
    const providerFunctions = Object.values(withProvider.findResources('AWS::Lambda::Function')).filter((f: any) =>
      f.Metadata[FEATURES_METADATA].includes('payment-provider'),
    );
    expect(providerFunctions.map((f: any) => f.Properties.Environment.Variables.PAYMENT_PROVIDER_URL)).toEqual(
      Array(4).fill('https://pay.example.com/v1'),
    );
    expect(providerFunctions.map((f: any) => f.Metadata['OrderPipeline:Binary']).sort()).toEqual(['payment', 'payment-dlq', 'refund', 'refund-dlq']);
  });
});

describe('cdk-nag acknowledgements', () => {
  // Protects: an acknowledgement says why, specifically; a blanket "not needed" is a defect.
  test('every acknowledgement names a rule and gives a specific reason', () => {
    const { stack } = synthApp();
    const acks = stack.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY))
      .flatMap((m) => Object.entries(m.data as Record<string, string>));
    expect(acks.length).toBeGreaterThanOrEqual(6);
    for (const [id, reason] of acks) {
      expect(id).toMatch(/^(AwsSolutions|Serverless)::/);
      expect([id, reason.length > 60]).toEqual([id, true]);
    }
  });
});
