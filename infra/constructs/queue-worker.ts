import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DeadLetterHandlerSettings, Feature, queueVisibilityTimeoutSeconds, WorkerSettings } from '../config';
import { BREACHING, functionErrorsAlarm, MINUTE, notify, queueNotEmptyAlarm } from './alarms';
import { RustLambda } from './rust-lambda';

/** Dead-letter queues keep messages for the SQS maximum, so an operator has time to act. */
export const DEAD_LETTER_RETENTION = Duration.days(14);
/** Work queues keep messages for 4 days (the SQS default, written down). */
export const QUEUE_RETENTION = Duration.days(4);
/**
 * START_MARGIN_MS for a function with `timeout`: no record (or dead letter) starts once less
 * than this is left of an invocation. A quarter of the timeout, at most 3 s (one SDK attempt).
 */
export function startMarginMs(timeout: Duration): number {
  return Math.min(3000, Math.floor(timeout.toMilliseconds() / 4));
}

export interface QueueSubscription {
  /** The topic the queue subscribes to, with raw message delivery. */
  readonly topic: sns.ITopic;
  /** Only messages matching this policy reach the queue. @default every message */
  readonly filterPolicy?: { [attribute: string]: sns.SubscriptionFilter };
}

export interface QueueWorkerProps {
  /** The workspace's Cargo.toml. */
  readonly manifestPath: string;
  /** The binary crate that handles the queue's records (functions/<binaryName>); it also names the stage. */
  readonly binaryName: string;
  /** The function's description. */
  readonly description: string;
  /** Memory, timeout, batching, concurrency, maxReceiveCount and the queue-age threshold (config.ts). */
  readonly settings: WorkerSettings;
  /** Encrypts the queue, its DLQ and the subscription's redrive queue. */
  readonly key: kms.IKey;
  /** Days the function's logs are kept. */
  readonly logRetention: logs.RetentionDays;
  /**
   * Keep the DLQ (and the subscription's redrive queue) when the stack is deleted: they may
   * hold the only copy of a message. @default true
   */
  readonly retainDeadLetters?: boolean;
  /**
   * Failed records come back after a backoff doubling per failure (base, at most max) instead of
   * the visibility timeout: the function is told RETRY_BASE_SECONDS, RETRY_MAX_SECONDS and its
   * QUEUE_URL. @default the queue's visibility timeout
   */
  readonly backoff?: { readonly baseSeconds: number; readonly maxSeconds: number };
  /**
   * A function fed by the stage's DLQ, which settles what the stage could not process (the
   * payment stage fails the payment and releases the stock). Its queue then also alarms on every
   * message that arrives, since the handler empties it. @default none: dead letters wait for an operator
   */
  readonly deadLetterHandler?: {
    readonly binaryName: string;
    readonly description: string;
    readonly settings: DeadLetterHandlerSettings;
    /** The stage's features the handler uses too (template metadata). @default none */
    readonly features?: readonly Feature[];
    /**
     * Alarm on every message that reaches the DLQ (the handler empties it, so depth alone would
     * rarely show one). Off for a handler that keeps letters by design and looks at them again
     * each visibility timeout (its receives are not arrivals). @default true
     */
    readonly alarmOnArrivals?: boolean;
  };
  /** What the DLQ's depth alarm tells ops. @default the stage's messages wait in its DLQ: inspect, fix, redrive */
  readonly deadLetterAlarmDescription?: string;
  /** How long the queue holds each new message before the function may receive it. @default none */
  readonly deliveryDelay?: Duration;
  /** The stage's own environment variables, besides those the worker sets. @default none */
  readonly environment?: Record<string, string>;
  /**
   * Subscribes the queue to a topic (raw delivery, a redrive queue of its own for messages SNS
   * cannot deliver, and an alarm on it). @default no subscription: something else sends to the queue
   */
  readonly subscription?: QueueSubscription;
  /** Every alarm of the stage notifies these on ALARM and OK. @default none */
  readonly alarmActions?: cloudwatch.IAlarmAction[];
}

/**
 * A queue-fed stage: a work queue and its DLQ (KMS, TLS only on every action, 14-day DLQ
 * retention, maxReceiveCount from the settings), a Rust function fed by an event source
 * mapping with partial batch responses, the visibility timeout derived from the function's
 * timeout, an optional topic subscription, and the stage's alarms built from its own resources:
 * DLQ depth >= 1, age of the oldest message, function errors, and undeliverable messages when
 * subscribed. The function is told the stage's maxReceiveCount, record concurrency and start
 * margin (MAX_RECEIVE_COUNT, RECORD_CONCURRENCY, START_MARGIN_MS).
 */
export class QueueWorker extends Construct {
  public readonly name: string;
  public readonly queue: sqs.Queue;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly subscriptionDeadLetterQueue?: sqs.Queue;
  public readonly lambda: RustLambda;
  public readonly settings: WorkerSettings;
  /** DLQ depth >= 1: records this stage could not process wait there. */
  public readonly deadLetterAlarm: cloudwatch.Alarm;
  /** The oldest message waits longer than the threshold: the stage falls behind or fails. */
  public readonly queueAgeAlarm: cloudwatch.Alarm;
  /** Invocations fail as a whole: every record of a batch lacked a dependency. */
  public readonly errorsAlarm: cloudwatch.Alarm;
  /** SNS could not deliver to the queue (subscribed stages only). */
  public readonly undeliverableAlarm?: cloudwatch.Alarm;
  /** The function fed by the DLQ (stages with a dead-letter handler only). */
  public readonly deadLetterHandler?: RustLambda;
  /** A message reached the DLQ, even if the handler settled it at once (with a handler only). */
  public readonly deadLettersArrivedAlarm?: cloudwatch.Alarm;
  /** The dead-letter handler's invocations fail as a whole. */
  public readonly deadLetterHandlerErrorsAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: QueueWorkerProps) {
    super(scope, id);
    const { settings } = props;
    this.name = props.binaryName;
    this.settings = settings;
    const encrypted = {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
    };
    const deadLetterRemoval = props.retainDeadLetters ?? true ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const handler = props.deadLetterHandler;
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      ...encrypted,
      retentionPeriod: DEAD_LETTER_RETENTION,
      removalPolicy: deadLetterRemoval,
      ...(handler ? { visibilityTimeout: Duration.seconds(6 * handler.settings.timeoutSeconds) } : {}),
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      ...encrypted,
      visibilityTimeout: Duration.seconds(queueVisibilityTimeoutSeconds(settings)),
      retentionPeriod: QUEUE_RETENTION,
      deliveryDelay: props.deliveryDelay,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: settings.maxReceiveCount },
    });

    const timeout = Duration.seconds(settings.timeoutSeconds);
    this.lambda = new RustLambda(this, 'Function', {
      manifestPath: props.manifestPath,
      binaryName: props.binaryName,
      description: props.description,
      memorySize: settings.memoryMb,
      timeout,
      logRetention: props.logRetention,
      environment: {
        ...props.environment,
        MAX_RECEIVE_COUNT: String(settings.maxReceiveCount),
        RECORD_CONCURRENCY: String(settings.recordConcurrency),
        START_MARGIN_MS: String(startMarginMs(timeout)),
        ...(props.backoff
          ? {
              RETRY_BASE_SECONDS: String(props.backoff.baseSeconds),
              RETRY_MAX_SECONDS: String(props.backoff.maxSeconds),
              QUEUE_URL: this.queue.queueUrl,
            }
          : {}),
      },
    });
    this.lambda.function.addEventSource(
      new SqsEventSource(this.queue, {
        batchSize: settings.batchSize,
        maxBatchingWindow: Duration.seconds(settings.batchingWindowSeconds),
        reportBatchItemFailures: true,
        maxConcurrency: settings.maxConcurrency,
      }),
    );

    if (props.subscription) {
      this.subscriptionDeadLetterQueue = new sqs.Queue(this, 'SubscriptionDeadLetterQueue', {
        ...encrypted,
        retentionPeriod: DEAD_LETTER_RETENTION,
        removalPolicy: deadLetterRemoval,
      });
      props.subscription.topic.addSubscription(
        new subs.SqsSubscription(this.queue, {
          rawMessageDelivery: true,
          deadLetterQueue: this.subscriptionDeadLetterQueue,
          filterPolicy: props.subscription.filterPolicy,
        }),
      );
    }

    this.deadLetterAlarm = queueNotEmptyAlarm(
      this,
      'DeadLetters',
      this.deadLetterQueue,
      props.deadLetterAlarmDescription ??
        `Messages are in the ${this.name} DLQ: inspect them, fix the cause, redrive. See docs/operations.md.`,
    );
    this.queueAgeAlarm = this.queue
      .metricApproximateAgeOfOldestMessage({ period: MINUTE, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'QueueAge', {
        alarmDescription: `Messages wait too long in the ${this.name} queue: the function is failing or throttled.`,
        threshold: settings.queueAgeAlarmSeconds,
        evaluationPeriods: 5,
        ...BREACHING,
      });
    this.errorsAlarm = functionErrorsAlarm(
      this,
      'Errors',
      this.lambda.function,
      `${this.name} invocations fail as a whole: every record of a batch lacked a dependency. Check the table, the role and the function's logs.`,
    );
    if (this.subscriptionDeadLetterQueue) {
      this.undeliverableAlarm = queueNotEmptyAlarm(
        this,
        'Undeliverable',
        this.subscriptionDeadLetterQueue,
        `SNS could not deliver to the ${this.name} queue (queue policy or KMS key); the messages wait in its subscription DLQ.`,
      );
    }
    if (handler) {
      const handlerTimeout = Duration.seconds(handler.settings.timeoutSeconds);
      this.deadLetterHandler = new RustLambda(this, 'DeadLetterHandler', {
        manifestPath: props.manifestPath,
        binaryName: handler.binaryName,
        description: handler.description,
        features: handler.features ?? [],
        memorySize: handler.settings.memoryMb,
        timeout: handlerTimeout,
        logRetention: props.logRetention,
        environment: {
          ...props.environment,
          // The DLQ has no DLQ: a dead letter the handler cannot settle stays, and comes back.
          MAX_RECEIVE_COUNT: 'none',
          START_MARGIN_MS: String(startMarginMs(handlerTimeout)),
        },
      });
      this.deadLetterHandler.function.addEventSource(
        new SqsEventSource(this.deadLetterQueue, {
          batchSize: handler.settings.batchSize,
          reportBatchItemFailures: true,
          maxConcurrency: handler.settings.maxConcurrency,
        }),
      );
      this.deadLettersArrivedAlarm = (handler.alarmOnArrivals ?? true) ? this.deadLetterQueue
        .metricNumberOfMessagesReceived({ period: MINUTE, statistic: cloudwatch.Stats.SUM })
        .createAlarm(this, 'DeadLettersArrived', {
          alarmDescription: `Messages reached the ${this.name} DLQ; ${handler.binaryName} settles them (see its log). See docs/operations.md.`,
          threshold: 1,
          evaluationPeriods: 1,
          ...BREACHING,
        })
      : undefined;
      this.deadLetterHandlerErrorsAlarm = functionErrorsAlarm(
        this,
        'DeadLetterHandlerErrors',
        this.deadLetterHandler.function,
        `${handler.binaryName} invocations fail as a whole: the ${this.name} DLQ's messages are not settled. Check its log and the tables.`,
      );
    }
    notify(this.alarms, props.alarmActions);
  }

  /** Every alarm of the stage. */
  get alarms(): cloudwatch.Alarm[] {
    return [
      this.deadLetterAlarm,
      this.queueAgeAlarm,
      this.errorsAlarm,
      ...[this.undeliverableAlarm, this.deadLettersArrivedAlarm, this.deadLetterHandlerErrorsAlarm].filter(
        (a): a is cloudwatch.Alarm => a !== undefined,
      ),
    ];
  }

  /** Every dead-letter queue of the stage. */
  get deadLetterQueues(): sqs.Queue[] {
    return [this.deadLetterQueue, ...(this.subscriptionDeadLetterQueue ? [this.subscriptionDeadLetterQueue] : [])];
  }
}
