/**
 * Free-text scrubbing: the generic e-mail pattern starts only where a run of local-part
 * characters starts (issue 10, linear cost). The same addresses are still found wherever they
 * stand, and a long run without an `@` is one scan, not one per position.
 */
import { describe, expect, it } from 'vitest';
import { collectPhi, scrubText } from '../../src/anonymizer/engine/free-text.ts';

const none = collectPhi([], 2);

describe('scrubText e-mail pattern', () => {
  it.each([
    ['mail john.doe@example.org today', 'mail [x] today'],
    ['(john_doe+tag@mail.example.com)', '([x])'],
    ['contact:jane@example.org;', 'contact:[x];'],
    ['a@b.co and c@d.co', '[x] and [x]'],
  ])('scrubs %s', (input, expected) => {
    expect(scrubText(input, none, '[x]')).toBe(expected);
  });

  it('leaves a 1 MB token without @ unchanged (one scan of the run, not one per position)', () => {
    // Before the fix this input took minutes (quadratic): the test then fails on its timeout.
    const token = 'a1.'.repeat(350_000);
    expect(scrubText(token, none, '[x]')).toBe(token);
  });

  it('still scrubs an address at the end of a 1 MB run', () => {
    const text = `${'a'.repeat(1_000_000)}@example.org`;
    expect(scrubText(text, none, '[x]')).toBe('[x]');
  });

  it('scrubs names from the dictionary next to punctuation', () => {
    const dict = collectPhi([{ resourceType: 'Patient', name: [{ family: 'Hoeger', given: ['Buster'] }] }], 2);
    expect(scrubText('Seen: Buster Hoeger.', dict, '[x]')).toBe('Seen: [x] [x].');
  });
});
