#!/usr/bin/env node
/**
 * The CDK app: `npx cdk synth | deploy | destroy`. Settings come from cdk.json's context (see
 * infra/config.ts); the stack is named OrderPipeline-<stage>.
 */
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import { ConfigError, loadConfig } from './config';
import { OrderPipelineStack } from './pipeline-stack';

/** Adds the pipeline stack and the cdk-nag packs to `app`. */
export function buildApp(app: App): OrderPipelineStack {
  const config = loadConfig(app.node);
  const stack = new OrderPipelineStack(app, `OrderPipeline-${config.stage}`, {
    config,
    description: `Event-driven order pipeline (${config.stage}): SNS -> SQS -> Rust Lambda -> DynamoDB`,
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app), new ServerlessChecks(app));
  return stack;
}

if (require.main === module) {
  try {
    buildApp(new App());
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`error: ${e.message}`);
      process.exit(1);
    }
    throw e;
  }
}
