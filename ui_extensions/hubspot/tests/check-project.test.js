import { cpSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkProject } from '../scripts/check-project.mjs';

const PROJECT = resolve(__dirname, '..');
let copies = [];

function copy() {
  const dir = mkdtempSync(join(tmpdir(), 'hsproj-'));
  cpSync(join(PROJECT, 'hsproject.json'), join(dir, 'hsproject.json'));
  cpSync(join(PROJECT, 'src'), join(dir, 'src'), { recursive: true, filter: (p) => !p.includes('node_modules') });
  copies.push(dir);
  return dir;
}

function edit(path, change) {
  writeFileSync(path, change(readFileSync(path, 'utf8')));
}

afterEach(() => { copies.forEach((d) => rmSync(d, { recursive: true, force: true })); copies = []; });

describe('check-project', () => {
  it('accepts the committed project', async () => {
    expect(await checkProject(PROJECT)).toEqual([]);
  });

  it('reports broken JSON, bad uids, wrong distribution and a missing entrypoint', async () => {
    const dir = copy();
    const app = join(dir, 'src/app/app-hsmeta.json');
    edit(app, (s) => s.replace('"marketplace"', '"private"').replace('"salesloop_app"', '"salesloop app"'));
    edit(join(dir, 'src/app/cards/deal-loop-card-hsmeta.json'), (s) => s.replace('DealLoopCard.jsx', 'Missing.jsx'));
    const errors = (await checkProject(dir)).join('\n');
    expect(errors).toContain('distribution must be marketplace');
    expect(errors).toContain("'uid' should use only letters");
    expect(errors).toContain('entrypoint not found: /app/cards/Missing.jsx');
  });

  it('reports a card that HubSpot would ignore and a fetch origin that is not the backend', async () => {
    const dir = copy();
    edit(join(dir, 'src/app/cards/deal-loop-card-hsmeta.json'), (s) => s.replace('"objectTypes"', '"extra": 1, "objectTypes"'));
    edit(join(dir, 'src/app/app-hsmeta.json'), (s) => s.replace('"fetch": ["https://salesloop.example.com"]', '"fetch": ["http://localhost:5000/x"]'));
    renameSync(join(dir, 'src/app/cards/deal-loop-card-hsmeta.json'), join(dir, 'src/app/deal-loop-card-hsmeta.json'));
    const errors = (await checkProject(dir)).join('\n');
    expect(errors).toContain('must be a bare https origin');
    expect(errors).toContain('permittedUrls.fetch must contain the backend');
    expect(errors).toContain('a card belongs in app/cards/');
  });

  it('reports invalid JSON and native fetch in the card', async () => {
    const dir = copy();
    edit(join(dir, 'src/app/cards/deal-loop-card-hsmeta.json'), (s) => s.replace('{', '{,'));
    const errors = (await checkProject(dir)).join('\n');
    expect(errors).toContain('invalid JSON');
    const dir2 = copy();
    edit(join(dir2, 'src/app/cards/DealLoopCard.jsx'), (s) => s.replace('await hubspot.fetch(url, { method: \'GET\'', 'await fetch(url, { method: \'GET\''));
    expect((await checkProject(dir2)).join('\n')).toContain('use hubspot.fetch');
  });

  it('reports webhooks aimed elsewhere or without privacy deletions', async () => {
    const dir = copy();
    edit(join(dir, 'src/app/webhooks/webhooks-hsmeta.json'), (s) => s
      .replace('https://salesloop.example.com/webhooks/hubspot', 'https://elsewhere.example.com/hook')
      .replace('"contact.privacyDeletion", "active": true', '"contact.privacyDeletion", "active": false'));
    const errors = (await checkProject(dir)).join('\n');
    expect(errors).toContain('targetUrl https://elsewhere.example.com/hook is not on the backend');
    expect(errors).toContain('must handle contact.privacyDeletion');
  });
});
