import * as path from 'path';
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { PipelineConfig, queueVisibilityTimeoutSeconds } from './config';
import { acknowledgeFindings } from './nag';
import { OrderIntake } from './constructs/order-intake';
import { PipelineAlarms } from './constructs/pipeline-alarms';
import { RustLambda } from './constructs/rust-lambda';

export interface OrderPipelineStackProps extends StackProps {
  readonly config: PipelineConfig;
}

/** The workspace manifest: RustFunction builds functions/<binary> from it with cargo-lambda. */
export const CARGO_MANIFEST = path.join(__dirname, '..', 'Cargo.toml');

/**
 * The order pipeline: SNS order topic -> SQS order queue (+ DLQ) -> order-consumer (Rust) ->
 * DynamoDB Orders; the DLQ-depth alarm -> dlq-alarm (Rust) + ops topic. Built to
 * ../shared/design/pipeline-contract.md, "Infrastructure defaults".
 */
export class OrderPipelineStack extends Stack {
  constructor(scope: Construct, id: string, props: OrderPipelineStackProps) {
    super(scope, id, props);
    const { config } = props;
    const isDev = config.stage === 'dev';

    const key = new kms.Key(this, 'Key', {
      description: 'Encrypts the order pipeline topics and queues',
      enableKeyRotation: true,
      removalPolicy: isDev ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    // CloudWatch publishes alarm notifications to the encrypted ops topic.
    key.grant(new iam.ServicePrincipal('cloudwatch.amazonaws.com'), 'kms:Decrypt', 'kms:GenerateDataKey');

    const intake = new OrderIntake(this, 'Orders', {
      key,
      maxReceiveCount: config.maxReceiveCount,
      visibilityTimeout: Duration.seconds(queueVisibilityTimeoutSeconds(config)),
    });

    const table = new dynamodb.Table(this, 'OrdersTable', {
      partitionKey: { name: 'orderId', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
      deletionProtection: !isDev,
    });

    const opsTopic = new sns.Topic(this, 'OpsTopic', { masterKey: key, enforceSSL: true });
    if (config.alarmEmail) {
      const email = new subs.EmailSubscription(config.alarmEmail);
      opsTopic.addSubscription(email);
      Validations.of(opsTopic).acknowledge({
        id: 'Serverless::Serverless-SNSRedrivePolicy',
        reason:
          'The optional ops email subscription pages a person; a bounced email has nothing to redrive, and every alarm stays visible in CloudWatch and every dlq-alarm summary in its log group.',
      });
    }

    const consumer = new RustLambda(this, 'OrderConsumer', {
      manifestPath: CARGO_MANIFEST,
      binaryName: 'order-consumer',
      description: 'Order queue -> Orders table (partial batch responses)',
      memorySize: config.consumerMemoryMb,
      timeout: Duration.seconds(config.consumerTimeoutSeconds),
      logRetention: config.logRetentionDays,
      environment: {
        TABLE_NAME: table.tableName,
        MAX_RECEIVE_COUNT: String(config.maxReceiveCount),
        RECORD_CONCURRENCY: String(config.recordConcurrency),
      },
    });
    table.grant(consumer.role, 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:GetItem');
    consumer.function.addEventSource(
      new SqsEventSource(intake.queue, {
        batchSize: config.batchSize,
        maxBatchingWindow: Duration.seconds(config.batchingWindowSeconds),
        reportBatchItemFailures: true,
        maxConcurrency: config.maxConcurrency,
      }),
    );

    const dlqAlarm = new RustLambda(this, 'DlqAlarm', {
      manifestPath: CARGO_MANIFEST,
      binaryName: 'dlq-alarm',
      description: 'DLQ-depth alarm -> FAILED marks on Orders and a summary to the ops topic',
      memorySize: config.dlqAlarmMemoryMb,
      timeout: Duration.seconds(config.dlqAlarmTimeoutSeconds),
      logRetention: config.logRetentionDays,
      environment: {
        TABLE_NAME: table.tableName,
        DLQ_URL: intake.deadLetterQueue.queueUrl,
        OPS_TOPIC_ARN: opsTopic.topicArn,
        DLQ_SNAPSHOT_MAX: String(config.dlqSnapshotMax),
      },
    });
    table.grant(dlqAlarm.role, 'dynamodb:PutItem', 'dynamodb:GetItem');
    // Looks at the DLQ without consuming it: receive, then make visible again. No delete.
    intake.deadLetterQueue.grant(dlqAlarm.role, 'sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes');
    // Publishing to the encrypted ops topic, with exact actions (grantPublish would add
    // kms:GenerateDataKey*, a wildcard).
    dlqAlarm.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['sns:Publish'], resources: [opsTopic.topicArn] }),
    );
    key.grant(dlqAlarm.role, 'kms:Decrypt', 'kms:GenerateDataKey');

    const alarms = new PipelineAlarms(this, 'Alarms', {
      opsTopic,
      queue: intake.queue,
      deadLetterQueue: intake.deadLetterQueue,
      subscriptionDeadLetterQueue: intake.subscriptionDeadLetterQueue,
      consumer: consumer.function,
      dlqAlarmFunction: dlqAlarm.function,
      queueAgeThreshold: Duration.seconds(config.queueAgeAlarmSeconds),
    });

    new CfnOutput(this, 'OrderTopicArn', { value: intake.topic.topicArn, description: 'Publish orders here' });
    new CfnOutput(this, 'OrderQueueUrl', { value: intake.queue.queueUrl });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: intake.deadLetterQueue.queueUrl });
    new CfnOutput(this, 'OrdersTableName', { value: table.tableName });
    new CfnOutput(this, 'OpsTopicArn', { value: opsTopic.topicArn, description: 'Alarm notifications' });
    new CfnOutput(this, 'DlqAlarmName', { value: alarms.dlqDepth.alarmName });

    acknowledgeFindings({ stack: this, consumer, dlqAlarm, intake });
  }
}
