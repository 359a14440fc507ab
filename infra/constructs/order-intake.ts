import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface OrderIntakeProps {
  /** Encrypts the topic and every queue. */
  readonly key: kms.IKey;
  /** Receives of a message before it moves to the DLQ. */
  readonly maxReceiveCount: number;
  /** The order queue's visibility timeout, derived from the consumer's timeout. */
  readonly visibilityTimeout: Duration;
}

/** Dead-letter queues keep messages for the SQS maximum, so an operator has time to act. */
export const DEAD_LETTER_RETENTION = Duration.days(14);
/** The order queue keeps messages for 4 days (the SQS default, written down). */
export const QUEUE_RETENTION = Duration.days(4);

/**
 * Where orders come in: the order topic (KMS, TLS only, publishing limited to this account,
 * active X-Ray tracing), the order queue subscribed with raw delivery, its DLQ, and the
 * subscription's own redrive queue for messages SNS cannot deliver.
 */
export class OrderIntake extends Construct {
  public readonly topic: sns.Topic;
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly subscriptionDeadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: OrderIntakeProps) {
    super(scope, id);
    const encrypted = {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
    };
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      ...encrypted,
      retentionPeriod: DEAD_LETTER_RETENTION,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...encrypted,
      visibilityTimeout: props.visibilityTimeout,
      retentionPeriod: QUEUE_RETENTION,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });
    this.subscriptionDeadLetterQueue = new sqs.Queue(this, 'SubscriptionDeadLetterQueue', {
      ...encrypted,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });

    this.topic = new sns.Topic(this, 'Topic', {
      masterKey: props.key,
      enforceSSL: true,
      tracingConfig: sns.TracingConfig.ACTIVE,
    });
    // Only principals of this account may publish orders.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'PublishFromThisAccountOnly',
        effect: iam.Effect.DENY,
        principals: [new iam.AnyPrincipal()],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringNotEquals: { 'aws:PrincipalAccount': Stack.of(this).account } },
      }),
    );
    this.topic.addSubscription(
      new subs.SqsSubscription(this.queue, {
        rawMessageDelivery: true,
        deadLetterQueue: this.subscriptionDeadLetterQueue,
      }),
    );
  }
}
