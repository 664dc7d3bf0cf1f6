import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import {
  applyQuery,
  formatOutput,
  formatTable,
  formatTsv,
  QueryError,
  sortKeysDeep,
  validateQuery,
  type TableSpec,
} from '../../../src/cli/output.js';
import { REGISTRY_TABLE } from '../../../src/cli/views.js';

const registry = {
  name: 'myregistry',
  sku: { name: 'Premium', tier: 'Premium' },
  loginServer: 'myregistry.localhost',
  creationDate: '2026-01-02T03:04:05.000Z',
  adminUserEnabled: false,
  id: '/registries/myregistry',
  type: 'Berth/registries',
  networkRuleSet: {
    defaultAction: 'Deny',
    ipRules: [{ action: 'Allow', ipAddressOrRange: '203.0.113.0/24' }],
  },
};

describe('json', () => {
  test('sorts keys at every depth and indents by two, like az', () => {
    const text = formatOutput({ b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }, { format: 'json' });
    assert.equal(
      text,
      '{\n  "a": {\n    "c": null,\n    "d": [\n      {\n        "y": 2,\n        "z": 1\n      }\n    ]\n  },\n  "b": 1\n}\n',
    );
  });

  test('prints nothing for a command without a result, and for a null query result', () => {
    assert.equal(formatOutput(undefined, { format: 'json' }), '');
    assert.equal(formatOutput({ a: 1 }, { format: 'json', query: 'missing' }), '');
  });

  test('a scalar query result is printed as JSON (quoted string)', () => {
    assert.equal(
      formatOutput(registry, { format: 'json', query: 'networkRuleSet.defaultAction' }),
      '"Deny"\n',
    );
  });
});

describe('jsonc', () => {
  test('colours keys and values but parses back to the same JSON once colours are stripped', () => {
    const text = formatOutput(registry, { format: 'jsonc', color: true });
    const esc = '\x1b';
    assert.ok(text.includes(`${esc}[94m"name"${esc}[0m: ${esc}[32m"myregistry"${esc}[0m`));
    assert.ok(text.includes(`${esc}[33mfalse${esc}[0m`));
    const plain = text
      .split(esc)
      .map((part, i) => (i === 0 ? part : part.replace(/^\[\d+m/, '')))
      .join('');
    assert.deepEqual(JSON.parse(plain), registry);
  });

  test('without colour it is plain sorted JSON', () => {
    assert.equal(
      formatOutput({ b: [], a: {} }, { format: 'jsonc', color: false }),
      '{\n  "a": {},\n  "b": []\n}\n',
    );
  });
});

describe('yaml', () => {
  test('round-trips and sorts keys', () => {
    const text = formatOutput(registry, { format: 'yaml' });
    assert.deepEqual(YAML.parse(text), registry);
    assert.ok(text.indexOf('adminUserEnabled') < text.indexOf('name:'));
  });
});

describe('tsv', () => {
  test('a scalar is printed bare, one line', () => {
    assert.equal(formatOutput(registry, { format: 'tsv', query: 'networkRuleSet.defaultAction' }), 'Deny\n');
    assert.equal(formatOutput(registry, { format: 'tsv', query: 'adminUserEnabled' }), 'false\n');
  });

  test('an object prints its scalar values in sorted key order; nested values are empty cells', () => {
    assert.equal(formatTsv({ b: 'two', a: 1, c: { x: 1 }, d: null }), '1\ttwo\t\t\n');
  });

  test('with --query, the order of a multiselect hash is kept', () => {
    const text = formatOutput([registry, { ...registry, name: 'other' }], {
      format: 'tsv',
      query: '[].{n:name, s:sku.name, d:networkRuleSet.defaultAction}',
    });
    assert.equal(text, 'myregistry\tPremium\tDeny\nother\tPremium\tDeny\n');
  });

  test('a list of scalars is one value per line', () => {
    assert.equal(formatOutput(['a', 'b/c'], { format: 'tsv' }), 'a\nb/c\n');
  });

  test('an empty list prints nothing', () => {
    assert.equal(formatOutput([], { format: 'tsv' }), '');
  });
});

describe('table', () => {
  test("a command's own columns, az-style header and dashes", () => {
    const text = formatOutput([registry], { format: 'table', table: REGISTRY_TABLE });
    assert.equal(
      text,
      [
        'NAME        SKU      LOGIN SERVER          CREATION DATE             ADMIN ENABLED',
        '----------  -------  --------------------  ------------------------  -------------',
        'myregistry  Premium  myregistry.localhost  2026-01-02T03:04:05.000Z  false',
        '',
      ].join('\n'),
    );
  });

  test('rows can come from inside the result', () => {
    const spec: TableSpec = {
      columns: [{ header: 'RULE', value: (r) => r.ipAddressOrRange }],
      rows: (data) => (data as { ipRules: unknown[] }).ipRules,
    };
    const text = formatOutput(
      { ipRules: [{ ipAddressOrRange: '10.0.0.0/8' }] },
      { format: 'table', table: spec },
    );
    assert.equal(text, 'RULE\n----------\n10.0.0.0/8\n');
  });

  test('generic fallback: top-level scalars, capitalised headers, id and type skipped', () => {
    const text = formatTable({ name: 'x', id: '/r/x', type: 't', nested: { a: 1 }, count: 3 });
    assert.equal(text, 'Count  Name\n-----  ----\n3      x\n');
  });

  test('a --query result drops the command columns and keeps the query order', () => {
    const text = formatOutput([registry], {
      format: 'table',
      table: REGISTRY_TABLE,
      query: '[].{name:name, action:networkRuleSet.defaultAction}',
    });
    assert.equal(text, 'Name        Action\n----------  ------\nmyregistry  Deny\n');
  });

  test('a list of scalars gets a Result column', () => {
    assert.equal(formatTable(['a', 'bb']), 'Result\n------\na\nbb\n');
  });

  test('an empty list prints nothing', () => {
    assert.equal(formatOutput([], { format: 'table', table: REGISTRY_TABLE }), '');
  });
});

describe('none', () => {
  test('prints nothing at all', () => {
    assert.equal(formatOutput(registry, { format: 'none' }), '');
  });
});

describe('--query', () => {
  test('is applied before formatting', () => {
    assert.deepEqual(applyQuery(registry, 'networkRuleSet.ipRules[].ipAddressOrRange'), ['203.0.113.0/24']);
    assert.deepEqual(applyQuery([registry], "[?sku.name=='Premium'].name"), ['myregistry']);
    assert.equal(applyQuery(registry, 'length(networkRuleSet.ipRules)'), 1);
  });

  test('invalid expressions are rejected up front', () => {
    assert.throws(() => validateQuery('[?'), QueryError);
    assert.doesNotThrow(() => validateQuery('a.b[0]'));
    // Only syntax is checked up front: a function that needs data must not fail on an empty document.
    assert.doesNotThrow(() => validateQuery('length(value)'));
  });

  test('a type error at evaluation is a QueryError', () => {
    assert.throws(() => applyQuery({ a: 'x' }, 'length(`1`)'), QueryError);
  });
});

test('sortKeysDeep leaves arrays in order', () => {
  assert.deepEqual(sortKeysDeep([{ b: 1, a: 2 }, 3]), [{ a: 2, b: 1 }, 3]);
  assert.deepEqual(Object.keys(sortKeysDeep({ b: 1, a: 2 }) as object), ['a', 'b']);
});
