import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { buildApp } from '../infra/app';
import { OrderPipelineStack } from '../infra/pipeline-stack';

export const ROOT = path.join(__dirname, '..');

/** cdk.json's context: the settings every test starts from. */
export function cdkJsonContext(): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')).context;
}

/** An app as `cdk synth` builds it, with bundling skipped (no Rust build in unit tests). */
export function synthApp(overrides: Record<string, unknown> = {}): { app: App; stack: OrderPipelineStack } {
  const app = new App({
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides },
  });
  const stack = buildApp(app);
  return { app, stack };
}

export function template(overrides: Record<string, unknown> = {}): Template {
  return Template.fromStack(synthApp(overrides).stack);
}
