import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { QueueWorker } from './queue-worker';

export interface PipelineDashboardProps {
  /** One row of graphs per stage, in this order. */
  readonly stages: QueueWorker[];
}

/** The metric namespace the functions write their EMF metrics to (functions/order-pipeline). */
const NAMESPACE = 'OrderPipeline';

/**
 * A CloudWatch dashboard built from the stages: per stage, messages received and processed,
 * records failed, DLQ depth, the oldest message's age, and the function's duration and errors.
 */
export class PipelineDashboard extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: PipelineDashboardProps) {
    super(scope, id);
    const period = Duration.minutes(1);
    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
    for (const stage of props.stages) {
      const fn = stage.lambda.function;
      this.dashboard.addWidgets(
        new cloudwatch.TextWidget({ markdown: `### ${stage.name}`, width: 24, height: 1 }),
        new cloudwatch.GraphWidget({
          title: `${stage.name}: received, processed, failed`,
          left: [
            stage.queue.metricNumberOfMessagesReceived({ period, label: 'received' }),
            stage.queue.metricNumberOfMessagesDeleted({ period, label: 'processed' }),
            new cloudwatch.Metric({
              namespace: NAMESPACE,
              metricName: 'RecordsFailed',
              dimensionsMap: { service: stage.name },
              statistic: cloudwatch.Stats.SUM,
              period,
              label: 'failed',
            }),
          ],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: `${stage.name}: DLQ depth and oldest message age`,
          left: [stage.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, label: 'DLQ depth' })],
          right: [stage.queue.metricApproximateAgeOfOldestMessage({ period, label: 'oldest message (s)' })],
          width: 8,
        }),
        new cloudwatch.GraphWidget({
          title: `${stage.name}: duration and errors`,
          left: [fn.metricDuration({ period, statistic: cloudwatch.Stats.p(99), label: 'duration p99 (ms)' })],
          right: [fn.metricErrors({ period, label: 'errors' })],
          width: 8,
        }),
      );
    }
  }
}
