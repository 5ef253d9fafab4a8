/**
 * Rendering of engine data the way docker's formatter package does: `--format` templates
 * (with the `table` prefix, `json`, and docker's per-command defaults), the formatter
 * contexts that turn API objects into display fields, and tabwriter alignment.
 */
import type { DiskUsage } from '../engine/system.js';
import type { HistoryItem, ImageSummary } from '../engine/api-types.js';
import { tabwrite } from './tabwriter.js';
import { HEADER_FUNCS, Template, TemplateError, strictContext } from './template.js';
import { ellipsis, goTimeString, humanSize, rfc3339Local, since, truncateId } from './units.js';

/** A `--format` value that could not be parsed (docker: "Template parsing error: …"). */
export class FormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FormatError';
  }
}

/** Parses a format with docker's preprocessing (`table` prefix, literal `\t` and `\n`). */
export function parseFormat(format: string): { template: Template; table: boolean } {
  const table = format.startsWith('table');
  let text = table ? format.slice('table'.length) : format;
  text = text.replace(/^ +| +$/g, '').replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  try {
    return { template: Template.parse(text), table };
  } catch (err) {
    if (err instanceof TemplateError) throw new FormatError(`Template parsing error: ${err.message}`);
    throw err;
  }
}

/**
 * Renders `rows` with `format`: one line per row; a `table` format gets the header row
 * (`header` maps field names to column titles) and tabwriter alignment.
 */
export function render(format: string, rows: readonly object[], header: Readonly<Record<string, string>>): string {
  const { template, table } = parseFormat(format);
  let body = '';
  for (const row of rows) body += template.execute(row) + '\n';
  if (!table) return body;
  const head = template.execute(header, HEADER_FUNCS) + '\n';
  return tabwrite(head + body);
}

/** docker ≥ 24's `--format json`: one JSON object per line. */
export function resolveJsonFormat(format: string): string {
  return format === 'json' ? '{{json .}}' : format;
}

// ---------------------------------------------------------------------------------------------
// images

export const IMAGE_HEADER: Readonly<Record<string, string>> = {
  ID: 'IMAGE ID',
  Repository: 'REPOSITORY',
  Tag: 'TAG',
  Digest: 'DIGEST',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  Size: 'SIZE',
  Containers: 'CONTAINERS',
  VirtualSize: 'SIZE',
  SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE',
};

const IMAGE_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const IMAGE_TABLE_DIGESTS = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';

/** docker's NewImageFormat: the format `docker images` uses for its flags. */
export function imageFormat(format: string | undefined, o: { quiet: boolean; digests: boolean }): string {
  const source = resolveJsonFormat(format || 'table');
  if (source === 'table') return o.quiet ? '{{.ID}}' : o.digests ? IMAGE_TABLE_DIGESTS : IMAGE_TABLE;
  if (source === 'raw') {
    if (o.quiet) return 'image_id: {{.ID}}';
    return `repository: {{ .Repository }}\ntag: {{.Tag}}\n${o.digests ? 'digest: {{.Digest}}\n' : ''}image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n`;
  }
  if (source.startsWith('table') && o.digests && !source.includes('{{.Digest}}')) return `${source}\t{{.Digest}}`;
  return source;
}

function splitTag(familiar: string): [string, string] {
  const i = familiar.lastIndexOf(':');
  return i > familiar.lastIndexOf('/') ? [familiar.slice(0, i), familiar.slice(i + 1)] : [familiar, ''];
}

export interface ImageContextOptions {
  trunc: boolean;
  digests: boolean;
  now?: number;
}

/** One display row of `docker images` (fields are strings, as docker's context methods). */
function imageContext(s: ImageSummary, repo: string, tag: string, digest: string, o: ImageContextOptions): object {
  const unique = s.VirtualSize === -1 || s.SharedSize === -1 ? 'N/A' : humanSize(s.VirtualSize - s.SharedSize);
  // Keys in sorted order: `{{json .}}` prints them as docker's marshalMap does.
  return strictContext({
    Containers: s.Containers === -1 ? 'N/A' : String(s.Containers),
    CreatedAt: goTimeString(s.Created),
    CreatedSince: since(s.Created, o.now),
    Digest: digest,
    ID: o.trunc ? truncateId(s.Id) : s.Id,
    Repository: repo,
    SharedSize: s.SharedSize === -1 ? 'N/A' : humanSize(s.SharedSize),
    Size: humanSize(s.Size, 3),
    Tag: tag,
    UniqueSize: unique,
    VirtualSize: humanSize(s.VirtualSize),
  }, '*formatter.imageContext');
}

/** docker's imageFormat: one row per repository:tag (and digest with `--digests`). */
export function imageContexts(summaries: readonly ImageSummary[], o: ImageContextOptions): object[] {
  const rows: object[] = [];
  for (const s of summaries) {
    const dangling = s.RepoTags.length === 1 && s.RepoTags[0] === '<none>:<none>' &&
      s.RepoDigests.length === 1 && s.RepoDigests[0] === '<none>@<none>';
    if (dangling) {
      rows.push(imageContext(s, '<none>', '<none>', '<none>', o));
      continue;
    }
    const tags = new Map<string, string[]>();
    const digests = new Map<string, string[]>();
    for (const t of s.RepoTags) {
      const [repo, tag] = splitTag(t);
      if (tag === '') continue;
      if (!tags.has(repo)) tags.set(repo, []);
      tags.get(repo)!.push(tag);
    }
    for (const d of s.RepoDigests) {
      const at = d.indexOf('@');
      if (at < 0) continue;
      const repo = d.slice(0, at);
      if (!digests.has(repo)) digests.set(repo, []);
      digests.get(repo)!.push(d.slice(at + 1));
    }
    for (const [repo, repoTags] of tags) {
      const ds = o.digests ? (digests.get(repo) ?? []) : [];
      digests.delete(repo);
      for (const tag of repoTags) {
        if (ds.length === 0) rows.push(imageContext(s, repo, tag, '<none>', o));
        for (const d of ds) rows.push(imageContext(s, repo, tag, d, o));
      }
    }
    for (const [repo, ds] of digests) {
      if (o.digests) for (const d of ds) rows.push(imageContext(s, repo, '<none>', d, o));
      else rows.push(imageContext(s, repo, '<none>', '', o));
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// history

export const HISTORY_HEADER: Readonly<Record<string, string>> = {
  ID: 'IMAGE',
  CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT',
  CreatedBy: 'CREATED BY',
  Size: 'SIZE',
  Comment: 'COMMENT',
};

const HISTORY_TABLE = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';

export function historyFormat(format: string | undefined, o: { quiet: boolean }): string {
  const source = resolveJsonFormat(format || 'table');
  if (source === 'table') return o.quiet ? '{{.ID}}' : HISTORY_TABLE;
  return source;
}

export function historyContexts(items: readonly HistoryItem[], o: { trunc: boolean; human: boolean; now?: number }): object[] {
  return items.map((h) => {
    const createdBy = h.CreatedBy.replaceAll('\t', ' ');
    return strictContext({
      Comment: h.Comment,
      CreatedAt: rfc3339Local(h.Created),
      CreatedBy: o.trunc ? ellipsis(createdBy, 45) : createdBy,
      CreatedSince: o.human ? since(h.Created, o.now) : rfc3339Local(h.Created),
      ID: o.trunc && h.Id !== '<missing>' ? truncateId(h.Id) : h.Id,
      Size: o.human ? humanSize(h.Size, 3) : String(h.Size),
    }, '*formatter.historyContext');
  });
}

// ---------------------------------------------------------------------------------------------
// system df

export const DF_HEADER: Readonly<Record<string, string>> = {
  Type: 'TYPE',
  TotalCount: 'TOTAL',
  Active: 'ACTIVE',
  Size: 'SIZE',
  Reclaimable: 'RECLAIMABLE',
};

export const DF_TABLE = 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}';
export const DF_IMAGES_TABLE = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}';

function reclaimable(size: number, total: number): string {
  return total > 0 ? `${humanSize(size)} (${Math.trunc((size * 100) / total)}%)` : humanSize(size);
}

/** The four summary rows of `docker system df`. */
export function dfContexts(df: Pick<DiskUsage, 'LayersSize' | 'Images' | 'Containers' | 'Volumes'>): object[] {
  let used = 0;
  for (const i of df.Images) {
    if (i.Containers !== 0 && i.VirtualSize !== -1 && i.SharedSize !== -1) used += i.VirtualSize - i.SharedSize;
  }
  const row = (Type: string, TotalCount: number, Active: number, Size: string, Reclaimable: string) =>
    strictContext({ Active: String(Active), Reclaimable, Size, TotalCount: String(TotalCount), Type }, '*formatter.diskUsageContext');
  return [
    row('Images', df.Images.length, df.Images.filter((i) => i.Containers > 0).length, humanSize(df.LayersSize), reclaimable(df.LayersSize - used, df.LayersSize)),
    containersRow(df.Containers, row),
    volumesRow(df.Volumes, row),
    row('Build Cache', 0, 0, humanSize(0), humanSize(0)),
  ];
}

type DfRow = (Type: string, TotalCount: number, Active: number, Size: string, Reclaimable: string) => object;

function containersRow(containers: DiskUsage['Containers'], row: DfRow): object {
  let size = 0;
  let idle = 0;
  for (const c of containers) {
    size += c.SizeRw ?? 0;
    if (c.State !== 'running' && c.State !== 'paused') idle += c.SizeRw ?? 0;
  }
  const active = containers.filter((c) => c.State === 'running' || c.State === 'paused').length;
  return row('Containers', containers.length, active, humanSize(size), reclaimable(idle, size));
}

function volumesRow(volumes: DiskUsage['Volumes'], row: DfRow): object {
  let size = 0;
  let unused = 0;
  for (const v of volumes) {
    if (v.UsageData.Size > 0) size += v.UsageData.Size;
    if (v.UsageData.RefCount === 0 && v.UsageData.Size > 0) unused += v.UsageData.Size;
  }
  return row('Local Volumes', volumes.length, volumes.filter((v) => v.UsageData.RefCount > 0).length, humanSize(size), reclaimable(unused, size));
}

/** `docker system df -v`'s container rows. */
export function dfContainerContexts(containers: DiskUsage['Containers'], now?: number): object[] {
  return containers.map((c) => ({
    ID: truncateId(c.Id),
    Image: c.Image,
    Command: `"${ellipsis(c.Command, 20)}"`,
    LocalVolumes: String((c.Mounts as Array<{ Type?: string }>).filter((m) => m.Type === 'volume').length),
    Size: humanSize(c.SizeRw ?? 0),
    RunningFor: since(c.Created, now),
    Status: c.Status,
    Names: c.Names.map((n) => n.replace(/^\//, '')).join(','),
  }));
}

/** `docker system df -v`'s volume rows. */
export function dfVolumeContexts(volumes: DiskUsage['Volumes']): object[] {
  return volumes.map((v) => ({ Name: v.Name, Links: String(v.UsageData.RefCount), Size: v.UsageData.Size < 0 ? 'N/A' : humanSize(v.UsageData.Size) }));
}

/** `docker system df -v`'s image rows: sizes at 4 significant digits. */
export function dfImageContexts(images: readonly ImageSummary[], now?: number): object[] {
  return imageContexts(images, { trunc: true, digests: false, now }).map((row) => {
    const r = row as Record<string, string>;
    const s = images.find((i) => truncateId(i.Id) === r.ID)!;
    return strictContext({ ...r, Size: humanSize(s.Size) }, '*formatter.imageContext');
  });
}
