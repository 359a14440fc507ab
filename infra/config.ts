/**
 * The pipeline's settings: one typed config read from CDK context (cdk.json's "context" block).
 *
 * Pipeline-wide keys sit at the top level; each function has a block under "functions", keyed
 * by its binary name. Any setting can be overridden per command with `-c key=value`, a
 * function's with a dotted key: `-c functions.order-consumer.memoryMb=512`. A missing,
 * malformed or unknown key fails synth with a message naming it (and, for an unknown key, the
 * closest known one). The local runner reads nothing of this: it reads the synthesized
 * template, so it sees exactly what these settings produce.
 */
import { Node } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** Settings every Lambda function has. */
export interface FunctionSettings {
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
}

/** Settings of a queue-fed function (a stage): its function, its queue and its mapping. */
export interface WorkerSettings extends FunctionSettings {
  /** Records per invocation (1-10). */
  readonly batchSize: number;
  /** How long the event source mapping gathers records before invoking (0-300 s). */
  readonly batchingWindowSeconds: number;
  /** Most concurrent invocations the mapping starts (2-1000). */
  readonly maxConcurrency: number;
  /** Records of one batch processed at once inside the function (1-100). */
  readonly recordConcurrency: number;
  /** Receives of a message before it moves to the stage's DLQ (1-1000). */
  readonly maxReceiveCount: number;
  /** The queue's oldest-message age that raises the stage's queue-age alarm. */
  readonly queueAgeAlarmSeconds: number;
}

/** Settings of a stream-fed function. */
export interface StreamSettings extends FunctionSettings {
  /** Stream records per invocation (1-1000). */
  readonly batchSize: number;
  /** Retries of a failing record before it goes to the on-failure queue (0-10000). */
  readonly maxRetryAttempts: number;
  /** The iterator age (seconds behind the stream) that raises the alarm. */
  readonly iteratorAgeAlarmSeconds: number;
}

/** The payment stage's settings: a stage's, plus its attempts, backoff and simulated provider. */
export interface PaymentSettings extends WorkerSettings {
  /** Calls to the provider before an order it keeps answering "unavailable" is PAYMENT_FAILED (below maxReceiveCount). */
  readonly maxAttempts: number;
  /** An unavailable attempt comes back after this, doubling per attempt... */
  readonly retryBaseSeconds: number;
  /** ...up to this. */
  readonly retryMaxSeconds: number;
  /** The HTTP provider's answer must arrive within this. */
  readonly providerTimeoutMs: number;
  /** The simulated provider declines amounts above this. */
  readonly simulatedDeclineOver: number;
  /** The simulated provider answers "unavailable" to this share of calls (percent). */
  readonly simulatedUnavailablePercent: number;
}

/** A dead-letter handler's settings (a function fed by a stage's DLQ). */
export interface DeadLetterHandlerSettings extends FunctionSettings {
  /** Dead letters per invocation (1-10). */
  readonly batchSize: number;
  /** Most concurrent invocations (2-1000). */
  readonly maxConcurrency: number;
}

/** dlq-alarm's settings. */
export interface DlqAlarmSettings extends FunctionSettings {
  /** Most DLQ messages dlq-alarm looks at per alarm. */
  readonly snapshotMax: number;
  /** Minutes between scheduled sweeps (dead letters that arrive while the alarm stays in ALARM). */
  readonly sweepMinutes: number;
}

/** The order API's authorization and throttling. */
export interface ApiSettings {
  /** Steady requests per second the stage allows (1-10000). */
  readonly throttleRate: number;
  /** Burst of requests the stage allows (1-5000). */
  readonly throttleBurst: number;
  /** A JWT issuer URL: callers then present a JWT instead of signing with SigV4. */
  readonly jwtIssuer?: string;
  /** The audiences a JWT must name (with jwtIssuer). */
  readonly jwtAudience: string[];
}

export interface PipelineConfig {
  /** Deployment stage. `dev` allows deleting the table, DLQs and key; any other stage keeps them. */
  readonly stage: string;
  /** Days the functions' logs are kept; one of CloudWatch Logs' retention values. */
  readonly logRetentionDays: number;
  /** An email address subscribed to the ops topic; empty for none. */
  readonly alarmEmail?: string;
  /** An email address subscribed to the customer-notifications topic (a demo inbox); empty for none. */
  readonly notificationEmail?: string;
  /** The payment provider: its HTTP API's base URL and the secret holding its API key; none for the simulated provider. */
  readonly paymentProvider?: { readonly url: string; readonly secretArn: string };
  readonly api: ApiSettings;
  readonly functions: {
    readonly 'order-consumer': WorkerSettings;
    readonly 'dlq-alarm': DlqAlarmSettings;
    readonly 'order-api': FunctionSettings;
    readonly 'order-events': StreamSettings;
    readonly inventory: WorkerSettings;
    readonly payment: PaymentSettings;
    readonly 'payment-dlq': DeadLetterHandlerSettings;
    readonly notification: WorkerSettings;
  };
}

/** A context key that is missing, out of range or unknown fails synth with a message naming it. */
export class ConfigError extends Error {}

const RETENTION_DAYS = new Set(
  Object.values(RetentionDays).filter((v): v is number => typeof v === 'number'),
);

/** Each key a block takes, with its range. */
type Ranges = Record<string, [number, number]>;

const FUNCTION_RANGES: Ranges = { memoryMb: [128, 10240], timeoutSeconds: [1, 900] };
const WORKER_RANGES: Ranges = {
  ...FUNCTION_RANGES,
  batchSize: [1, 10],
  batchingWindowSeconds: [0, 300],
  maxConcurrency: [2, 1000],
  recordConcurrency: [1, 100],
  maxReceiveCount: [1, 1000],
  queueAgeAlarmSeconds: [60, 1_209_600],
};
const FUNCTIONS: Record<keyof PipelineConfig['functions'], Ranges> = {
  'order-consumer': WORKER_RANGES,
  'dlq-alarm': { ...FUNCTION_RANGES, snapshotMax: [1, 10000], sweepMinutes: [1, 1440] },
  'order-api': FUNCTION_RANGES,
  'order-events': { ...FUNCTION_RANGES, batchSize: [1, 1000], maxRetryAttempts: [0, 10000], iteratorAgeAlarmSeconds: [10, 86400] },
  inventory: WORKER_RANGES,
  payment: {
    ...WORKER_RANGES,
    maxAttempts: [1, 100],
    retryBaseSeconds: [1, 43_200],
    retryMaxSeconds: [1, 43_200],
    providerTimeoutMs: [100, 60_000],
    simulatedDeclineOver: [0, 1_000_000_000],
    simulatedUnavailablePercent: [0, 100],
  },
  'payment-dlq': { ...FUNCTION_RANGES, batchSize: [1, 10], maxConcurrency: [2, 1000] },
  notification: WORKER_RANGES,
};
const TOP_LEVEL = [
  'stage', 'logRetentionDays', 'alarmEmail', 'notificationEmail', 'paymentProviderUrl', 'paymentSecretArn', 'apiThrottleRate', 'apiThrottleBurst', 'apiJwtIssuer', 'apiJwtAudience', 'functions',
];

/** The SQS limit on a queue's visibility timeout. */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * At least six times the function's timeout plus the batching window (AWS's guidance for SQS
 * event sources), so a message is never visible again while an invocation may still hold it.
 */
export function queueVisibilityTimeoutSeconds(settings: WorkerSettings): number {
  return 6 * settings.timeoutSeconds + settings.batchingWindowSeconds;
}

function wholeNumber(key: string, raw: unknown, [min, max]: [number, number]): number {
  if (raw === undefined || raw === null || raw === '') {
    throw new ConfigError(`Context key "${key}" is missing: set it in cdk.json's "context" block or pass -c ${key}=VALUE`);
  }
  const value = typeof raw === 'number' ? raw : Number(String(raw).trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`Context key "${key}" is invalid: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) {
      row[j] = Math.min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[y.length];
}

/** Every key a setting can be given under, dotted for the function blocks. */
function knownKeys(): string[] {
  return [
    ...TOP_LEVEL.filter((k) => k !== 'functions'),
    ...Object.entries(FUNCTIONS).flatMap(([name, ranges]) => Object.keys(ranges).map((k) => `functions.${name}.${k}`)),
  ];
}

/** A key's distance from a known one, or from the known one's last part (`batchsize` ~ `...batchSize`). */
function closeness(key: string, known: string): number {
  const last = (k: string) => k.slice(k.lastIndexOf('.') + 1);
  return Math.min(distance(key, known), distance(last(key), last(known)));
}

function unknownKey(key: string, known: string[]): ConfigError {
  const closest = [...known].sort((a, b) => closeness(key, a) - closeness(key, b))[0];
  return new ConfigError(`Context key "${key}" is unknown: did you mean "${closest}"?`);
}

/** CDK's own context (feature flags, the CLI's settings): not ours to check. */
function isCdkKey(key: string): boolean {
  return key.startsWith('@') || key.includes(':') || key.startsWith('cdk-') || key === 'acknowledged-issue-numbers';
}

/** The "functions" block with every dotted `-c functions.<name>.<key>=value` applied. */
function functionBlocks(context: Record<string, unknown>): Record<string, Record<string, unknown>> {
  const raw = context.functions;
  const parsed = typeof raw === 'string' ? JSON.parse(raw) : raw;
  if (parsed === undefined || parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError('Context key "functions" is missing or not an object: cdk.json holds one block per function');
  }
  const blocks: Record<string, Record<string, unknown>> = {};
  for (const [name, block] of Object.entries(parsed as Record<string, unknown>)) {
    if (!(name in FUNCTIONS)) throw unknownKey(`functions.${name}`, Object.keys(FUNCTIONS).map((n) => `functions.${n}`));
    blocks[name] = { ...(block as Record<string, unknown>) };
  }
  for (const [key, value] of Object.entries(context)) {
    const match = /^functions\.([^.]+)\.([^.]+)$/.exec(key);
    if (!match) continue;
    const [, name, setting] = match;
    if (!(name in FUNCTIONS)) throw unknownKey(`functions.${name}`, Object.keys(FUNCTIONS).map((n) => `functions.${n}`));
    blocks[name] = { ...(blocks[name] ?? {}), [setting]: value };
  }
  return blocks;
}

function readBlock(name: string, block: Record<string, unknown> | undefined): Record<string, number> {
  const ranges = FUNCTIONS[name as keyof typeof FUNCTIONS];
  const known = Object.keys(ranges);
  for (const key of Object.keys(block ?? {})) {
    if (!known.includes(key)) throw unknownKey(`functions.${name}.${key}`, known.map((k) => `functions.${name}.${k}`));
  }
  return Object.fromEntries(known.map((key) => [key, wholeNumber(`functions.${name}.${key}`, block?.[key], ranges[key])]));
}

export function loadConfig(node: Node): PipelineConfig {
  const context = node.getAllContext();
  for (const key of Object.keys(context)) {
    if (isCdkKey(key) || TOP_LEVEL.includes(key) || /^functions\.[^.]+\.[^.]+$/.test(key)) continue;
    throw unknownKey(key, knownKeys());
  }
  const stage = context.stage;
  if (typeof stage !== 'string' || !/^[a-z][a-z0-9-]{0,19}$/.test(stage)) {
    throw new ConfigError(
      `Context key "stage" is invalid: expected lower-case letters, digits and dashes (e.g. dev, prod), got ${JSON.stringify(stage)}`,
    );
  }
  const emailKey = (key: string): string | undefined => {
    const value = context[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(String(value))) {
      throw new ConfigError(`Context key "${key}" is invalid: expected an email address or "", got ${JSON.stringify(value)}`);
    }
    return String(value);
  };
  const email = emailKey('alarmEmail');
  const notificationEmail = emailKey('notificationEmail');
  const providerUrl = context.paymentProviderUrl ? String(context.paymentProviderUrl) : undefined;
  const secretArn = context.paymentSecretArn ? String(context.paymentSecretArn) : undefined;
  if (providerUrl !== undefined && !/^https:\/\/\S+$/.test(providerUrl)) {
    throw new ConfigError(`Context key "paymentProviderUrl" is invalid: expected an https:// URL or "", got ${JSON.stringify(providerUrl)}`);
  }
  if (secretArn !== undefined && !/^arn:aws[a-z-]*:secretsmanager:[^:]+:\d{12}:secret:\S+$/.test(secretArn)) {
    throw new ConfigError(`Context key "paymentSecretArn" is invalid: expected a Secrets Manager secret ARN or "", got ${JSON.stringify(secretArn)}`);
  }
  if ((providerUrl === undefined) !== (secretArn === undefined)) {
    throw new ConfigError(
      'Context keys "paymentProviderUrl" and "paymentSecretArn" go together: give both to call a payment provider, or neither for the simulated provider',
    );
  }
  const logRetentionDays = wholeNumber('logRetentionDays', context.logRetentionDays, [1, 3653]);
  if (!RETENTION_DAYS.has(logRetentionDays)) {
    throw new ConfigError(
      `Context key "logRetentionDays" is invalid: CloudWatch Logs keeps logs for one of ${[...RETENTION_DAYS].sort((a, b) => a - b).join(', ')} days, got ${logRetentionDays}`,
    );
  }
  const jwtIssuer = context.apiJwtIssuer ? String(context.apiJwtIssuer) : undefined;
  const rawAudience = context.apiJwtAudience;
  const jwtAudience = (Array.isArray(rawAudience) ? rawAudience.map(String) : String(rawAudience ?? '').split(','))
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (jwtIssuer !== undefined && !/^https:\/\/\S+$/.test(jwtIssuer)) {
    throw new ConfigError(`Context key "apiJwtIssuer" is invalid: expected an https:// issuer URL or "", got ${JSON.stringify(jwtIssuer)}`);
  }
  if ((jwtIssuer === undefined) !== (jwtAudience.length === 0)) {
    throw new ConfigError(
      'Context keys "apiJwtIssuer" and "apiJwtAudience" go together: give both for a JWT authorizer, or neither for IAM (SigV4) authorization',
    );
  }
  const api: ApiSettings = {
    throttleRate: wholeNumber('apiThrottleRate', context.apiThrottleRate, [1, 10000]),
    throttleBurst: wholeNumber('apiThrottleBurst', context.apiThrottleBurst, [1, 5000]),
    jwtIssuer,
    jwtAudience,
  };
  const blocks = functionBlocks(context);
  const consumer = readBlock('order-consumer', blocks['order-consumer']) as unknown as WorkerSettings;
  const dlqAlarm = readBlock('dlq-alarm', blocks['dlq-alarm']) as unknown as DlqAlarmSettings;
  const orderApi = readBlock('order-api', blocks['order-api']) as unknown as FunctionSettings;
  const orderEvents = readBlock('order-events', blocks['order-events']) as unknown as StreamSettings;
  const inventory = readBlock('inventory', blocks.inventory) as unknown as WorkerSettings;
  const payment = readBlock('payment', blocks.payment) as unknown as PaymentSettings;
  const paymentDlq = readBlock('payment-dlq', blocks['payment-dlq']) as unknown as DeadLetterHandlerSettings;
  const notification = readBlock('notification', blocks.notification) as unknown as WorkerSettings;
  if (payment.maxAttempts >= payment.maxReceiveCount) {
    throw new ConfigError(
      `Context key "functions.payment.maxAttempts" is invalid: ${payment.maxAttempts} attempts need a maxReceiveCount above it (functions.payment.maxReceiveCount is ${payment.maxReceiveCount}), or the DLQ takes orders the stage would still retry`,
    );
  }
  if (payment.retryMaxSeconds < payment.retryBaseSeconds) {
    throw new ConfigError(
      `Context key "functions.payment.retryMaxSeconds" is invalid: it must be at least retryBaseSeconds (${payment.retryBaseSeconds})`,
    );
  }
  for (const [name, worker] of [['order-consumer', consumer], ['inventory', inventory], ['payment', payment], ['notification', notification]] as const) {
    if (queueVisibilityTimeoutSeconds(worker) > MAX_VISIBILITY_SECONDS) {
      throw new ConfigError(
        `Context key "functions.${name}.timeoutSeconds" is invalid: 6 x ${worker.timeoutSeconds} s + the ${worker.batchingWindowSeconds} s batching window exceeds SQS's 12-hour visibility timeout`,
      );
    }
  }
  return {
    stage,
    logRetentionDays,
    alarmEmail: email,
    notificationEmail,
    paymentProvider: providerUrl && secretArn ? { url: providerUrl, secretArn } : undefined,
    api,
    functions: {
      'order-consumer': consumer,
      'dlq-alarm': dlqAlarm,
      'order-api': orderApi,
      'order-events': orderEvents,
      inventory,
      payment,
      'payment-dlq': paymentDlq,
      notification,
    },
  };
}
