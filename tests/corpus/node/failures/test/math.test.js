const test = require('node:test');
const assert = require('node:assert');
const { ratio } = require('../lib/ratio');

test('adds', () => {
  assert.strictEqual(1 + 1, 2);
});

test('strict equal fails', () => {
  assert.strictEqual(1, 2);
});

test('ratio by zero', () => {
  ratio(4, 0);
});

test('async rejects', async () => {
  await Promise.resolve();
  throw new Error('async trouble: 42');
});

test('deep equal fails', () => {
  assert.deepStrictEqual({ a: 1, b: [1, 2] }, { a: 1, b: [1, 3] });
});
