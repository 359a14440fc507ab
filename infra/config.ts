/**
 * The pipeline's settings, and the stage table they follow from.
 *
 * FUNCTIONS (below) has one row per Lambda function: its kind (what invokes it), the features
 * the stack and the local runner wire for it, and, for a queue-fed function, what it makes of
 * its input and which of the pipeline's resources it uses. Everything else about a function's
 * settings is derived from the row: the keys its cdk.json block takes and their ranges, its
 * settings type, the unknown-key check and the checks on the values (the visibility timeout of
 * every function with a work queue, the features' own checks). The Rust side's registry
 * (functions/registry.json, see infra/registry.ts) must name the same functions; the stack
 * refuses to synthesize otherwise.
 *
 * The settings are read from CDK context (cdk.json's "context" block). Pipeline-wide keys sit
 * at the top level; each function has a block under "functions", keyed by its binary name. Any
 * setting can be overridden per command with `-c key=value`, a function's with a dotted key:
 * `-c functions.order-consumer.memoryMb=512`. A missing, malformed or unknown key fails synth
 * with a message naming it (and, for an unknown key, the closest known one). The local runner
 * reads nothing of this: it reads the synthesized template, so it sees exactly what these
 * settings produce.
 */
import { Node } from 'constructs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

/** A setting's whole numbers, from min to max inclusive. */
type Range = readonly [min: number, max: number];
/** Each key a block takes, with its range. */
type Ranges = { readonly [key: string]: Range };
/** The settings a set of ranges describes: one whole number per key (each key's comment carries over). */
export type Settings<R extends Ranges> = { readonly [K in keyof R]: number };

/** Every function's settings. */
const FUNCTION_RANGES = {
  /** The function's memory (MB). */
  memoryMb: [128, 10240],
  /** The function's timeout (seconds). */
  timeoutSeconds: [1, 900],
} as const;

/** A function with a work queue of its own: its function, its queue (and DLQ) and its mapping. */
const WORKER_RANGES = {
  ...FUNCTION_RANGES,
  /** Records per invocation (1-10). */
  batchSize: [1, 10],
  /** How long the event source mapping gathers records before invoking (0-300 s). */
  batchingWindowSeconds: [0, 300],
  /** Most concurrent invocations the mapping starts (2-1000). */
  maxConcurrency: [2, 1000],
  /** Records of one batch processed at once inside the function (1-100). */
  recordConcurrency: [1, 100],
  /** Receives of a message before it moves to the stage's DLQ (1-1000). */
  maxReceiveCount: [1, 1000],
  /** The queue's oldest-message age that raises the stage's queue-age alarm. */
  queueAgeAlarmSeconds: [60, 1_209_600],
} as const;

/** A dead-letter handler (a function fed by a stage's DLQ). */
const DEAD_LETTER_HANDLER_RANGES = {
  ...FUNCTION_RANGES,
  /** Dead letters per invocation (1-10). */
  batchSize: [1, 10],
  /** Most concurrent invocations (2-1000). */
  maxConcurrency: [2, 1000],
} as const;

/** A stream-fed function. */
const STREAM_RANGES = {
  ...FUNCTION_RANGES,
  /** Stream records per invocation (1-1000). */
  batchSize: [1, 1000],
  /** Retries of a failing record before it goes to the on-failure queue (0-10000). */
  maxRetryAttempts: [0, 10000],
  /** The iterator age (seconds behind the stream) that raises the alarm. */
  iteratorAgeAlarmSeconds: [10, 86400],
} as const;

/** A function invoked by a DLQ's alarm (dlq-alarm). */
const ALARM_RANGES = {
  ...FUNCTION_RANGES,
  /** Most DLQ messages the function looks at per alarm. */
  snapshotMax: [1, 10000],
  /** Minutes between scheduled sweeps (dead letters that arrive while the alarm stays in ALARM). */
  sweepMinutes: [1, 1440],
} as const;

/**
 * What a function is, by what invokes it: the registry trigger it must have
 * (functions/registry.json), whether it has a work queue of its own (and so a visibility timeout
 * derived from its timeout), and the settings it takes.
 */
export const KINDS = {
  /** Fed by a queue subscribed to the order topic, unfiltered (order-consumer). */
  intake: { trigger: 'sqs', workQueue: true, ranges: WORKER_RANGES },
  /**
   * A stage: fed by a queue subscribed to the order-events topic, filtered on the event types it
   * acts on (its `events` in the registry). The stack builds every stage from its row.
   */
  stage: { trigger: 'sqs', workQueue: true, ranges: WORKER_RANGES },
  /**
   * Fed by the DLQ of the stage the registry names in its `deadLettersOf`; it runs with that
   * stage's environment and access.
   */
  'dead-letter-handler': { trigger: 'sqs', workQueue: false, ranges: DEAD_LETTER_HANDLER_RANGES },
  /** Fed by the Orders table's stream (order-events). */
  stream: { trigger: 'stream', workQueue: false, ranges: STREAM_RANGES },
  /** Invoked by a DLQ's alarm and a sweep schedule (dlq-alarm). */
  alarm: { trigger: 'alarm', workQueue: false, ranges: ALARM_RANGES },
  /** Invoked by the HTTP API (order-api). */
  http: { trigger: 'http', workQueue: false, ranges: FUNCTION_RANGES },
} as const;
export type Kind = keyof typeof KINDS;
/** The settings of a function of kind `K`. */
export type KindSettings<K extends Kind> = Settings<(typeof KINDS)[K]['ranges']>;
/** The kinds whose functions have a work queue of their own. */
export type WorkQueueKind = { [K in Kind]: (typeof KINDS)[K]['workQueue'] extends true ? K : never }[Kind];

/**
 * What the stack (and the local runner, through the template's `OrderPipeline:Features`
 * metadata) wires for a function beyond its kind, each with the settings it adds.
 */
export const FEATURES = {
  /**
   * A backoff of its own: failed records come back after a delay doubling per attempt, set on
   * the function's own queue, instead of after the visibility timeout (RETRY_BASE_SECONDS,
   * RETRY_MAX_SECONDS, QUEUE_URL).
   */
  backoff: {
    /** An unavailable attempt comes back after this, doubling per attempt... */
    retryBaseSeconds: [1, 43_200],
    /** ...up to this. */
    retryMaxSeconds: [1, 43_200],
  },
  /**
   * Calls the payment provider: PAYMENT_MAX_ATTEMPTS, and the provider's URL and API-key secret
   * (paymentProviderUrl, paymentSecretArn) or, without them, the simulated provider's settings.
   */
  'payment-provider': {
    /** Calls to the provider before an order it keeps answering "unavailable" is PAYMENT_FAILED (below maxReceiveCount). */
    maxAttempts: [1, 100],
    /** The HTTP provider's answer must arrive within this. */
    providerTimeoutMs: [100, 60_000],
    /** The simulated provider declines amounts above this. */
    simulatedDeclineOver: [0, 1_000_000_000],
    /** The simulated provider answers "unavailable" to this share of calls (percent). */
    simulatedUnavailablePercent: [0, 100],
  },
  /**
   * Watches orders: its queue delays each message by the stuck-order age, and an order not ended
   * by then is stuck (STUCK_AFTER_SECONDS; SQS delays a message 15 minutes at most).
   */
  watch: {
    /** An order not ended this many minutes after it was accepted is stuck. */
    stuckAfterMinutes: [1, 15],
  },
} as const;
export type Feature = keyof typeof FEATURES;
/** The settings feature `F` adds. */
export type FeatureSettings<F extends Feature> = Settings<(typeof FEATURES)[F]>;

/** The pipeline resources a worker can use; the stack maps each to the resource, its variable and its grant. */
export type PipelineResource = 'orders' | 'inventory' | 'customerNotifications';
/**
 * The resources a worker uses, each with the exact actions it may take on it: the stack sets
 * the resource's variable in the function's environment (TABLE_NAME, INVENTORY_TABLE_NAME,
 * NOTIFICATION_TOPIC_ARN) and grants exactly these actions, in this order.
 */
export type Uses = { readonly [R in PipelineResource]?: readonly string[] };

/**
 * An outcome of a stage that ops must hear of: an alarm (logical id `id`) on the stage's EMF
 * count `metric` (one in 5 minutes), described by `description`.
 */
export interface OutcomeAlarm {
  readonly id: string;
  readonly metric: string;
  readonly description: string;
}

/** A function with a work queue: the stack builds it from this row. */
interface WorkerRow {
  readonly kind: WorkQueueKind;
  /** What it makes of its input: its description is `<input> -> <outcome>`. */
  readonly outcome: string;
  readonly uses: Uses;
  readonly features?: readonly Feature[];
  /** Its outcomes that page ops (money left for a person to settle). */
  readonly alarms?: readonly OutcomeAlarm[];
}
/** A dead-letter handler: its stage's environment and access, its own settings. */
interface DeadLetterHandlerRow {
  readonly kind: 'dead-letter-handler';
  /** What it makes of a dead letter: its description is `<Stage> DLQ -> <outcome>`. */
  readonly outcome: string;
}
/** A function with a construct of its own (infra/constructs). */
interface OtherRow {
  readonly kind: Exclude<Kind, WorkQueueKind | 'dead-letter-handler'>;
}
type FunctionRow = WorkerRow | DeadLetterHandlerRow | OtherRow;

/**
 * The stage table: one row per Lambda function (its binary, functions/<name>), in the order of
 * the dashboard's rows and of the stack's stages. Adding a stage fed by lifecycle events takes a
 * row of kind 'stage' here, its handler and registry entry on the Rust side, and its block in
 * cdk.json.
 */
export const FUNCTIONS = {
  'order-consumer': {
    kind: 'intake',
    outcome: 'Orders table (partial batch responses)',
    // PartiQLInsert: a batch's new orders go out as one BatchExecuteStatement of INSERTs.
    uses: { orders: ['dynamodb:PutItem', 'dynamodb:PartiQLInsert', 'dynamodb:UpdateItem', 'dynamodb:GetItem'] },
  },
  'dlq-alarm': { kind: 'alarm' },
  'order-api': { kind: 'http' },
  'order-events': { kind: 'stream' },
  inventory: {
    kind: 'stage',
    outcome: 'stock reserved in one transaction (RESERVED) or REJECTED',
    // The order is read (GetItem, consistent) at the event's version before anything is reserved.
    uses: { inventory: ['dynamodb:BatchGetItem', 'dynamodb:UpdateItem'], orders: ['dynamodb:GetItem', 'dynamodb:UpdateItem'] },
  },
  'inventory-dlq': {
    kind: 'dead-letter-handler',
    outcome: 'a last reservation attempt, else REJECTED (dead_lettered) with no stock reserved (nothing for an order past ACCEPTED)',
  },
  payment: {
    kind: 'stage',
    features: ['backoff', 'payment-provider'],
    outcome: 'PAID or PAYMENT_FAILED (stock sold or released)',
    // The attempt counter and the settling transaction (Orders + Inventory); payment-dlq reads the
    // stored order (GetItem) and settles with the same.
    uses: { orders: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], inventory: ['dynamodb:UpdateItem'] },
    alarms: [
      {
        // An order whose charge the provider could not confirm either way stays RESERVED.
        id: 'UnresolvedPayments',
        metric: 'PaymentsUnresolved',
        description: 'Payments whose outcome is unknown after every attempt: the orders stay RESERVED with their stock held and are asked about again. See docs/operations.md, Payments.',
      },
      {
        id: 'OrphanedCharges',
        metric: 'PaymentsOrphaned',
        description: 'The provider approved a charge for an order that had moved on without it: refund it at the provider by <orderId>:payment. See docs/operations.md, Payments.',
      },
    ],
  },
  'payment-dlq': { kind: 'dead-letter-handler', outcome: 'PAYMENT_FAILED with the stock released (nothing for a settled order)' },
  refund: {
    kind: 'stage',
    features: ['backoff', 'payment-provider'],
    outcome: 'a cancelled order CANCELLED (no charge: stock released), REFUNDED (units back to available) or REFUND_FAILED',
    // Reads the stored order, then the settling transaction (Orders + Inventory), as payment does.
    uses: { orders: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], inventory: ['dynamodb:UpdateItem'] },
    alarms: [
      {
        id: 'RefusedRefunds',
        metric: 'RefundsRefused',
        description: 'Cancelled orders whose refund the provider refused (or never answered, holding none): REFUND_FAILED, the charge standing. Refund them by hand. See docs/operations.md, Refunds.',
      },
    ],
  },
  'refund-dlq': { kind: 'dead-letter-handler', outcome: "the refund stage's last attempt, else the order stays CANCELLING and the letter in the DLQ" },
  notification: {
    kind: 'stage',
    outcome: 'customer notifications; PAID -> COMPLETED',
    uses: { orders: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], customerNotifications: ['sns:Publish'] },
  },
  'notification-dlq': {
    kind: 'dead-letter-handler',
    outcome: 'a last attempt, else the failed notification recorded on the order (PAID -> COMPLETED for a confirmation)',
  },
  'order-watch': {
    kind: 'stage',
    features: ['watch'],
    outcome: 'an order not ended by then goes to the stuck-order list (its DLQ)',
    // It reads the stored order (consistent GetItem) and writes nothing.
    uses: { orders: ['dynamodb:GetItem'] },
  },
  'order-watch-dlq': {
    kind: 'dead-letter-handler',
    outcome: 'the stuck-order list: an order that has ended since leaves it, one still stuck stays',
  },
} as const satisfies Record<string, FunctionRow>;

export type FunctionName = keyof typeof FUNCTIONS;
type Row<N extends FunctionName> = (typeof FUNCTIONS)[N];
/** The functions of the given kind(s). */
export type NameOfKind<K extends Kind> = { [N in FunctionName]: Row<N>['kind'] extends K ? N : never }[FunctionName];
type FeaturesSettings<Fs> = Fs extends readonly [infer F extends Feature, ...infer Rest] ? FeatureSettings<F> & FeaturesSettings<Rest> : unknown;
/** A function's settings: its kind's, and its features'. */
export type SettingsOf<N extends FunctionName> = KindSettings<Row<N>['kind']> &
  (Row<N> extends { readonly features: infer Fs } ? FeaturesSettings<Fs> : unknown);

/** Settings every Lambda function has. */
export type FunctionSettings = Settings<typeof FUNCTION_RANGES>;
/** Settings of a function with a work queue (a stage, the intake): its function, its queue and its mapping. */
export type WorkerSettings = KindSettings<WorkQueueKind>;
/** A dead-letter handler's settings. */
export type DeadLetterHandlerSettings = KindSettings<'dead-letter-handler'>;
/** A stream-fed function's settings. */
export type StreamSettings = KindSettings<'stream'>;
/** dlq-alarm's settings. */
export type DlqAlarmSettings = KindSettings<'alarm'>;

/** Every function, in the table's order. */
export const FUNCTION_NAMES = Object.keys(FUNCTIONS) as FunctionName[];

function isFunctionName(name: string): name is FunctionName {
  return Object.prototype.hasOwnProperty.call(FUNCTIONS, name);
}

/** The functions of the given kind(s), in the table's order. */
export function namesOfKind<K extends Kind>(...kinds: K[]): NameOfKind<K>[] {
  return FUNCTION_NAMES.filter((n): n is NameOfKind<K> => (kinds as Kind[]).includes(FUNCTIONS[n].kind));
}

/** The functions with a work queue of their own, in the table's order. */
export function workQueueNames(): NameOfKind<WorkQueueKind>[] {
  return namesOfKind(...(Object.keys(KINDS) as Kind[]).filter((k): k is WorkQueueKind => KINDS[k].workQueue));
}

/** The features of the function `name` (the binary a Lambda runs); a name without a row is an error. */
export function featuresOf(name: string): readonly Feature[] {
  if (!isFunctionName(name)) throw new ConfigError(`"${name}" has no row in the stage table (FUNCTIONS, infra/config.ts)`);
  const row: FunctionRow = FUNCTIONS[name];
  return 'features' in row && row.features ? row.features : [];
}

/** The keys a function's block takes, with their ranges: its kind's, then its features'. */
export function rangesOf(name: FunctionName): Ranges {
  return Object.assign({}, KINDS[FUNCTIONS[name].kind].ranges, ...featuresOf(name).map((f) => FEATURES[f]));
}

/** The function's settings as feature `F`'s when it has that feature (its block then has F's keys), else undefined. */
export function featureSettings<F extends Feature>(config: PipelineConfig, name: FunctionName, feature: F): FeatureSettings<F> | undefined {
  return featuresOf(name).includes(feature) ? (config.functions[name] as unknown as FeatureSettings<F>) : undefined;
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
  /** The JWT claim that names the customer (`sub` by default). */
  readonly jwtCustomerClaim: string;
  /** The scope a customer's token carries for the routes; "" for none required. */
  readonly jwtCustomerScope: string;
  /** The scope of a token that acts for any customer (support, the shop's staff). */
  readonly jwtAdminScope: string;
}

/** Every function's settings, by name. */
export type FunctionsConfig = { readonly [N in FunctionName]: SettingsOf<N> };

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
  /**
   * The ISO 4217 currency of an order that names none and whose skus name none, and of an
   * Inventory item without a currency (the stages that use the Inventory get DEFAULT_CURRENCY).
   */
  readonly defaultCurrency: string;
  readonly api: ApiSettings;
  /**
   * The IAM roles of external producer systems that may publish orders to the order topic,
   * besides the order API's function (whose role the stack creates). Each is a full role ARN,
   * path included, of this account or another; empty for none.
   */
  readonly orderPublisherRoleArns: readonly string[];
  readonly functions: FunctionsConfig;
}

/** A setting that is missing, out of range or unknown (or a stage table that does not hold together) fails synth with a message naming it. */
export class ConfigError extends Error {}

const RETENTION_DAYS = new Set(
  Object.values(RetentionDays).filter((v): v is number => typeof v === 'number'),
);

const TOP_LEVEL = [
  'stage', 'logRetentionDays', 'alarmEmail', 'notificationEmail', 'paymentProviderUrl', 'paymentSecretArn', 'defaultCurrency', 'apiThrottleRate', 'apiThrottleBurst', 'apiJwtIssuer', 'apiJwtAudience', 'apiJwtCustomerClaim', 'apiJwtCustomerScope', 'apiJwtAdminScope', 'orderPublisherRoleArns', 'functions',
];

/**
 * A JWT claim's or scope's name (the JWT settings): printable, without spaces (scopes are
 * space-separated in a token), at most 128 characters; `fallback` when unset; "" only where
 * `emptyMeansNone`.
 */
function jwtName(key: string, raw: unknown, fallback: string, emptyMeansNone: boolean): string {
  if (raw === undefined || raw === null) return fallback;
  const value = String(raw);
  if (value === '' && emptyMeansNone) return '';
  if (!/^[\x21-\x7e]{1,128}$/.test(value)) {
    throw new ConfigError(
      `Context key "${key}" is invalid: expected a claim or scope name, 1 to 128 printable characters without spaces${emptyMeansNone ? ', or "" for none' : ''}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

/** An IAM role's ARN, path included: arn:<partition>:iam::<account>:role/<path/>name. */
const ROLE_ARN = /^arn:aws[a-z-]*:iam::\d{12}:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]+$/;

/**
 * The "orderPublisherRoleArns" setting: a list of IAM role ARNs in cdk.json, or from the
 * command line (`-c orderPublisherRoleArns=ARN,ARN` or a JSON list); none when unset or "".
 */
function roleArns(key: string, raw: unknown): string[] {
  if (raw === undefined || raw === null || raw === '') return [];
  let list: unknown = raw;
  if (typeof raw === 'string') {
    try {
      list = raw.trim().startsWith('[') ? JSON.parse(raw) : raw.split(',');
    } catch {
      throw new ConfigError(`Context key "${key}" is invalid: expected a list of IAM role ARNs, got ${JSON.stringify(raw)}`);
    }
  }
  if (!Array.isArray(list)) {
    throw new ConfigError(`Context key "${key}" is invalid: expected a list of IAM role ARNs, got ${JSON.stringify(raw)}`);
  }
  const arns = list.map((a) => (typeof a === 'string' ? a.trim() : a));
  for (const arn of arns) {
    if (typeof arn !== 'string' || !ROLE_ARN.test(arn)) {
      throw new ConfigError(
        `Context key "${key}" is invalid: expected IAM role ARNs such as arn:aws:iam::<12-digit account>:role/<name>, got ${JSON.stringify(arn)}`,
      );
    }
  }
  const repeated = arns.find((arn, i) => arns.indexOf(arn) !== i);
  if (repeated !== undefined) throw new ConfigError(`Context key "${key}" is invalid: ${JSON.stringify(repeated)} is listed twice`);
  return arns as string[];
}

/** The SQS limit on a queue's visibility timeout. */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * At least six times the function's timeout plus the batching window (AWS's guidance for SQS
 * event sources), so a message is never visible again while an invocation may still hold it.
 */
export function queueVisibilityTimeoutSeconds(settings: WorkerSettings): number {
  return 6 * settings.timeoutSeconds + settings.batchingWindowSeconds;
}

/** Each feature's own check of a function's settings (`name` names the function in the message). */
const FEATURE_CHECKS: { readonly [F in Feature]: (name: string, settings: WorkerSettings & FeatureSettings<F>) => void } = {
  backoff: (name, s) => {
    if (s.retryMaxSeconds < s.retryBaseSeconds) {
      throw new ConfigError(`Context key "functions.${name}.retryMaxSeconds" is invalid: it must be at least retryBaseSeconds (${s.retryBaseSeconds})`);
    }
  },
  'payment-provider': (name, s) => {
    if (s.maxAttempts >= s.maxReceiveCount) {
      throw new ConfigError(
        `Context key "functions.${name}.maxAttempts" is invalid: ${s.maxAttempts} attempts need a maxReceiveCount above it (functions.${name}.maxReceiveCount is ${s.maxReceiveCount}), or the DLQ takes orders the stage would still retry`,
      );
    }
  },
  watch: (name, s) => {
    // Every message waits the stuck-order age by design, and a stuck order's once more per receive
    // before it reaches the list: a queue-age threshold within that would alarm on a healthy watch.
    const held = s.stuckAfterMinutes * 60 + s.maxReceiveCount * queueVisibilityTimeoutSeconds(s);
    if (s.queueAgeAlarmSeconds <= held) {
      throw new ConfigError(
        `Context key "functions.${name}.queueAgeAlarmSeconds" is invalid: ${s.queueAgeAlarmSeconds} must be above ${held} (stuckAfterMinutes × 60 + maxReceiveCount × the queue's visibility timeout), the time a message may be held by design`,
      );
    }
  },
};

/**
 * The checks across a function's settings, derived from the table: each feature's own check
 * for every function that has it, and the visibility timeout of every function with a work
 * queue (none listed by hand).
 */
export function checkSettings(functions: FunctionsConfig): void {
  // The visibility timeout first: the features' checks may build on it.
  for (const name of workQueueNames()) {
    const worker: WorkerSettings = functions[name];
    if (queueVisibilityTimeoutSeconds(worker) > MAX_VISIBILITY_SECONDS) {
      throw new ConfigError(
        `Context key "functions.${name}.timeoutSeconds" is invalid: 6 x ${worker.timeoutSeconds} s + the ${worker.batchingWindowSeconds} s batching window exceeds SQS's 12-hour visibility timeout`,
      );
    }
  }
  for (const name of workQueueNames()) {
    const settings: WorkerSettings = functions[name];
    for (const feature of featuresOf(name)) {
      // The function's block has the feature's keys: its ranges are its kind's and its features'.
      (FEATURE_CHECKS[feature] as (name: string, settings: WorkerSettings) => void)(name, settings);
    }
  }
}

function wholeNumber(key: string, raw: unknown, [min, max]: Range): number {
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
    ...FUNCTION_NAMES.flatMap((name) => Object.keys(rangesOf(name)).map((k) => `functions.${name}.${k}`)),
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
  const unknownFunction = (name: string) => unknownKey(`functions.${name}`, FUNCTION_NAMES.map((n) => `functions.${n}`));
  const blocks: Record<string, Record<string, unknown>> = {};
  for (const [name, block] of Object.entries(parsed as Record<string, unknown>)) {
    if (!isFunctionName(name)) throw unknownFunction(name);
    blocks[name] = { ...(block as Record<string, unknown>) };
  }
  for (const [key, value] of Object.entries(context)) {
    const match = /^functions\.([^.]+)\.([^.]+)$/.exec(key);
    if (!match) continue;
    const [, name, setting] = match;
    if (!isFunctionName(name)) throw unknownFunction(name);
    blocks[name] = { ...(blocks[name] ?? {}), [setting]: value };
  }
  return blocks;
}

/** A function's block, every key its row gives it read and range-checked, any other key refused. */
function readBlock(name: FunctionName, block: Record<string, unknown> | undefined): Record<string, number> {
  const ranges = rangesOf(name);
  const known = Object.keys(ranges);
  for (const key of Object.keys(block ?? {})) {
    if (!known.includes(key)) throw unknownKey(`functions.${name}.${key}`, known.map((k) => `functions.${name}.${k}`));
  }
  return Object.fromEntries(known.map((key) => [key, wholeNumber(`functions.${name}.${key}`, block?.[key], ranges[key])]));
}

/** Every function's settings, read from its block, then checked across (checkSettings). */
function readFunctions(context: Record<string, unknown>): FunctionsConfig {
  const blocks = functionBlocks(context);
  // readBlock reads exactly rangesOf(name), the keys SettingsOf<name> is derived from.
  const functions = Object.fromEntries(FUNCTION_NAMES.map((name) => [name, readBlock(name, blocks[name])])) as unknown as FunctionsConfig;
  checkSettings(functions);
  return functions;
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
  const defaultCurrency = String(context.defaultCurrency ?? 'USD');
  if (!/^[A-Z]{3}$/.test(defaultCurrency)) {
    throw new ConfigError(
      `Context key "defaultCurrency" is invalid: expected an ISO 4217 code in capitals such as USD, EUR or JPY, got ${JSON.stringify(context.defaultCurrency)}`,
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
    jwtCustomerClaim: jwtName('apiJwtCustomerClaim', context.apiJwtCustomerClaim, 'sub', false),
    jwtCustomerScope: jwtName('apiJwtCustomerScope', context.apiJwtCustomerScope, 'orders/customer', true),
    jwtAdminScope: jwtName('apiJwtAdminScope', context.apiJwtAdminScope, 'orders/admin', false),
  };
  return {
    stage,
    logRetentionDays,
    alarmEmail: email,
    notificationEmail,
    paymentProvider: providerUrl && secretArn ? { url: providerUrl, secretArn } : undefined,
    defaultCurrency,
    api,
    orderPublisherRoleArns: roleArns('orderPublisherRoleArns', context.orderPublisherRoleArns),
    functions: readFunctions(context),
  };
}
