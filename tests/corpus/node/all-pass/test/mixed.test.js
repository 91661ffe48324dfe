const { test, describe } = require('node:test');
const assert = require('node:assert/strict');
const { add, mul } = require('../src/math');
describe('mixed', () => {
  for (let i = 0; i < 12; i++) {
    test(`case ${i}`, () => { assert.equal(add(i, i), mul(i, 2)); });
  }
});
