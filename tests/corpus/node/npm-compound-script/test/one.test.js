const test = require('node:test');
const assert = require('node:assert');
test('passes', () => {});
test('fails', () => { assert.strictEqual('a', 'b'); });
