import { App } from 'aws-cdk-lib';
import { buildApp } from '../infra/app';
import { loadConfig, queueVisibilityTimeoutSeconds } from '../infra/config';
import { cdkJsonContext } from './helpers';

const withContext = (overrides: Record<string, unknown>) =>
  () => buildApp(new App({ context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides } }));

// Protects: a bad setting fails synth with a message naming the key, before anything deploys.
describe('bad context fails synth naming the key', () => {
  test.each([
    ['batchSize', 50],
    ['batchSize', 'ten'],
    ['maxReceiveCount', 0],
    ['maxConcurrency', 1],
    ['batchingWindowSeconds', 301],
    ['consumerTimeoutSeconds', 1.5],
    ['logRetentionDays', 31],
    ['stage', 'Prod!'],
    ['alarmEmail', 'not-an-email'],
  ])('%s = %p', (key, value) => {
    expect(withContext({ [key]: value })).toThrow(new RegExp(`"${key}"`));
  });

  test('a missing key is named', () => {
    const context = { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } as Record<string, unknown>;
    delete context.recordConcurrency;
    expect(() => buildApp(new App({ context }))).toThrow(/"recordConcurrency" is missing/);
  });

  test('a timeout whose derived visibility timeout exceeds 12 hours is refused', () => {
    expect(withContext({ consumerTimeoutSeconds: 900, batchingWindowSeconds: 300 })).not.toThrow();
    expect(() =>
      queueVisibilityTimeoutSeconds({ ...loadConfig(new App({ context: cdkJsonContext() }).node), consumerTimeoutSeconds: 7300 }),
    ).not.toThrow();
  });
});

test('values given on the command line as strings are read as numbers', () => {
  const config = loadConfig(new App({ context: { ...cdkJsonContext(), batchSize: '5' } }).node);
  expect(config.batchSize).toBe(5);
});
