import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface PipelineAlarmsProps {
  /** Every alarm notifies it. */
  readonly opsTopic: sns.ITopic;
  readonly queue: sqs.IQueue;
  readonly deadLetterQueue: sqs.IQueue;
  readonly subscriptionDeadLetterQueue: sqs.IQueue;
  readonly consumer: lambda.IFunction;
  /** Invoked on every state change of the DLQ-depth alarm. */
  readonly dlqAlarmFunction: lambda.IFunction;
  /** Age of the oldest order-queue message that raises the queue-age alarm. */
  readonly queueAgeThreshold: Duration;
}

/**
 * The alarms, built from the resources they watch:
 * - DLQ depth >= 1: ALARM and OK invoke dlq-alarm and notify the ops topic;
 * - age of the oldest order-queue message: the consumer is falling behind;
 * - order-consumer errors: invocations failing as a whole (e.g. DynamoDB unavailable);
 * - subscription DLQ depth >= 1: SNS could not deliver orders to the queue.
 */
export class PipelineAlarms extends Construct {
  public readonly dlqDepth: cloudwatch.Alarm;
  public readonly queueAge: cloudwatch.Alarm;
  public readonly consumerErrors: cloudwatch.Alarm;
  public readonly undeliverable: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: PipelineAlarmsProps) {
    super(scope, id);
    const notifyOps = new actions.SnsAction(props.opsTopic);
    const minute = Duration.minutes(1);

    this.dlqDepth = props.deadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period: minute, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'DlqDepth', {
        alarmDescription: 'Messages are in the order DLQ: dlq-alarm marks their orders FAILED and pages ops. See docs/operations.md.',
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    const invokeDlqAlarm = new actions.LambdaAction(props.dlqAlarmFunction);
    this.dlqDepth.addAlarmAction(invokeDlqAlarm, notifyOps);
    this.dlqDepth.addOkAction(invokeDlqAlarm, notifyOps);

    this.queueAge = props.queue
      .metricApproximateAgeOfOldestMessage({ period: minute, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'QueueAge', {
        alarmDescription: 'Orders wait too long in the order queue: the consumer is failing or throttled.',
        threshold: props.queueAgeThreshold.toSeconds(),
        evaluationPeriods: 5,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.queueAge.addAlarmAction(notifyOps);
    this.queueAge.addOkAction(notifyOps);

    this.consumerErrors = props.consumer
      .metricErrors({ period: minute, statistic: cloudwatch.Stats.SUM })
      .createAlarm(this, 'ConsumerErrors', {
        alarmDescription: 'order-consumer invocations fail as a whole: every record of a batch failed in DynamoDB. Check the table and the role.',
        threshold: 1,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.consumerErrors.addAlarmAction(notifyOps);
    this.consumerErrors.addOkAction(notifyOps);

    this.undeliverable = props.subscriptionDeadLetterQueue
      .metricApproximateNumberOfMessagesVisible({ period: minute, statistic: cloudwatch.Stats.MAXIMUM })
      .createAlarm(this, 'Undeliverable', {
        alarmDescription: 'SNS could not deliver orders to the order queue (queue policy or KMS key); they wait in the subscription DLQ.',
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    this.undeliverable.addAlarmAction(notifyOps);
  }
}
