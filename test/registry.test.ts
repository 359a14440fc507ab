import * as fs from 'fs';
import * as path from 'path';
import { FUNCTION_NAMES, FUNCTIONS, loadConfig, namesOfKind } from '../infra/config';
import { OrderPipelineStack } from '../infra/pipeline-stack';
import { Registry, RegistryError, REGISTRY_FILE } from '../infra/registry';
import { cdkJsonContext, ROOT, template, testApp } from './helpers';

const registry = Registry.load();
const raw = () => JSON.parse(fs.readFileSync(REGISTRY_FILE, 'utf8'));
/** functions/registry.json with `change` applied to a copy. */
const doctored = (change: (doc: any) => void): Registry => {
  const doc = raw();
  change(doc);
  return Registry.from(doc);
};
const entry = (doc: any, name: string) => doc.functions.find((f: any) => f.name === name);

// Protects: the Rust side (functions/registry.json) and the infrastructure name the same
// functions: a function with no row in the stage table or no block in cdk.json, or a row or a
// block for a function the registry does not have, fails here.
describe('the Rust function registry agrees with the stage table and cdk.json', () => {
  const registered = registry.functions.map((f) => f.name).sort();

  test('every registered function has a row in the stage table, and every row is a registered function', () => {
    expect([...FUNCTION_NAMES].sort()).toEqual(registered);
  });

  test('every registered function has a block in cdk.json, and every block is a registered function', () => {
    expect(Object.keys(cdkJsonContext().functions as object).sort()).toEqual(registered);
  });

  test('the registry check finds nothing: triggers match the kinds, events are known event types, dead-letter handlers feed on stages', () => {
    expect(registry.problems()).toEqual([]);
  });

  // Protects: a subscription filter can only name an event type order-events publishes, and is the registry's, not a hand copy.
  test('every subscription filter names event types from eventTypes only, and each stage filters on its registry events', () => {
    const t = template();
    const filters = Object.values(t.findResources('AWS::SNS::Subscription'))
      .map((s: any) => s.Properties.FilterPolicy?.eventType)
      .filter((f): f is string[] => f !== undefined);
    expect(filters).toHaveLength(namesOfKind('stage').length);
    for (const filter of filters) {
      for (const eventType of filter) expect([eventType, registry.eventTypes.includes(eventType)]).toEqual([eventType, true]);
    }
    for (const name of namesOfKind('stage')) expect(filters).toContainEqual([...registry.get(name).events]);
  });
});

// Protects: the consistency check itself: each kind of disagreement is caught and named.
describe('the registry check catches every disagreement', () => {
  test.each<[string, (doc: any) => void, RegExp]>([
    ['a registered function with no row in the stage table', (d) => d.functions.push({ name: 'shipping', trigger: 'sqs', events: ['OrderCompleted'] }), /"shipping" is in .* but has no row in the stage table/],
    ['a row with no registered function', (d) => { d.functions = d.functions.filter((f: any) => f.name !== 'notification'); }, /"notification" has a row in the stage table .* but is not in/],
    ['a filter naming an event type not in eventTypes', (d) => { entry(d, 'inventory').events = ['OrderAcepted']; }, /"inventory" acts on "OrderAcepted", which is not one of .*eventTypes/],
    ['an event type dropped from eventTypes', (d) => { d.eventTypes = d.eventTypes.filter((e: string) => e !== 'InventoryReserved'); }, /"payment" acts on "InventoryReserved", which is not one of/],
    ['a stage acting on no event type', (d) => { entry(d, 'notification').events = []; }, /"notification" is a stage but acts on no event type/],
    ['a trigger that is not the row kind\'s', (d) => { entry(d, 'order-events').trigger = 'sqs'; }, /"order-events" has trigger "sqs" .* its row's kind \(stream\) is triggered by "stream"/],
    ['a dead-letter handler of a function that is not a stage', (d) => { entry(d, 'payment-dlq').deadLettersOf = 'order-api'; }, /"payment-dlq" handles the dead letters of "order-api", which is not a stage/],
    ['a dead-letter handler without its stage', (d) => { delete entry(d, 'payment-dlq').deadLettersOf; }, /"payment-dlq" is a dead-letter handler .* names no stage/],
    ['a stage without a dead-letter handler', (d) => { d.functions = d.functions.filter((f: any) => f.name !== 'inventory-dlq'); }, /"inventory" is a stage without a dead-letter handler/],
    ['a function registered twice', (d) => d.functions.push(entry(d, 'inventory')), /"inventory" is registered twice/],
  ])('%s', (_what, change, problem) => {
    const problems = doctored(change).problems();
    expect(problems).toContainEqual(expect.stringMatching(problem));
  });

  test('a malformed registry is refused naming what is wrong', () => {
    expect(() => Registry.from({ functions: [{ name: 'inventory', trigger: 'queue', events: [] }], eventTypes: [] })).toThrow(
      /"inventory" has trigger "queue", not one of sqs, stream, alarm, http/,
    );
    expect(() => Registry.from({ functions: [] })).toThrow(/"eventTypes" is not a list/);
  });

  // Protects: the stack never synthesizes from a registry that disagrees with the stage table.
  test('synth fails when the registry and the stage table disagree', () => {
    const app = testApp({ ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] });
    const bad = doctored((d) => d.functions.push({ name: 'shipping', trigger: 'sqs', events: ['OrderCompleted'] }));
    expect(() => new OrderPipelineStack(app, 'Bad', { config: loadConfig(app.node), registry: bad })).toThrow(RegistryError);
    expect(() => new OrderPipelineStack(app, 'Bad2', { config: loadConfig(app.node), registry: bad })).toThrow(/"shipping" is in/);
  });
});

// Protects: the infrastructure never spells an event type: the filters (and the stage
// descriptions) come from the registry, so a renamed event type cannot leave a stale filter.
test('no event type name appears in the code under infra/ (comments aside)', () => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(path.join(ROOT, 'infra'));
  expect(files.length).toBeGreaterThan(5);
  const found: string[] = [];
  for (const file of files) {
    // The code without its comments (which may well name event types); a `//` in a string
    // (https://) only hides the rest of its line.
    const code = fs.readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
    for (const eventType of registry.eventTypes) {
      for (const line of code.split('\n').filter((l) => new RegExp(`\\b${eventType}\\b`).test(l))) {
        found.push(`${path.relative(ROOT, file)}: ${line.trim()}`);
      }
    }
  }
  expect(found).toEqual([]);
});

test('the stage table has a row of kind dead-letter-handler exactly for each registry function with deadLettersOf', () => {
  const handlers = registry.functions.filter((f) => f.deadLettersOf !== undefined).map((f) => f.name).sort();
  expect(FUNCTION_NAMES.filter((n) => FUNCTIONS[n].kind === 'dead-letter-handler').sort()).toEqual(handlers);
});
