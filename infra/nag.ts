/**
 * The cdk-nag findings this stack accepts, each with the reason it is right here. Every other
 * finding fails synth (cdk-nag runs as a validation plugin) and test/nag.test.ts. The
 * acknowledgements follow the stages: a new stage gets the same reasoned ones, nothing more.
 */
import { Validations } from 'aws-cdk-lib';
import { OrderApi } from './constructs/order-api';
import { QueueWorker } from './constructs/queue-worker';
import { RustLambda } from './constructs/rust-lambda';

export interface NagScope {
  /** The queue-fed stages. */
  readonly stages: QueueWorker[];
  /** Functions invoked by a CloudWatch alarm (asynchronously, with the alarm as their record). */
  readonly alarmFunctions: RustLambda[];
  /** The HTTP API, when the stack has one. */
  readonly api?: OrderApi;
}

export function acknowledgeFindings({ stages, alarmFunctions, api }: NagScope): void {
  for (const fn of [...stages.map((s) => s.lambda), ...alarmFunctions, ...(api ? [api.lambda] : [])]) {
    Validations.of(fn.role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions; it is the only wildcard in the role.',
    });
  }
  for (const stage of stages) {
    Validations.of(stage.lambda.function).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason: `${stage.name} is invoked synchronously by its SQS event source mapping; a Lambda DLQ only applies to asynchronous invocations. Failed records go to the stage queue's redrive DLQ after maxReceiveCount receives.`,
    });
    Validations.of(stage.lambda.function).acknowledge({
      id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
      reason:
        "On-failure destinations exist for stream sources only; for an SQS source the queue's own redrive policy (maxReceiveCount to the stage's DLQ) is the failure destination.",
    });
    for (const dlq of stage.deadLetterQueues) {
      Validations.of(dlq).acknowledge({
        id: 'Serverless::Serverless-SQSRedrivePolicy',
        reason: 'This queue is itself a terminal dead-letter queue; its messages wait (14 days) for an operator to inspect and redrive them.',
      });
    }
    if (stage.subscriptionDeadLetterQueue) {
      Validations.of(stage.subscriptionDeadLetterQueue).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SQS3',
        reason: "This queue is a subscription's SNS redrive (dead-letter) queue, which cdk-nag cannot see: SNS, not SQS, sends to it.",
      });
    }
  }
  for (const fn of alarmFunctions) {
    Validations.of(fn.function).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'Invoked by a DLQ-depth alarm, which notifies the ops topic itself in the same state change; a failed run is logged and retried by Lambda, and the next state change invokes it again. Its input (the DLQ) stays in place, so nothing is lost without a Lambda DLQ.',
    });
  }
  if (api) {
    Validations.of(api.lambda.function).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'order-api is invoked synchronously by API Gateway: a failure is the caller\'s HTTP error (503 with Retry-After), which the caller retries; there is no asynchronous event to keep.',
    });
  }
}
