// A policy of one rule per service, each service's own certificate (cn=svc-N)
// allowed GET and POST on its own two path patterns: `services` identities x
// 2 x `services` endpoints in the matrix. The 1,000-rule browser test and the
// matrix benchmark (bench/playground-matrix.mjs) use it.
export function bigPolicy(services) {
  const rules = [];
  for (let i = 0; i < services; i++) {
    rules.push({
      name: `svc-${i}`,
      action: 'allow',
      principals: [{ cn: `svc-${i}` }],
      paths: [`/api/svc-${i}/items`, `/api/svc-${i}/items/*/detail`],
      methods: ['GET', 'POST'],
    });
  }
  return `${JSON.stringify({ version: 1, default_action: 'deny', rules }, null, 1)}\n`;
}
