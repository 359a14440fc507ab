import { buildApp } from '../infra/app';
import { loadConfig, queueVisibilityTimeoutSeconds } from '../infra/config';
import { cdkJsonContext, testApp } from './helpers';

const withContext = (overrides: Record<string, unknown>) =>
  () => buildApp(testApp({ ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides }));

// Protects: a bad setting fails synth with a message naming the key, before anything deploys.
describe('bad context fails synth naming the key', () => {
  test.each([
    ['functions.order-consumer.batchSize', 50],
    ['functions.order-consumer.batchSize', 'ten'],
    ['functions.order-consumer.maxReceiveCount', 0],
    ['functions.order-consumer.maxConcurrency', 1],
    ['functions.order-consumer.batchingWindowSeconds', 301],
    ['functions.order-consumer.timeoutSeconds', 1.5],
    ['functions.dlq-alarm.snapshotMax', 0],
    ['logRetentionDays', 31],
    ['stage', 'Prod!'],
    ['alarmEmail', 'not-an-email'],
  ])('%s = %p', (key, value) => {
    expect(withContext({ [key]: value })).toThrow(new RegExp(`"${key.replace(/\./g, '\\.')}"`));
  });

  test('a missing key is named', () => {
    const context = { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] } as Record<string, any>;
    const { recordConcurrency, ...rest } = context.functions['order-consumer'];
    expect(recordConcurrency).toBeDefined();
    context.functions = { ...context.functions, 'order-consumer': rest };
    expect(() => buildApp(testApp(context))).toThrow(/"functions\.order-consumer\.recordConcurrency" is missing/);
  });

  test('a timeout whose derived visibility timeout exceeds 12 hours is refused', () => {
    expect(withContext({ 'functions.order-consumer.timeoutSeconds': 900, 'functions.order-consumer.batchingWindowSeconds': 300 })).not.toThrow();
    const settings = loadConfig(testApp(cdkJsonContext()).node).functions['order-consumer'];
    expect(queueVisibilityTimeoutSeconds({ ...settings, timeoutSeconds: 7300 })).toBeGreaterThan(43_200);
  });
});

// Protects: a typo in a key is an error that names the closest known key, not a silent default.
describe('unknown context keys fail synth with the closest known key', () => {
  test.each([
    ['batchsize', 'functions.order-consumer.batchSize'],
    ['maxRecieveCount', 'functions.order-consumer.maxReceiveCount'],
    ['functions.order-consumer.memoryMB', 'functions.order-consumer.memoryMb'],
    ['functions.order-consumr.memoryMb', 'functions.order-consumer'],
    ['stgae', 'stage'],
  ])('%s suggests %s', (typo, suggestion) => {
    expect(withContext({ [typo]: 5 })).toThrow(`did you mean "${suggestion}"`);
  });

  test("CDK's own keys (feature flags, CLI settings) are not ours to check", () => {
    expect(withContext({ '@aws-cdk/core:newStyleStackSynthesis': true, 'aws:cdk:enable-path-metadata': true })).not.toThrow();
  });
});

test('a function setting given on the command line as a dotted string is read as a number', () => {
  const config = loadConfig(testApp({ ...cdkJsonContext(), 'functions.order-consumer.batchSize': '5' }).node);
  expect(config.functions['order-consumer'].batchSize).toBe(5);
  expect(config.functions['order-consumer'].memoryMb).toBe(256);
});
