// Offline check of the HubSpot developer project, on HubSpot's own parser (project-parsing-lib):
// `hs project validate` needs an account and the network, this does not. It reads hsproject.json,
// translates the project like the CLI does, and compares the result with the files on disk.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { LATEST_SUPPORTED_PLATFORM_VERSION, isKnownPlatformVersion, parseProjectConfig } from '@hubspot/project-parsing-lib/projects';
import { translate } from '@hubspot/project-parsing-lib/translate';

const UID = /^[A-Za-z0-9._-]+$/;
const CARD_LOCATIONS = ['crm.record.tab', 'crm.record.sidebar', 'crm.preview', 'helpdesk.sidebar'];
const COMPONENT_DIRS = { app: 'app', card: 'app/cards', webhooks: 'app/webhooks' };

function hsmetaFiles(dir, root = dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    if (statSync(path).isDirectory()) return hsmetaFiles(path, root);
    return name.endsWith('-hsmeta.json') ? [relative(root, path)] : [];
  });
}

function origin(url) {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' && (u.pathname === '/' || u.pathname === '') && !u.search ? u.origin : null;
  } catch {
    return null;
  }
}

function checkApp(config, backend, errors) {
  if (config.distribution !== 'marketplace') errors.push(`app: distribution must be marketplace, got ${config.distribution}`);
  const auth = config.auth || {};
  if (auth.type !== 'oauth') errors.push(`app: auth.type must be oauth, got ${auth.type}`);
  const scopes = auth.requiredScopes || [];
  if (!scopes.includes('oauth')) errors.push('app: requiredScopes must include oauth');
  if (new Set(scopes).size !== scopes.length) errors.push('app: requiredScopes has duplicates');
  for (const url of auth.redirectUrls || []) {
    if (!url.startsWith(`${backend}/`)) errors.push(`app: redirect URL ${url} is not on the backend ${backend}`);
  }
  const fetch = (config.permittedUrls || {}).fetch || [];
  for (const url of fetch) {
    if (!origin(url)) errors.push(`app: permittedUrls.fetch entry ${url} must be a bare https origin`);
  }
  if (!fetch.includes(backend)) errors.push(`app: permittedUrls.fetch must contain the backend ${backend}`);
}

function checkCardSource(path, errors) {
  const source = readFileSync(path, 'utf8');
  if (/(^|[^.\w])fetch\s*\(/m.test(source)) errors.push(`${path}: use hubspot.fetch, native fetch is not available`);
  if (/<(div|span|p|a|img|button|ul|li|table|input)[\s/>]/.test(source)) errors.push(`${path}: HTML elements are not allowed in UI extensions`);
  if (/localStorage|sessionStorage|window\./.test(source)) errors.push(`${path}: browser globals are not available`);
}

export async function checkProject(projectDir) {
  const errors = [];
  let config;
  try {
    config = await parseProjectConfig(projectDir);
  } catch (err) {
    return [`hsproject.json: ${err.message}`];
  }
  if (!isKnownPlatformVersion(config.platformVersion)) return [`unknown platformVersion ${config.platformVersion}`];
  if (config.platformVersion !== LATEST_SUPPORTED_PLATFORM_VERSION) {
    errors.push(`platformVersion ${config.platformVersion} is not ${LATEST_SUPPORTED_PLATFORM_VERSION}`);
  }
  const srcDir = resolve(projectDir, config.srcDir);
  const onDisk = hsmetaFiles(srcDir);
  const parsed = {};
  for (const file of onDisk) {
    try {
      parsed[file] = JSON.parse(readFileSync(join(srcDir, file), 'utf8'));
    } catch (err) {
      errors.push(`${file}: invalid JSON: ${err.message}`);
    }
  }
  let nodes = {};
  try {
    const out = await translate({ projectSourceDir: srcDir, platformVersion: config.platformVersion }, { skipValidation: true });
    nodes = out.intermediateRepresentation.intermediateNodesIndexedByUid;
  } catch (err) {
    return [...errors, `translate failed: ${err.message}`];
  }
  const seen = new Set(Object.values(nodes).map((n) => n.metaFilePath));
  for (const [file, meta] of Object.entries(parsed)) {
    const extra = Object.keys(meta).filter((k) => !['uid', 'type', 'config'].includes(k));
    if (extra.length) errors.push(`${file}: unexpected top-level keys ${extra.join(', ')}`);
    if (!UID.test(meta.uid || '')) errors.push(`${file}: 'uid' should use only letters, numbers, periods, hyphens, and underscores`);
    const dir = COMPONENT_DIRS[meta.type];
    if (!dir) errors.push(`${file}: unknown component type ${meta.type}`);
    else if (file.split('/').slice(0, -1).join('/') !== dir) errors.push(`${file}: a ${meta.type} belongs in ${dir}/`);
    if (!seen.has(file)) errors.push(`${file}: HubSpot's parser ignored this file`);
  }
  const apps = Object.values(nodes).filter((n) => n.componentType === 'APPLICATION');
  const cards = Object.values(nodes).filter((n) => n.componentType === 'CARD');
  if (apps.length !== 1) return [...errors, `expected exactly one app component, found ${apps.length}`];
  const configJs = join(srcDir, 'app/cards/config.js');
  const { BACKEND } = existsSync(configJs) ? await import(pathToFileURL(configJs).href) : {};
  if (!origin(BACKEND || '')) errors.push('app/cards/config.js must export BACKEND, a bare https origin');
  checkApp(apps[0].config, BACKEND, errors);
  if (cards.length === 0) errors.push('no card component');
  for (const card of cards) {
    const c = card.config || {};
    if (!c.name) errors.push(`${card.metaFilePath}: config.name is required`);
    if (!CARD_LOCATIONS.includes(c.location)) errors.push(`${card.metaFilePath}: location ${c.location} is not a CRM card location`);
    if (!Array.isArray(c.objectTypes) || !c.objectTypes.length) errors.push(`${card.metaFilePath}: Missing required field: 'config.objectTypes'`);
    if ((card.componentDeps || {}).app !== apps[0].uid) errors.push(`${card.metaFilePath}: not attached to the app`);
    const entry = join(srcDir, c.entrypoint || '');
    if (!c.entrypoint || !existsSync(entry)) errors.push(`${card.metaFilePath}: entrypoint not found: ${c.entrypoint}`);
    else checkCardSource(entry, errors);
  }
  for (const hooks of Object.values(nodes).filter((n) => n.componentType === 'WEBHOOKS')) {
    const target = ((hooks.config || {}).settings || {}).targetUrl || '';
    if (!target.startsWith(`${BACKEND}/`)) errors.push(`${hooks.metaFilePath}: targetUrl ${target} is not on the backend ${BACKEND}`);
    const hub = ((hooks.config || {}).subscriptions || {}).hubEvents || [];
    if (!hub.some((h) => h.subscriptionType === 'contact.privacyDeletion' && h.active)) {
      errors.push(`${hooks.metaFilePath}: marketplace apps must handle contact.privacyDeletion`);
    }
  }
  return errors;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const dir = resolve(process.argv[2] || '.');
  const errors = await checkProject(dir);
  if (errors.length) {
    console.log(`INVALID: ${dir}`);
    for (const e of errors) console.log(`  - ${e}`);
    process.exit(1);
  }
  console.log(`VALID: ${dir}`);
}
