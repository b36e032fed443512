import { StopMatcher } from '../../lib/generate/stop';

function run(stops: string[], pieces: string[]): { out: string[]; stopped: boolean; rest: string } {
  const m = new StopMatcher(stops);
  const out: string[] = [];
  for (const p of pieces) {
    const r = m.push(p);
    out.push(r.text);
    if (r.stopped) return { out, stopped: true, rest: '' };
  }
  return { out, stopped: false, rest: m.flush() };
}

describe('stop strings', () => {
  test('a stop string split across pieces is never emitted, text before it is', () => {
    const r = run(['</end>'], ['Hello </', 'en', 'd> more']);
    expect(r.stopped).toBe(true);
    expect(r.out.join('')).toBe('Hello ');
  });

  test('a held-back prefix that turns out not to be a stop string is released', () => {
    const r = run(['STOP'], ['ab S', 'T', 'x', 'yz']);
    expect(r.stopped).toBe(false);
    expect(r.out).toEqual(['ab ', '', 'STx', 'yz']);
    expect(r.rest).toBe('');
  });

  test('the earliest of several stop strings wins; flush returns a trailing prefix', () => {
    expect(run(['cd', 'b'], ['abcd']).out.join('')).toBe('a');
    const r = run(['xyz'], ['abc', 'xy']);
    expect(r.out.join('') + r.rest).toBe('abcxy');
  });

  test('no stop strings: everything passes through at once', () => {
    expect(run([], ['a', 'b']).out).toEqual(['a', 'b']);
  });
});
