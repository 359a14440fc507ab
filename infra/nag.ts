/**
 * The cdk-nag findings this stack accepts, each with the reason it is right here. Every other
 * finding fails synth (cdk-nag runs as a validation plugin) and test/nag.test.ts.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { OrderIntake } from './constructs/order-intake';
import { RustLambda } from './constructs/rust-lambda';

export interface NagScope {
  readonly stack: Stack;
  readonly consumer: RustLambda;
  readonly dlqAlarm: RustLambda;
  readonly intake: OrderIntake;
}

export function acknowledgeFindings({ consumer, dlqAlarm, intake }: NagScope): void {
  for (const fn of [consumer, dlqAlarm]) {
    Validations.of(fn.role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray active tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no resource-level permissions; it is the only wildcard in the role.',
    });
  }
  Validations.of(consumer.function).acknowledge({
    id: 'Serverless::Serverless-LambdaDLQ',
    reason:
      'order-consumer is invoked synchronously by its SQS event source mapping; a Lambda DLQ only applies to asynchronous invocations. Failed records go to the order queue\'s redrive DLQ after maxReceiveCount receives.',
  });
  Validations.of(consumer.function).acknowledge({
    id: 'Serverless::Serverless-LambdaEventSourceMappingDestination',
    reason:
      'On-failure destinations exist for stream sources only; for an SQS source the queue\'s own redrive policy (maxReceiveCount to the order DLQ) is the failure destination.',
  });
  Validations.of(dlqAlarm.function).acknowledge({
    id: 'Serverless::Serverless-LambdaDLQ',
    reason:
      'dlq-alarm is invoked by the DLQ-depth alarm, which notifies the ops topic itself in the same state change; a failed dlq-alarm run is logged and retried by Lambda, and the next state change invokes it again. Its input (the DLQ) stays in place, so nothing is lost without a Lambda DLQ.',
  });
  for (const dlq of [intake.deadLetterQueue, intake.subscriptionDeadLetterQueue]) {
    Validations.of(dlq).acknowledge({
      id: 'Serverless::Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself a terminal dead-letter queue; its messages wait (14 days) for an operator to inspect and redrive them.',
    });
  }
  Validations.of(intake.subscriptionDeadLetterQueue).acknowledge({
    id: 'AwsSolutions::AwsSolutions-SQS3',
    reason:
      'This queue is the order subscription\'s SNS redrive (dead-letter) queue, which cdk-nag cannot see: SNS, not SQS, sends to it.',
  });
}
