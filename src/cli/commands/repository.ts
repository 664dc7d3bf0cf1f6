// `berth repository list|show|show-tags|delete|untag`: `az acr repository` over the management API.

import { Option, type Command } from 'commander';
import type { ManagementClient } from '../../api-client/index.js';
import type { CliDeps, CommandContext, GlobalOptions } from '../context.js';
import { CliError, EXIT, UsageError } from '../errors.js';
import { action, groupCommand, leafCommand, parsePositiveInt } from '../options.js';
import { registryNameOption } from './registry.js';

interface RepositoryOptions extends GlobalOptions {
  name: string;
  repository?: string;
  image?: string;
  top?: number;
  detail?: boolean;
  yes?: boolean;
}

/** An `--image` argument: `repo:tag` or `repo@sha256:...`. */
export type ImageReference = { repository: string; tag: string } | { repository: string; digest: string };

const PAGE_SIZE = 100;

/** Registers `berth repository ...`. */
export function registerRepositoryCommands(program: Command, deps: CliDeps): void {
  const group = groupCommand(program, 'repository', 'Manage repositories (image names) in a registry.');

  leafCommand(group, 'list', 'List the repositories of a registry.')
    .addOption(registryNameOption())
    .addOption(new Option('--top <n>', 'list at most this many').argParser(parsePositiveInt))
    .action(
      action<RepositoryOptions>(deps, async (options, ctx) => {
        ctx.print(await allRepositories(ctx.client(), options.name, options.top));
      }),
    );

  leafCommand(group, 'show', 'Show a repository: its tag and manifest counts.')
    .addOption(registryNameOption())
    .requiredOption('--repository <repository>', 'repository name, e.g. team/app')
    .action(
      action<RepositoryOptions>(deps, async (options, ctx) => {
        ctx.print(await ctx.client().getRepository(options.name, options.repository!));
      }),
    );

  leafCommand(group, 'show-tags', 'List the tags of a repository.')
    .addOption(registryNameOption())
    .requiredOption('--repository <repository>', 'repository name, e.g. team/app')
    .option('--detail', 'show each tag with its manifest digest')
    .addOption(new Option('--top <n>', 'list at most this many').argParser(parsePositiveInt))
    .action(
      action<RepositoryOptions>(deps, async (options, ctx) => {
        let tags = await ctx.client().listTags(options.name, options.repository!);
        if (options.top !== undefined) tags = tags.slice(0, options.top);
        if (options.detail) {
          ctx.print(tags, {
            columns: [
              { header: 'NAME', value: (t) => t.name },
              { header: 'DIGEST', value: (t) => t.digest },
            ],
          });
        } else {
          ctx.print(tags.map((t) => t.name));
        }
      }),
    );

  leafCommand(group, 'delete', 'Delete a repository, or an image (its manifest and every tag on it).')
    .addOption(registryNameOption())
    .option('--repository <repository>', 'the repository to delete, with all its images')
    .option('-t, --image <image>', 'the image to delete: repo:tag or repo@digest')
    .option('-y, --yes', 'do not ask for confirmation')
    .addHelpText(
      'after',
      '\nExamples:\n  berth repository delete -n myregistry --repository team/app --yes\n  berth repository delete -n myregistry --image team/app:v1 --yes',
    )
    .action(action(deps, deleteRepositoryOrImage));

  leafCommand(group, 'untag', 'Remove a tag; the manifest it pointed to stays.')
    .addOption(registryNameOption())
    .requiredOption('-t, --image <image>', 'the tag to remove: repo:tag')
    .action(
      action<RepositoryOptions>(deps, async (options, ctx) => {
        const image = parseImageReference(options.image!);
        if (!('tag' in image)) throw new UsageError("--image must name a tag (repo:tag) for 'untag'");
        await ctx.client().deleteTag(options.name, image.repository, image.tag);
      }),
    );
}

async function allRepositories(
  client: ManagementClient,
  name: string,
  top: number | undefined,
): Promise<string[]> {
  const all: string[] = [];
  const seen = new Set<string>();
  let last: string | undefined;
  while (top === undefined || all.length < top) {
    const page = await client.listRepositories(name, {
      n: PAGE_SIZE,
      ...(last !== undefined ? { last } : {}),
    });
    const fresh = page.filter((repo) => !seen.has(repo));
    for (const repo of fresh) seen.add(repo);
    all.push(...fresh);
    // A short page is the last one; a page of nothing new means the server ignored `last`.
    if (page.length < PAGE_SIZE || fresh.length === 0) break;
    last = page.at(-1);
  }
  return top === undefined ? all : all.slice(0, top);
}

async function deleteRepositoryOrImage(options: RepositoryOptions, ctx: CommandContext): Promise<void> {
  if ((options.repository === undefined) === (options.image === undefined)) {
    throw new UsageError('pass exactly one of --repository and --image');
  }
  const client = ctx.client();
  if (options.repository !== undefined) {
    await ctx.confirm(
      `This operation will delete the repository '${options.repository}' and all the images it contains. Are you sure?`,
      options.yes,
    );
    await client.deleteRepository(options.name, options.repository);
    return;
  }
  const image = parseImageReference(options.image!);
  const tags = await client.listTags(options.name, image.repository);
  const digest = 'digest' in image ? image.digest : tags.find((t) => t.name === image.tag)?.digest;
  if (digest === undefined) {
    throw new CliError(
      `the image '${options.image}' was not found in registry '${options.name}'`,
      EXIT.notFound,
    );
  }
  const doomed = tags.filter((t) => t.digest === digest);
  if (doomed.length === 0) {
    throw new CliError(`no tag of '${image.repository}' refers to ${digest}`, EXIT.notFound);
  }
  await ctx.confirm(
    `This operation will delete the manifest '${digest}' and all the following images: ${doomed
      .map((t) => `'${image.repository}:${t.name}'`)
      .join(', ')}. Are you sure?`,
    options.yes,
  );
  // The management API deletes tags, not manifests: removing every tag on the manifest leaves it
  // untagged, for the registry's retention policy (and then garbage collection) to reclaim.
  for (const tag of doomed) await client.deleteTag(options.name, image.repository, tag.name);
}

/** Parses `repo:tag` or `repo@sha256:...`; a bare repository is a usage error. */
export function parseImageReference(value: string): ImageReference {
  const at = value.indexOf('@');
  if (at > 0) return { repository: value.slice(0, at), digest: value.slice(at + 1) };
  const colon = value.lastIndexOf(':');
  if (colon > value.lastIndexOf('/') && colon > 0 && colon < value.length - 1) {
    return { repository: value.slice(0, colon), tag: value.slice(colon + 1) };
  }
  throw new UsageError(`--image '${value}' must be repo:tag or repo@digest`);
}
