/**
 * JSON Schemas of the management API. The same objects validate requests (fastify/ajv) and make
 * up the OpenAPI document, so the document cannot drift from what the server accepts.
 */

const ipRule = {
  type: 'object',
  additionalProperties: false,
  anyOf: [{ required: ['value'] }, { required: ['ipSet'] }],
  properties: {
    action: { type: 'string', enum: ['Allow'] },
    value: { type: 'string', description: 'IPv4/IPv6 address or CIDR range (ipSet:<name> for a set rule)' },
    ipSet: {
      type: 'string',
      pattern: '^[a-z0-9][a-z0-9._-]{0,62}$',
      description: 'the name of an IP set whose ranges the rule allows, instead of value',
    },
    actions: {
      type: 'string',
      enum: ['pull', 'all'],
      description: 'pull: reads only (GET, HEAD); all (default): push and delete too',
    },
    expiresAt: {
      type: 'string',
      format: 'date-time',
      description: 'the instant the rule stops matching (it is then listed with expired: true)',
    },
    expired: { description: 'read-only; ignored in requests' },
  },
} as const;

const networkRuleSet = {
  type: 'object',
  additionalProperties: false,
  properties: {
    defaultAction: { type: 'string', enum: ['Allow', 'Deny'] },
    ipRules: { type: 'array', items: ipRule },
    enforcement: {
      type: 'string',
      enum: ['Enforced', 'ReportOnly'],
      description: 'ReportOnly: requests the rules would refuse are logged (marked) and let through',
    },
    // Accepted for compatibility with ACR documents; Berth has no virtual networks, so it must be empty.
    virtualNetworkRules: { type: 'array', maxItems: 0 },
  },
} as const;

const readOnly = { description: 'read-only; ignored in requests' } as const;

/** Body of `PUT`/`PATCH /api/registries/{name}`. */
export const registryBodySchema = {
  $id: 'RegistryBody',
  type: 'object',
  additionalProperties: false,
  properties: {
    sku: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: { name: { type: 'string', enum: ['Basic', 'Standard', 'Premium'] }, tier: readOnly },
    },
    properties: {
      type: 'object',
      additionalProperties: false,
      properties: {
        adminUserEnabled: { type: 'boolean' },
        anonymousPullEnabled: { type: 'boolean' },
        publicNetworkAccess: { type: 'string', enum: ['Enabled', 'Disabled'] },
        networkRuleSet,
        networkRuleBypassOptions: { type: 'string', enum: ['AzureServices', 'None'] },
        loginServer: readOnly,
        creationDate: readOnly,
        provisioningState: readOnly,
        privateEndpointConnections: readOnly,
      },
    },
    id: readOnly,
    name: readOnly,
    type: readOnly,
    location: readOnly,
    tags: readOnly,
  },
} as const;

/** The registry resource as returned. */
export const registryResourceSchema = {
  $id: 'Registry',
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    type: { type: 'string' },
    sku: { type: 'object', properties: { name: { type: 'string' }, tier: { type: 'string' } } },
    properties: {
      type: 'object',
      properties: {
        loginServer: { type: 'string' },
        creationDate: { type: 'string', format: 'date-time' },
        provisioningState: { type: 'string' },
        adminUserEnabled: { type: 'boolean' },
        anonymousPullEnabled: { type: 'boolean' },
        publicNetworkAccess: { type: 'string', enum: ['Enabled', 'Disabled'] },
        networkRuleSet: {
          type: 'object',
          properties: {
            defaultAction: { type: 'string' },
            ipRules: {
              type: 'array',
              items: {
                type: 'object',
                properties: { action: { type: 'string' }, value: { type: 'string' } },
              },
            },
          },
        },
        networkRuleBypassOptions: { type: 'string' },
        privateEndpointConnections: { type: 'array', items: { type: 'object' } },
      },
    },
  },
} as const;

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string' },
        message: { type: 'string' },
        target: { type: 'string' },
        details: { type: 'array', items: { type: 'object' } },
      },
    },
  },
} as const;

export const registryNameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', description: 'Registry name: 5-50 letters and digits' } },
} as const;

export const privateEndpointBodySchema = {
  $id: 'PrivateEndpointConnectionBody',
  type: 'object',
  additionalProperties: false,
  properties: {
    properties: {
      type: 'object',
      additionalProperties: false,
      properties: {
        privateEndpoint: {
          type: 'object',
          additionalProperties: false,
          required: ['address'],
          properties: {
            address: { type: 'string', description: 'host:port the endpoint listens on' },
            id: readOnly,
          },
        },
        privateLinkServiceConnectionState: {
          type: 'object',
          additionalProperties: false,
          properties: {
            status: { type: 'string', enum: ['Pending', 'Approved', 'Rejected', 'Disconnected'] },
            description: { type: 'string', maxLength: 1024 },
            actionsRequired: readOnly,
          },
        },
        provisioningState: readOnly,
      },
    },
    id: readOnly,
    name: readOnly,
    type: readOnly,
  },
} as const;

export const checkNetworkAccessBodySchema = {
  $id: 'CheckNetworkAccessBody',
  type: 'object',
  additionalProperties: false,
  required: ['ip'],
  properties: {
    ip: { type: 'string' },
    action: { type: 'string', enum: ['pull', 'push'], description: 'what the request does (default pull)' },
    apiKey: { type: 'string', description: 'decide as this API key (by name), with its own address ranges' },
  },
} as const;

export const apiKeyBodySchema = {
  $id: 'ApiKeyBody',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'role'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 100, pattern: '^[A-Za-z0-9._-]+$' },
    role: { type: 'string', enum: ['Owner', 'Contributor', 'Reader'] },
    registry: { type: 'string', description: "a registry name, or '*' for all" },
    trustedService: {
      type: 'boolean',
      description: 'may bypass network rules of registries that allow trusted services',
    },
    allowedIpRanges: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: { type: 'string' },
      description: "the key's own address ranges: checked in addition to every registry's rules",
    },
  },
} as const;

export const roleAssignmentBodySchema = {
  $id: 'RoleAssignmentBody',
  type: 'object',
  additionalProperties: false,
  required: ['role'],
  properties: {
    role: { type: 'string', enum: ['Owner', 'Contributor', 'Reader', 'AcrPull', 'AcrPush', 'AcrDelete'] },
  },
} as const;

export const regenerateCredentialBodySchema = {
  $id: 'RegenerateCredentialBody',
  type: 'object',
  additionalProperties: false,
  required: ['name'],
  properties: { name: { type: 'string', enum: ['password', 'password2'] } },
} as const;

/**
 * The body of a child resource (scope map, token): its settable `properties`, plus the read-only parts
 * a client may send back from a GET (accepted and ignored, as ARM does).
 */
function childResourceBody<P extends Record<string, unknown>>(id: string, properties: P) {
  return {
    $id: id,
    type: 'object',
    additionalProperties: false,
    properties: {
      properties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          ...properties,
          creationDate: { type: 'string' },
          provisioningState: { type: 'string' },
        },
      },
      id: { type: 'string' },
      name: { type: 'string' },
      type: { type: 'string' },
    },
  } as const;
}

export const scopeMapBodySchema = childResourceBody('ScopeMapBody', {
  description: { type: 'string', maxLength: 256 },
  actions: {
    type: 'array',
    maxItems: 500,
    items: { type: 'string', maxLength: 300 },
    description:
      'repositories/<name or prefix/*>/<content/read|content/write|content/delete|metadata/read|metadata/write>',
  },
  type: { type: 'string' },
});

export const tokenBodySchema = childResourceBody('TokenBody', {
  scopeMapId: { type: 'string', maxLength: 400, description: 'a scope map name or its id' },
  status: { type: 'string', enum: ['enabled', 'disabled'] },
  credentials: { type: 'object' },
  allowedIpRanges: {
    type: 'array',
    maxItems: 1000,
    items: { type: 'string' },
    description:
      "the token's own address ranges, checked in addition to the registry's rules; [] removes them",
  },
});

export const generateCredentialsBodySchema = {
  $id: 'GenerateCredentialsBody',
  type: 'object',
  additionalProperties: false,
  required: ['tokenId'],
  properties: {
    tokenId: { type: 'string', maxLength: 400, description: 'a token name or its id' },
    name: { type: 'string', enum: ['password1', 'password2'], description: 'one password; both when absent' },
    expiry: { type: 'string', format: 'date-time', description: 'ISO 8601; never expires when absent' },
  },
} as const;

export const tokenPasswordParams = {
  type: 'object',
  required: ['name', 'tokenName', 'password'],
  properties: {
    name: { type: 'string' },
    tokenName: { type: 'string' },
    password: { type: 'string', enum: ['password1', 'password2'] },
  },
} as const;

/** Body of `POST`/`DELETE /api/registries/{name}/networkRuleSet/ipRules` (add or remove rules). */
export const ipRulesChangeBodySchema = {
  $id: 'IpRulesChangeBody',
  type: 'object',
  additionalProperties: false,
  required: ['ipRules'],
  properties: { ipRules: { type: 'array', minItems: 1, maxItems: 10_000, items: ipRule } },
} as const;

/** Body of `PUT /api/ipSets/{name}`. */
export const ipSetBodySchema = {
  $id: 'IpSetBody',
  type: 'object',
  additionalProperties: false,
  required: ['ranges'],
  properties: {
    ranges: { type: 'array', maxItems: 100_000, items: { type: 'string' } },
    description: { type: 'string', maxLength: 1024 },
    name: { description: 'read-only; ignored in requests' },
    id: { description: 'read-only; ignored in requests' },
    type: { description: 'read-only; ignored in requests' },
  },
} as const;

export const ipSetNameParams = {
  type: 'object',
  required: ['name'],
  properties: { name: { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,62}$' } },
} as const;
