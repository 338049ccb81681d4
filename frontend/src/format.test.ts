import { describe, expect, it } from 'vitest';
import { initials, since, textOn } from './format';

describe('since', () => {
  const now = new Date('2026-05-01T12:00:00Z');
  it.each([
    ['', 'never'],
    ['garbage', 'unknown'],
    ['2026-05-01T11:59:30Z', 'just now'],
    ['2026-05-01T11:55:00Z', '5 min ago'],
    ['2026-05-01T09:00:00Z', '3 h ago'],
    ['2026-04-20T12:00:00Z', '20 Apr 2026'],
  ])('%j → %s', (iso, want) => {
    expect(since(iso, now)).toBe(want);
  });
});

describe('initials', () => {
  it.each([
    ['Atlas Shop', 'AS'],
    ['  casa  deals  maroc ', 'CD'],
    ['Zed', 'Z'],
    ['', ''],
  ])('%j → %s', (name, want) => {
    expect(initials(name)).toBe(want);
  });
});

describe('textOn', () => {
  it.each([
    ['#000000', '#ffffff'],
    ['#1e3a5f', '#ffffff'],
    ['#fde047', '#1f2937'],
    ['#ffffff', '#1f2937'],
    ['red', '#ffffff'],
  ])('%s → %s', (bg, want) => {
    expect(textOn(bg)).toBe(want);
  });
});
