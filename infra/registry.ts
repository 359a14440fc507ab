/**
 * The Rust side's function registry, functions/registry.json (the Rust tests regenerate and
 * verify it from the code): each function's binary `name`, its `trigger`, the lifecycle event
 * types it acts on (`events`: a stage's subscription filter on the order-events topic) and, for
 * a dead-letter handler, the stage whose DLQ feeds it (`deadLettersOf`); and `eventTypes`,
 * every event type there is. The stack takes the stages' filters and dead-letter handlers from
 * it, and refuses to synthesize when it and the stage table (infra/config.ts) disagree.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, FUNCTIONS, FUNCTION_NAMES, FunctionName, KINDS } from './config';

/** functions/registry.json */
export const REGISTRY_FILE = path.join(__dirname, '..', 'functions', 'registry.json');

const TRIGGERS = ['sqs', 'stream', 'alarm', 'http'] as const;
export type Trigger = (typeof TRIGGERS)[number];

export interface RegisteredFunction {
  /** The binary (functions/<name>). */
  readonly name: string;
  readonly trigger: Trigger;
  /** The lifecycle event types it acts on. */
  readonly events: readonly string[];
  /** A dead-letter handler's stage: the one whose DLQ feeds it. */
  readonly deadLettersOf?: string;
}

/** The registry is unreadable, malformed, or disagrees with the stage table. */
export class RegistryError extends ConfigError {}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');

export class Registry {
  /** Reads and checks the shape of `file` (functions/registry.json by default). */
  static load(file: string = REGISTRY_FILE): Registry {
    const source = path.relative(path.join(__dirname, '..'), file);
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new RegistryError(`${source} cannot be read: ${(e as Error).message}`);
    }
    return Registry.from(raw, source);
  }

  /** A registry from its parsed JSON; `source` names it in errors. */
  static from(raw: unknown, source = 'functions/registry.json'): Registry {
    const malformed = (what: string) => new RegistryError(`${source} is malformed: ${what}`);
    const doc = raw as { functions?: unknown; eventTypes?: unknown } | null;
    if (typeof doc !== 'object' || doc === null || !Array.isArray(doc.functions)) throw malformed('no "functions" list');
    if (!isStrings(doc.eventTypes)) throw malformed('"eventTypes" is not a list of names');
    const functions = doc.functions.map((f: any, i: number): RegisteredFunction => {
      if (typeof f?.name !== 'string') throw malformed(`functions[${i}] has no "name"`);
      if (!TRIGGERS.includes(f.trigger)) throw malformed(`"${f.name}" has trigger ${JSON.stringify(f.trigger)}, not one of ${TRIGGERS.join(', ')}`);
      if (!isStrings(f.events)) throw malformed(`"${f.name}" has no "events" list`);
      if (f.deadLettersOf !== undefined && typeof f.deadLettersOf !== 'string') throw malformed(`"${f.name}" has a "deadLettersOf" that is not a name`);
      return { name: f.name, trigger: f.trigger, events: f.events, deadLettersOf: f.deadLettersOf };
    });
    return new Registry(functions, doc.eventTypes, source);
  }

  private constructor(
    readonly functions: readonly RegisteredFunction[],
    readonly eventTypes: readonly string[],
    readonly source: string,
  ) {}

  /** The registered function `name`; not registered is an error. */
  get(name: string): RegisteredFunction {
    const found = this.functions.find((f) => f.name === name);
    if (!found) throw new RegistryError(`"${name}" is not in ${this.source}`);
    return found;
  }

  /**
   * Where the registry and the stage table disagree, one line each: a registered function with
   * no row or a row with no registered function, a trigger that is not the row's kind's, an
   * event type that is not in eventTypes, a stage acting on no event (or another kind acting on
   * some: only stages are subscribed to lifecycle events), and a dead-letter handler whose stage
   * is not a stage of the table.
   */
  problems(): string[] {
    const problems: string[] = [];
    const table = `the stage table (FUNCTIONS, infra/config.ts)`;
    const seen = new Set<string>();
    for (const f of this.functions) {
      if (seen.has(f.name)) problems.push(`"${f.name}" is registered twice in ${this.source}`);
      seen.add(f.name);
      if (!(FUNCTION_NAMES as string[]).includes(f.name)) {
        problems.push(`"${f.name}" is in ${this.source} but has no row in ${table}`);
        continue;
      }
      const kind = FUNCTIONS[f.name as FunctionName].kind;
      const trigger = KINDS[kind].trigger;
      if (f.trigger !== trigger) {
        problems.push(`"${f.name}" has trigger "${f.trigger}" in ${this.source}, but its row's kind (${kind}) is triggered by "${trigger}"`);
      }
      for (const event of f.events) {
        if (!this.eventTypes.includes(event)) problems.push(`"${f.name}" acts on "${event}", which is not one of ${this.source}'s eventTypes`);
      }
      if (kind === 'stage' && f.events.length === 0) {
        problems.push(`"${f.name}" is a stage but acts on no event type: its subscription would take nothing`);
      }
      if (kind === 'stage' && !this.functions.some((g) => g.deadLettersOf === f.name)) {
        problems.push(
          `"${f.name}" is a stage without a dead-letter handler in ${this.source}: an order whose event reaches its DLQ would wait there unfinished; register one (docs/design.md, "Adding a stage")`,
        );
      }
      if (kind !== 'stage' && kind !== 'dead-letter-handler' && f.events.length > 0) {
        problems.push(`"${f.name}" acts on ${f.events.join(', ')}, but its row's kind (${kind}) is not subscribed to lifecycle events: make it a stage`);
      }
      if (kind === 'dead-letter-handler') {
        const stage = f.deadLettersOf;
        if (stage === undefined) {
          problems.push(`"${f.name}" is a dead-letter handler in ${table}, but ${this.source} names no stage in its "deadLettersOf"`);
        } else if (!(FUNCTION_NAMES as string[]).includes(stage) || FUNCTIONS[stage as FunctionName].kind !== 'stage') {
          problems.push(`"${f.name}" handles the dead letters of "${stage}", which is not a stage of ${table}`);
        } else if (this.functions.filter((g) => g.deadLettersOf === stage).length > 1) {
          problems.push(`"${stage}" has more than one dead-letter handler in ${this.source}; a stage's DLQ feeds one`);
        }
      } else if (f.deadLettersOf !== undefined) {
        problems.push(`"${f.name}" handles the dead letters of "${f.deadLettersOf}", but its row's kind (${kind}) is not dead-letter-handler`);
      }
    }
    for (const name of FUNCTION_NAMES) {
      if (!seen.has(name)) problems.push(`"${name}" has a row in ${table} but is not in ${this.source}`);
    }
    return problems;
  }

  /** Throws a RegistryError listing every problem, if there is any. */
  check(): this {
    const problems = this.problems();
    if (problems.length > 0) {
      throw new RegistryError(`${this.source} and the stage table disagree:\n  - ${problems.join('\n  - ')}`);
    }
    return this;
  }

  /** The dead-letter handler fed by the DLQ of `stage`, if it has one. */
  deadLetterHandlerOf(stage: string): string | undefined {
    return this.functions.find((f) => f.deadLettersOf === stage)?.name;
  }
}
