import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** One minute: every alarm of the pipeline looks at one-minute datapoints. */
export const MINUTE = Duration.minutes(1);

/** At or above the threshold alarms; no data (an idle minute) is fine. */
export const BREACHING = {
  comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
  treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
};

/** Invocations of `fn` fail as a whole in 2 of 3 minutes (one blip does not page). */
export function functionErrorsAlarm(scope: Construct, id: string, fn: lambda.IFunction, description: string): cloudwatch.Alarm {
  return fn.metricErrors({ period: MINUTE, statistic: cloudwatch.Stats.SUM }).createAlarm(scope, id, {
    alarmDescription: description,
    threshold: 1,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    ...BREACHING,
  });
}

/**
 * At least one message is in `queue` (a dead-letter or failure queue), visible or in flight:
 * someone looking at the messages (dlq-alarm's snapshot, an operator polling the console) hides
 * them for a while, and that must not read as "recovered".
 */
export function queueNotEmptyAlarm(scope: Construct, id: string, queue: sqs.IQueue, description: string): cloudwatch.Alarm {
  const depth = new cloudwatch.MathExpression({
    expression: 'visible + inflight',
    usingMetrics: {
      visible: queue.metricApproximateNumberOfMessagesVisible({ period: MINUTE, statistic: cloudwatch.Stats.MAXIMUM }),
      inflight: queue.metricApproximateNumberOfMessagesNotVisible({ period: MINUTE, statistic: cloudwatch.Stats.MAXIMUM }),
    },
    label: 'messages, visible and in flight',
    period: MINUTE,
  });
  return depth.createAlarm(scope, id, { alarmDescription: description, threshold: 1, evaluationPeriods: 1, ...BREACHING });
}

/**
 * An alarm on any count of the pipeline's EMF metric `metricName` from the function whose
 * `service` is `service`, summed over 5 minutes (metric namespace of functions/order-pipeline).
 */
export function metricCountAlarm(scope: Construct, id: string, service: string, metricName: string, description: string): cloudwatch.Alarm {
  return new cloudwatch.Metric({
    namespace: 'OrderPipeline',
    metricName,
    dimensionsMap: { service },
    statistic: cloudwatch.Stats.SUM,
    period: Duration.minutes(5),
  }).createAlarm(scope, id, {
    alarmDescription: description,
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
}

/** Every alarm of `alarms` notifies `actions` on ALARM and on OK. */
export function notify(alarms: cloudwatch.Alarm[], actions: cloudwatch.IAlarmAction[] = []): void {
  for (const alarm of alarms) {
    alarm.addAlarmAction(...actions);
    alarm.addOkAction(...actions);
  }
}
