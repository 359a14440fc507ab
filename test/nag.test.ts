import { synthApp } from './helpers';

// Protects: every AwsSolutions and Serverless cdk-nag finding is fixed or acknowledged with a
// specific reason (infra/nag.ts). cdk-nag runs as a CDK validation plugin, so an
// unacknowledged finding fails synthesis, here and in `cdk synth`/`cdk deploy`.
test('synthesis passes the AwsSolutions and Serverless cdk-nag packs', () => {
  const { app } = synthApp();
  expect(() => app.synth()).not.toThrow();
});

// Protects: naming producer roles that may publish orders (orderPublisherRoleArns: the topic's and
// the key's grants to them) adds no finding either.
test('synthesis passes cdk-nag with producer roles named', () => {
  const { app } = synthApp({
    orderPublisherRoleArns: ['arn:aws:iam::111111111111:role/order-producer', 'arn:aws:iam::222222222222:role/partners/bulk-orders'],
  });
  expect(() => app.synth()).not.toThrow();
});
