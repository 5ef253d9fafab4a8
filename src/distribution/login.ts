/**
 * `login` and `logout`: credentials are verified against the registry before they are stored,
 * the way docker does it: the registry's `/v2/` challenge is answered with them (Basic: the
 * user:password itself; Bearer: a token fetched from the realm with them), and only a 200
 * from `/v2/` stores them in the config file.
 */
import { InvalidArgumentError } from '../errors.js';
import type { Credentials } from './auth.js';
import { responseError, type RegistryClient } from './client.js';
import { removeCredentials, storeCredentials } from './credentials.js';
import { credentialKey, normalizeRegistryDomain } from './endpoint.js';

export interface LoginResult {
  /** Registry domain (`docker.io`, `localhost:5000`). */
  domain: string;
  /** Key the credentials were stored under in the config file. */
  key: string;
  /** The registry asks for no credentials at all; they were stored anyway, as docker does. */
  open: boolean;
}

/**
 * Verifies `credentials` against `server` (default Docker Hub) and stores them in
 * `credentialsFile`. A wrong password is a RegistryError with status 401 and docker's text:
 * `Get "http://…/v2/": unauthorized: authentication required`; nothing is stored then.
 *
 * @example await login(client, 'localhost:5000', { username: 'u', password: 'p' }, { credentialsFile })
 */
export async function login(
  client: RegistryClient,
  server: string | undefined,
  credentials: Credentials,
  options: { credentialsFile: string },
): Promise<LoginResult> {
  if (credentials.username === '' || credentials.password === '') throw new InvalidArgumentError('username and password are required');
  const domain = normalizeRegistryDomain(server);
  const host = await client.connect(domain, credentials);
  const url = new URL(`${host.endpoint.baseUrl}/v2/`);
  const open = host.authorizer.scheme === undefined;
  if (!open) {
    const authorization = await host.authorizer.header([]);
    const res = await client.http.request({
      method: 'GET',
      url,
      headers: authorization ? { authorization } : {},
      skipTlsVerify: host.endpoint.skipTlsVerify,
    });
    if (res.status !== 200) throw await responseError(res, `Get "${url.href}"`);
    await res.discard();
  }
  await storeCredentials(options.credentialsFile, domain, credentials);
  client.forget(domain);
  return { domain, key: credentialKey(domain), open };
}

/** Removes stored credentials for `server`; `removed` is false when there were none ("Not logged in"). */
export async function logout(server: string | undefined, options: { credentialsFile: string }): Promise<{ domain: string; removed: boolean }> {
  const domain = normalizeRegistryDomain(server);
  return { domain, removed: await removeCredentials(options.credentialsFile, domain) };
}
