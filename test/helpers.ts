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

// Every App writes a cloud assembly; without an outdir CDK makes one in the system temp
// directory per App and never removes it. Tests keep theirs under target/ and remove them.
const TEST_OUT = path.join(ROOT, 'target', 'cdk-test');
const outdirs: string[] = [];
afterAll(() => {
  for (const dir of outdirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** An App for a test, with `context`, whose assembly directory is removed after the file's tests. */
export function testApp(context: Record<string, unknown>): App {
  fs.mkdirSync(TEST_OUT, { recursive: true });
  const outdir = fs.mkdtempSync(path.join(TEST_OUT, 'app-'));
  outdirs.push(outdir);
  return new App({ context, outdir });
}

/** An app as `cdk synth` builds it, with bundling skipped (no Rust build in unit tests). */
export function synthApp(overrides: Record<string, unknown> = {}): { app: App; stack: OrderPipelineStack } {
  const app = testApp({ ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides });
  const stack = buildApp(app);
  return { app, stack };
}

export function template(overrides: Record<string, unknown> = {}): Template {
  return Template.fromStack(synthApp(overrides).stack);
}
