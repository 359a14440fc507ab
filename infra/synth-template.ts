/**
 * Writes the stack's CloudFormation template, synthesized from cdk.json's context with
 * bundling skipped (no Rust build), to the file given as the first argument. The local runner
 * (order-local) builds the emulated pipeline from it: `npx ts-node infra/synth-template.ts OUT`.
 * Context overrides may follow as key=value arguments, as with `cdk synth -c`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { App } from 'aws-cdk-lib';
import { buildApp } from './app';
import { ConfigError } from './config';

const [out, ...overrides] = process.argv.slice(2);
if (!out) {
  console.error('usage: ts-node infra/synth-template.ts OUT.json [key=value ...]');
  process.exit(2);
}
const root = path.join(__dirname, '..');
const context = JSON.parse(fs.readFileSync(path.join(root, 'cdk.json'), 'utf8')).context;
for (const pair of overrides) {
  const at = pair.indexOf('=');
  context[pair.slice(0, at)] = pair.slice(at + 1);
}
try {
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] }, outdir: fs.mkdtempSync(path.join(path.dirname(path.resolve(out)), '.synth-')) });
  const stack = buildApp(app);
  const assembly = app.synth();
  const template = assembly.getStackArtifact(stack.artifactId).template;
  fs.mkdirSync(path.dirname(path.resolve(out)), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(template, null, 1));
  fs.rmSync(assembly.directory, { recursive: true, force: true });
} catch (e) {
  if (e instanceof ConfigError) {
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
  throw e;
}
