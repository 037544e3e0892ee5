/**
 * How the rules store reads an engine's refusal into its own problem items (which the API
 * then shows as `errors` of API_ERR_RULES_INVALID).
 */
import { describe, expect, it } from 'vitest';
import { refusalItems } from '../../../src/anonymizer/store/problems.ts';
import { defineError } from '../../../src/shared/errors/index.ts';

const TEST_ERR_REFUSED = defineError('TEST_ERR_REFUSED', 'refused: %s', 400, false);

describe('refusalItems', () => {
  it('reads a problem list, whatever the engine calls its fields', () => {
    const err = TEST_ERR_REFUSED.createWith(
      {
        problems: [
          { code: 'X_UNKNOWN', message: 'unknown method', line: 5, column: 13, path: 'rules[1].method' },
          { detail: 'bad pointer', pointer: '/rules/0', col: 2, location: 'here' },
          'plain text',
          42,
        ],
      },
      ['two'],
    );
    expect(refusalItems(err)).toEqual([
      { message: 'unknown method', line: 5, column: 13, path: 'rules[1].method', code: 'X_UNKNOWN' },
      { message: 'bad pointer', column: 2, path: 'here', pointer: '/rules/0' },
      { message: 'plain text' },
    ]);
  });

  it('falls back to a top-level position, then to the error itself', () => {
    const placed = TEST_ERR_REFUSED.createWith({ line: 3, column: 1 }, ['syntax']);
    expect(refusalItems(placed)).toEqual([{ message: 'refused: syntax', line: 3, column: 1 }]);
    const bare = TEST_ERR_REFUSED.createWith({ location: 'draft' }, ['no list']);
    expect(refusalItems(bare)).toEqual([{ message: 'refused: no list', code: 'TEST_ERR_REFUSED' }]);
  });
});
