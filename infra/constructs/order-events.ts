import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { StreamSettings } from '../config';
import { DEAD_LETTER_RETENTION } from './queue-worker';
import { BREACHING, functionErrorsAlarm, MINUTE, notify, queueNotEmptyAlarm } from './alarms';
import { RustLambda } from './rust-lambda';
import { denyPublishUnless } from './topic-policy';

/**
 * An SQS on-failure destination granting exactly what sending needs (`sqs:SendMessage`, and
 * `kms:GenerateDataKey`/`kms:Decrypt` on its key); the library's SqsDlq grants KMS wildcards.
 */
class ExactSqsDestination implements lambda.IEventSourceDlq {
  constructor(
    private readonly queue: sqs.IQueue,
    private readonly key: kms.IKey,
  ) {}

  bind(_target: lambda.IEventSourceMapping, handler: lambda.IFunction): lambda.DlqDestinationConfig {
    handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }));
    if (handler.role) this.key.grant(handler.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    return { destination: this.queue.queueArn };
  }
}

export interface OrderEventsProps {
  /** The workspace's Cargo.toml. */
  readonly manifestPath: string;
  /** The Orders table; it must have a stream with new and old images. */
  readonly table: dynamodb.ITable;
  /** Memory, timeout, batch size and retries (config.ts). */
  readonly settings: StreamSettings;
  /** Encrypts the order-events topic. */
  readonly topicKey: kms.IKey;
  /** Encrypts the on-failure queue. */
  readonly queueKey: kms.IKey;
  /** Days the function's logs are kept. */
  readonly logRetention: logs.RetentionDays;
  /** Keep the on-failure queue when the stack is deleted. @default true */
  readonly retainFailures?: boolean;
  /** The alarms notify these on ALARM and OK. @default none */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

/**
 * Lifecycle events: the Orders table's stream feeds order-events (Rust), which publishes one
 * event per committed status change to the order-events topic (KMS, TLS only) with the
 * `eventType` attribute that the stages' subscriptions filter on. The stream's mapping reports
 * partial batch failures, bisects a failing batch, retries a bounded number of times and then
 * sends the record's description to an encrypted on-failure queue. Alarms: iterator age, the
 * on-failure queue's depth, function errors.
 */
export class OrderEvents extends Construct {
  public readonly topic: sns.Topic;
  public readonly lambda: RustLambda;
  public readonly failures: sqs.Queue;
  public readonly alarms: cloudwatch.Alarm[];

  constructor(scope: Construct, id: string, props: OrderEventsProps) {
    super(scope, id);
    const { settings } = props;
    this.topic = new sns.Topic(this, 'Topic', {
      masterKey: props.topicKey,
      enforceSSL: true,
      tracingConfig: sns.TracingConfig.ACTIVE,
    });
    this.failures = new sqs.Queue(this, 'Failures', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.queueKey,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
      removalPolicy: props.retainFailures ?? true ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    this.lambda = new RustLambda(this, 'Function', {
      manifestPath: props.manifestPath,
      binaryName: 'order-events',
      description: 'Orders stream -> one lifecycle event per status change',
      memorySize: settings.memoryMb,
      timeout: Duration.seconds(settings.timeoutSeconds),
      logRetention: props.logRetention,
      environment: { ORDER_EVENTS_TOPIC_ARN: this.topic.topicArn },
    });
    // Exact actions: grantPublish would add kms:GenerateDataKey*, a wildcard.
    this.lambda.role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [this.topic.topicArn] }));
    // Only this function publishes lifecycle events: the stages act on them (a forged
    // InventoryReserved would be a payment request), so no other principal of the account may.
    denyPublishUnless(this.topic, 'PublishByOrderEventsOnly', { ArnNotEquals: { 'aws:PrincipalArn': this.lambda.role.roleArn } });
    props.topicKey.grant(this.lambda.role, 'kms:Decrypt', 'kms:GenerateDataKey');
    this.lambda.function.addEventSource(
      new DynamoEventSource(props.table, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: settings.batchSize,
        bisectBatchOnError: true,
        reportBatchItemFailures: true,
        retryAttempts: settings.maxRetryAttempts,
        maxRecordAge: Duration.hours(24),
        onFailure: new ExactSqsDestination(this.failures, props.queueKey),
      }),
    );

    const iteratorAge = new cloudwatch.Metric({
      namespace: 'AWS/Lambda',
      metricName: 'IteratorAge',
      dimensionsMap: { FunctionName: this.lambda.function.functionName },
      statistic: cloudwatch.Stats.MAXIMUM,
      period: MINUTE,
    }).createAlarm(this, 'IteratorAge', {
      alarmDescription: 'order-events falls behind the Orders stream: events reach the stages late. Check its errors and duration.',
      threshold: settings.iteratorAgeAlarmSeconds * 1000,
      evaluationPeriods: 3,
      ...BREACHING,
    });
    const failed = queueNotEmptyAlarm(
      this,
      'Failed',
      this.failures,
      'Stream records order-events could not turn into events after its retries: their events were never published. See docs/operations.md.',
    );
    const errors = functionErrorsAlarm(this, 'Errors', this.lambda.function, 'order-events invocations fail as a whole.');
    this.alarms = [iteratorAge, failed, errors];
    notify(this.alarms, props.alarmActions);
  }
}
