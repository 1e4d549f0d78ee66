import { ALL_VARIABLES } from '@cashflow/config';
import { TOPICS, TOPIC_KEYS } from '@cashflow/contracts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');

describe('README', () => {
  it('documents every environment variable in its configuration table', () => {
    const undocumented = Object.keys(ALL_VARIABLES).filter(
      (name) => !readme.includes(`| \`${name}\``),
    );
    expect(undocumented).toEqual([]);
  });

  it('lists every topic', () => {
    const missing = TOPIC_KEYS.map((key) => TOPICS[key].name).filter(
      (name) => !readme.includes(`| \`${name}\``),
    );
    expect(missing).toEqual([]);
  });
});
