/**
 * The cdk-nag findings this stack accepts, each with the reason it is right here. Every other
 * finding fails synth (cdk-nag runs as a validation plugin) and test/nag.test.ts. The
 * acknowledgements follow the stages: a new stage gets the same reasoned ones, nothing more.
 */
import { Validations } from 'aws-cdk-lib';
import { OrderApi } from './constructs/order-api';
import { OrderEvents } from './constructs/order-events';
import { QueueWorker } from './constructs/queue-worker';
import { RustLambda } from './constructs/rust-lambda';

export interface NagScope {
  /** The queue-fed stages. */
  readonly stages: QueueWorker[];
  /** Functions invoked by a CloudWatch alarm (asynchronously, with the alarm as their record). */
  readonly alarmFunctions: RustLambda[];
  /** The HTTP API, when the stack has one. */
  readonly api?: OrderApi;
  /** The stream-fed events function, when the stack has one. */
  readonly events?: OrderEvents;
}

export function acknowledgeFindings({ stages, alarmFunctions, api, events }: NagScope): void {
  const handlers = stages.flatMap((s) => (s.deadLetterHandler ? [s.deadLetterHandler] : []));
  const others = [...(api ? [api.lambda] : []), ...(events ? [events.lambda] : []), ...handlers];
  for (const fn of [...stages.map((s) => s.lambda), ...alarmFunctions, ...others]) {
    Validations.of(fn.role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason:
        'Resource * appears only on actions that support no resource-level permissions: xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) and, for the stream-fed order-events, dynamodb:ListStreams (its stream mapping). Every other action names its resource.',
    });
  }
  for (const handler of handlers) {
    Validations.of(handler.function).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason: `${handler.binaryName} is invoked synchronously by the event source mapping of a stage's DLQ; a dead letter it cannot settle stays in that DLQ (its alarms stay on) for an operator.`,
    });
    Validations.of(handler.function).acknowledge({
      id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
      reason: 'Its source is itself a terminal DLQ: a dead letter it cannot settle stays there, visible to its alarms, rather than moving on.',
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
  if (events) {
    Validations.of(events.lambda.function).acknowledge({
      id: 'Serverless::Serverless-LambdaDLQ',
      reason:
        'order-events is invoked by its DynamoDB stream mapping, whose on-failure destination (an encrypted SQS queue) receives every record that fails after the retries; a Lambda DLQ applies to asynchronous invocations only.',
    });
    Validations.of(events.failures).acknowledge({
      id: 'AwsSolutions::AwsSolutions-SQS3',
      reason:
        "This queue is the Orders stream mapping's on-failure destination, itself the place where failed records end; it needs no DLQ of its own.",
    });
    Validations.of(events.failures).acknowledge({
      id: 'Serverless::Serverless-SQSRedrivePolicy',
      reason: 'This queue is terminal: it holds descriptions of stream records that failed, for an operator (14 days).',
    });
  }
}
