import { buildApp } from '../infra/app';
import {
  checkSettings, FEATURES, FUNCTION_NAMES, FunctionsConfig, loadConfig, queueVisibilityTimeoutSeconds, rangesOf, workQueueNames,
} from '../infra/config';
import { Registry } from '../infra/registry';
import { cdkJsonContext, testApp } from './helpers';

const withContext = (overrides: Record<string, unknown>) =>
  () => buildApp(testApp({ ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [], ...overrides }));
/** Reads the settings only (no stack): fast enough to run per key. */
const configWith = (overrides: Record<string, unknown>) => () => loadConfig(testApp({ ...cdkJsonContext(), ...overrides }).node);
const escape = (key: string) => key.replace(/[.]/g, '\\.');
/** Every key of every function's block, with its range, from the stage table. */
const everyKey = FUNCTION_NAMES.flatMap((name) => Object.entries(rangesOf(name)).map(([key, [min, max]]) => [`functions.${name}.${key}`, min, max] as const));

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
    ['defaultCurrency', 'usd'],
    ['defaultCurrency', 'DOLLAR'],
  ])('%s = %p', (key, value) => {
    expect(withContext({ [key]: value })).toThrow(new RegExp(`"${key.replace(/\./g, '\\.')}"`));
  });

  // Protects: the stack's default currency is a setting (issue 30: every order has one).
  test('defaultCurrency reaches the functions that price from the Inventory, USD when unset', () => {
    expect(configWith({ defaultCurrency: 'EUR' })().defaultCurrency).toBe('EUR');
    const { defaultCurrency, ...rest } = cdkJsonContext() as Record<string, unknown>;
    expect(defaultCurrency).toBe('USD');
    expect(loadConfig(testApp(rest).node).defaultCurrency).toBe('USD');
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

  // Protects: no key of any block escapes its range check, whichever function or feature it belongs to.
  test.each(everyKey)('every key of every function block is range-checked: %s above %p..%p is refused', (key, _min, max) => {
    expect(configWith({ [key]: max + 1 })).toThrow(new RegExp(`"${escape(key)}" is invalid: expected a whole number from`));
  });

  // Protects: a function whose cdk.json block is missing fails synth naming its first key, for every row of the table.
  test.each(FUNCTION_NAMES)('a function without a cdk.json block fails synth naming its missing key: %s', (name) => {
    const context = cdkJsonContext() as Record<string, any>;
    const { [name]: block, ...others } = context.functions;
    expect(block).toBeDefined();
    expect(configWith({ functions: others })).toThrow(new RegExp(`"functions\\.${escape(name)}\\.memoryMb" is missing`));
  });

  // Protects: the visibility check is derived from the table: every function with a work queue is
  // checked (none is silently left out), and they are exactly the registry's queue-fed functions.
  test.each(workQueueNames())('the visibility-timeout check covers every function with a work queue: %s', (name) => {
    const functions = loadConfig(testApp(cdkJsonContext()).node).functions;
    expect(() => checkSettings(functions)).not.toThrow();
    const tooLong = { ...functions, [name]: { ...functions[name], timeoutSeconds: 7300 } } as FunctionsConfig;
    expect(() => checkSettings(tooLong)).toThrow(
      new RegExp(`"functions\\.${escape(name)}\\.timeoutSeconds" is invalid: 6 x 7300 s \\+ the \\d+ s batching window exceeds SQS's 12-hour visibility timeout`),
    );
  });

  test('the functions with a work queue are the registry\'s queue-fed functions (trigger sqs, not a dead-letter handler)', () => {
    const queueFed = Registry.load().functions.filter((f) => f.trigger === 'sqs' && f.deadLettersOf === undefined).map((f) => f.name);
    expect([...workQueueNames()].sort()).toEqual(queueFed.sort());
  });

  // Protects: a feature's own checks run for the function that has it, naming the function's key.
  test('the features\' checks: retryMaxSeconds below retryBaseSeconds, maxAttempts not below maxReceiveCount', () => {
    expect(configWith({ 'functions.payment.retryBaseSeconds': 60, 'functions.payment.retryMaxSeconds': 30 })).toThrow(
      '"functions.payment.retryMaxSeconds" is invalid: it must be at least retryBaseSeconds (60)',
    );
    expect(configWith({ 'functions.payment.maxAttempts': 6 })).toThrow(/"functions\.payment\.maxAttempts" is invalid: 6 attempts need a maxReceiveCount above it/);
    // The watch holds every message stuckAfterMinutes: a queue-age alarm at or below that would ring on a healthy watch.
    expect(configWith({ 'functions.order-watch.queueAgeAlarmSeconds': 1095 })).toThrow(/1095 must be above 1095/);
    expect(configWith({ 'functions.order-watch.queueAgeAlarmSeconds': 900 })).toThrow(
      /"functions\.order-watch\.queueAgeAlarmSeconds" is invalid: 900 must be above 1095 \(stuckAfterMinutes × 60 \+ maxReceiveCount × the queue's visibility timeout\)/,
    );
    expect(configWith({ 'functions.order-watch.stuckAfterMinutes': 16 })).toThrow(/stuckAfterMinutes/);
  });
});

// Protects: a function's block takes its kind's keys and its features' keys, nothing else.
test("a feature's settings belong to the functions that have the feature only", () => {
  const config = loadConfig(testApp(cdkJsonContext()).node);
  for (const key of Object.keys(FEATURES.backoff)) expect(Object.keys(config.functions.payment)).toContain(key);
  for (const key of Object.keys(FEATURES['payment-provider'])) expect(Object.keys(config.functions.payment)).toContain(key);
  expect(Object.keys(config.functions.inventory)).not.toContain('maxAttempts');
  expect(configWith({ 'functions.inventory.maxAttempts': 4 })).toThrow(/"functions\.inventory\.maxAttempts" is unknown: did you mean/);
});

// Protects: a typo in a key is an error that names the closest known key, not a silent default.
describe('unknown context keys fail synth with the closest known key', () => {
  test.each([
    ['batchsize', 'functions.order-consumer.batchSize'],
    ['maxRecieveCount', 'functions.order-consumer.maxReceiveCount'],
    ['functions.order-consumer.memoryMB', 'functions.order-consumer.memoryMb'],
    ['functions.order-consumr.memoryMb', 'functions.order-consumer'],
    ['stgae', 'stage'],
    ['functions.payment.retryBaseSecond', 'functions.payment.retryBaseSeconds'],
    ['functions.payment-dlq.batchsize', 'functions.payment-dlq.batchSize'],
  ])('%s suggests %s', (typo, suggestion) => {
    expect(withContext({ [typo]: 5 })).toThrow(`did you mean "${suggestion}"`);
  });

  // Protects: a typo in any function's block is caught and corrected, whichever row it is.
  test.each(FUNCTION_NAMES)('a typo in the block of %s names the closest key of that block', (name) => {
    expect(configWith({ [`functions.${name}.memoryMB`]: 5 })).toThrow(`"functions.${name}.memoryMB" is unknown: did you mean "functions.${name}.memoryMb"?`);
  });

  test("CDK's own keys (feature flags, CLI settings) are not ours to check", () => {
    expect(withContext({ '@aws-cdk/core:newStyleStackSynthesis': true, 'aws:cdk:enable-path-metadata': true })).not.toThrow();
  });
});

// Protects: the producer roles allowed to publish orders are IAM role ARNs; anything else fails
// synth naming the setting, before a topic policy that names a wrong principal deploys.
describe('orderPublisherRoleArns', () => {
  const roles = ['arn:aws:iam::111111111111:role/order-producer', 'arn:aws-cn:iam::222222222222:role/partners/bulk-orders'];

  test('none by default; a list, or ARNs separated by commas on the command line', () => {
    expect(configWith({})().orderPublisherRoleArns).toEqual([]);
    const { orderPublisherRoleArns, ...rest } = cdkJsonContext();
    expect(orderPublisherRoleArns).toEqual([]);
    expect(loadConfig(testApp(rest).node).orderPublisherRoleArns).toEqual([]);
    expect(configWith({ orderPublisherRoleArns: roles })().orderPublisherRoleArns).toEqual(roles);
    expect(configWith({ orderPublisherRoleArns: roles.join(',') })().orderPublisherRoleArns).toEqual(roles);
    expect(configWith({ orderPublisherRoleArns: JSON.stringify(roles) })().orderPublisherRoleArns).toEqual(roles);
  });

  test.each([
    ['a user', 'arn:aws:iam::111111111111:user/alice'],
    ['an assumed-role session', 'arn:aws:sts::111111111111:assumed-role/order-producer/session'],
    ['an account id that is not 12 digits', 'arn:aws:iam::1111:role/order-producer'],
    ['a wildcard', 'arn:aws:iam::111111111111:role/*'],
    ['a role name alone', 'order-producer'],
    ['not a string', 42],
  ])('%s is refused, naming the setting', (_what, arn) => {
    expect(configWith({ orderPublisherRoleArns: [roles[0], arn] })).toThrow(/Context key "orderPublisherRoleArns" is invalid: expected IAM role ARNs/);
  });

  test('a value that is not a list, or a role listed twice, is refused naming the setting', () => {
    expect(configWith({ orderPublisherRoleArns: { role: roles[0] } })).toThrow(/"orderPublisherRoleArns" is invalid: expected a list of IAM role ARNs/);
    expect(configWith({ orderPublisherRoleArns: [roles[0], roles[0]] })).toThrow(/"orderPublisherRoleArns" is invalid: .* is listed twice/);
  });

  test('a typo in the key names it', () => {
    expect(configWith({ orderPublisherRoleArn: [] })).toThrow('did you mean "orderPublisherRoleArns"?');
  });
});

test('a function setting given on the command line as a dotted string is read as a number', () => {
  const config = loadConfig(testApp({ ...cdkJsonContext(), 'functions.order-consumer.batchSize': '5' }).node);
  expect(config.functions['order-consumer'].batchSize).toBe(5);
  expect(config.functions['order-consumer'].memoryMb).toBe(256);
});
