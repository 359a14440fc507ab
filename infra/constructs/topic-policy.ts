import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';

/**
 * Denies `sns:Publish` on `topic` to every principal for which `conditions` hold: the topic's
 * publishers are whoever the conditions leave out (a function's role, the named producer roles...).
 */
export function denyPublishUnless(topic: sns.Topic, sid: string, conditions: Record<string, unknown>): void {
  topic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid,
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['sns:Publish'],
      resources: [topic.topicArn],
      conditions,
    }),
  );
}
