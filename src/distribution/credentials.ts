/**
 * Registry credentials in docker's `config.json` format, at a path the caller chooses
 * (`$STRATA_CONFIG`, `~/.strata/config.json`, or a real `~/.docker/config.json`):
 *
 * ```json
 * {
 * 	"auths": {
 * 		"https://index.docker.io/v1/": { "auth": "<base64 of user:password>" },
 * 		"localhost:5000": { "auth": "…" }
 * 	}
 * }
 * ```
 *
 * Keys are matched the way docker matches them: scheme and path are ignored, so
 * `http://localhost:5000` and `localhost:5000/v2/` name the same registry. Fields strata does
 * not use (`credsStore`, `HttpHeaders`, other registries) survive a write untouched. Credential
 * helpers (`credsStore`, `credHelpers`) are not run; entries they manage are invisible here.
 * The file is replaced atomically with mode 0600 (it holds passwords).
 */
import path from 'node:path';

import { InvalidArgumentError } from '../errors.js';
import { atomicWriteFile } from '../sys/atomic.js';
import { ensureDir, readOptional } from '../sys/fs.js';
import type { Credentials } from './auth.js';
import { credentialKey, normalizeRegistryDomain } from './endpoint.js';

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  [key: string]: unknown;
}

interface ConfigFile {
  auths?: Record<string, AuthEntry>;
  [key: string]: unknown;
}

async function readConfig(file: string): Promise<ConfigFile> {
  const raw = await readOptional(file);
  if (raw === undefined || raw.toString('utf8').trim() === '') return {};
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as ConfigFile;
  } catch (err) {
    throw new InvalidArgumentError(`invalid credentials file ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function decodeEntry(entry: AuthEntry): Credentials | undefined {
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const text = Buffer.from(entry.auth, 'base64').toString('utf8');
    const i = text.indexOf(':');
    if (i > 0) return { username: text.slice(0, i), password: text.slice(i + 1) };
  }
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username !== '') {
    return { username: entry.username, password: entry.password };
  }
  return undefined;
}

function matchingKeys(config: ConfigFile, domain: string): string[] {
  const want = normalizeRegistryDomain(domain);
  return Object.keys(config.auths ?? {}).filter((k) => normalizeRegistryDomain(k) === want);
}

/** The stored credentials for a registry domain (`docker.io`, `localhost:5000`), if any. */
export async function readCredentials(configFile: string, domain: string): Promise<Credentials | undefined> {
  const config = await readConfig(configFile);
  const keys = matchingKeys(config, domain);
  // The canonical key first: it is the one `docker login` writes.
  const canonical = credentialKey(domain);
  keys.sort((a, b) => Number(b === canonical) - Number(a === canonical));
  for (const k of keys) {
    const c = decodeEntry(config.auths![k]!);
    if (c) return c;
  }
  return undefined;
}

async function writeConfig(file: string, config: ConfigFile): Promise<void> {
  await ensureDir(path.dirname(file), 0o700);
  // Tab indentation, as the docker CLI writes the file.
  await atomicWriteFile(file, JSON.stringify(config, null, '\t'), { mode: 0o600 });
}

/** Stores credentials under the registry's canonical key, replacing other spellings of it. */
export async function storeCredentials(configFile: string, domain: string, credentials: Credentials): Promise<void> {
  if (credentials.username === '' || credentials.username.includes(':')) {
    throw new InvalidArgumentError('username must be non-empty and must not contain ":"');
  }
  const config = await readConfig(configFile);
  const auths = { ...(config.auths ?? {}) };
  for (const k of matchingKeys(config, domain)) delete auths[k];
  auths[credentialKey(domain)] = { auth: Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64') };
  await writeConfig(configFile, { ...config, auths });
}

/** Removes every entry for the registry; false when there was none. */
export async function removeCredentials(configFile: string, domain: string): Promise<boolean> {
  const config = await readConfig(configFile);
  const keys = matchingKeys(config, domain);
  if (keys.length === 0) return false;
  const auths = { ...(config.auths ?? {}) };
  for (const k of keys) delete auths[k];
  await writeConfig(configFile, { ...config, auths });
  return true;
}
