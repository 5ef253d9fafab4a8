/**
 * The OCI distribution client. The engine composes it with the layer and image stores:
 * `fetchImage` is a registry image source, `pushImage` a registry sink, `login`/`logout`
 * manage credentials, `DistributionMetadataStore` keeps Docker's `distribution/` files.
 */
export { RegistryClient, Repository, DEFAULT_CHUNK_SIZE, type RegistryClientOptions, type RegistryHost, type UploadSession } from './client.js';
export { fetchImage, CONFIG_SIZE_LIMIT, type FetchOptions, type FetchedImage, type FetchedLayer } from './pull.js';
export { pushImage, DEFAULT_PUSH_CONCURRENCY, type PushOptions, type PushLayer, type PushProgress, type PushResult, type PushedLayer, type PushStatus, type LayerAction } from './push.js';
export { login, logout, type LoginResult } from './login.js';
export { DistributionMetadataStore, v2MetadataHmac, v2MetadataHmacKey, type V2Metadata } from './metadata.js';
export { readCredentials, storeCredentials, removeCredentials } from './credentials.js';
export { endpointsFor, normalizeRegistryDomain, credentialKey, isLoopbackDomain, DOCKER_HUB_HOST, DOCKER_HUB_CREDENTIAL_KEY, type Endpoint } from './endpoint.js';
export { parseChallenges, repositoryScope, type Challenge, type Credentials } from './auth.js';
export { MediaTypes, MANIFEST_ACCEPT, parseManifest, selectManifest, buildManifest, hostPlatform, formatPlatform, type Descriptor, type ImageIndex, type ImageManifest, type Platform, type ManifestFormat } from './manifest.js';
export { openBlob, type BlobReadOptions } from './blob-reader.js';
export { uploadBlob, type UploadOptions, type UploadOutcome } from './blob-upload.js';
export { gzipLayer, PUSH_GZIP_OPTIONS } from './compress.js';
export { RegistryError, isTransient, type RegistryErrorEntry } from './errors.js';
export type { HttpExchange } from './http.js';
