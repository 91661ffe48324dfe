import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

describe('shapes', () => {
  describe('circle', () => {
    it('has an area', () => { assert.ok(Math.PI > 3); });
    it('has a wrong perimeter', () => {
      assert.equal(2 * 3, 7, 'perimeter is off');
    });
  });
  describe('square', () => {
    describe('when empty', () => {
      it('has no area', () => { assert.equal(0 * 0, 0); });
    });
    it('has four sides', () => { assert.equal([1, 2, 3, 4].length, 4); });
  });
});

it('stands alone', async (t) => {
  await t.test('sub one', () => {});
  await t.test('sub two', () => {});
});
