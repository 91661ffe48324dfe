const { test, describe } = require('node:test');
const assert = require('node:assert');

test('runs', () => {});
test('skipped with option', { skip: 'not on this platform' }, () => {});
test.skip('skipped with method', () => {});
test('skipped at runtime', (t) => { t.skip('decided inside'); });
describe('todos', () => {
  test('todo that fails', { todo: 'fix the parser' }, () => { assert.fail('still broken'); });
  test('todo that passes', { todo: true }, () => {});
  test.todo('todo without a body');
});
