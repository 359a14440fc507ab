import { synthApp } from './helpers';

// Protects: every AwsSolutions and Serverless cdk-nag finding is fixed or acknowledged with a
// specific reason (infra/nag.ts). cdk-nag runs as a CDK validation plugin, so an
// unacknowledged finding fails synthesis, here and in `cdk synth`/`cdk deploy`.
test('synthesis passes the AwsSolutions and Serverless cdk-nag packs', () => {
  const { app } = synthApp();
  expect(() => app.synth()).not.toThrow();
});
